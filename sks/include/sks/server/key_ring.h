// The signing keys the server uses, as an immutable snapshot.
//
// A KeyRing binds every signing profile to one key in the token and to
// that key's x5u, so a response's x5u always belongs to the key that
// signed it. A new KeyRing is built off the request path (start-up,
// reload) and swapped in whole through KeyRingHolder; a request takes one
// snapshot at its start and finishes with it, so a swap never mixes an old
// key with a new x5u. Nothing on the signing path looks a key up.
//
// A profile may have no key (its rotation-managed key was compromised and
// no new one is active yet): it signs nothing, and its requests get 503.
//
// Threads: a KeyRing is immutable and shared read-only; KeyRingHolder's
// get/set are atomic. Errors: build() throws stir::Error (kConfig for an
// inconsistent profile, kNotFound for a key that is not in the token);
// self_test() throws stir::Error naming the key that failed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "sks/config.h"
#include "sks/pkcs11/key_store.h"
#include "stir/openssl.h"

namespace sks::server {

// One key in the token with the certificate URL that belongs to it.
struct SigningKey {
  std::string label;
  std::string x5u;
  std::shared_ptr<const stir::DigestSigner> signer;
  stir::EvpPkeyPtr public_key;  // for the self-test (null: the signer checks alone)
  std::int64_t not_after = 0;   // certificate notAfter (seconds), when known
};

struct Profile {
  std::string name;
  std::string origid;                     // default origid; may be empty
  std::set<std::string> attest;           // allowed attestation levels
  std::shared_ptr<const SigningKey> key;  // null: the profile has no active key
};

// The server's view of `config`: each rotation-enabled profile's key and
// x5u taken from the rotation state's active key (the config's own key/x5u
// only while the state has none for it), keys the state marks compromised
// dropped from every profile (rotating or not), and
// rotation.loaded_generation set to the state's generation. Reads the state
// file without the lock (it is replaced atomically). A profile left without
// a key signs nothing (503). The server applies it in its own load and
// reload (server.h); applying it twice gives the same config.
Config apply_rotation_state(const Config& config);

class KeyRing {
 public:
  // Resolves every profile's key once (handles cached in the KeyStore).
  static std::shared_ptr<const KeyRing> build(const Config& config, p11::KeyStore& keys);

  // The key of a profile's (key label, x5u), asked once per distinct pair.
  // build(config, keys) resolves through the token; fuzzers and tests may
  // pass software keys.
  using KeyResolver = std::function<std::shared_ptr<const SigningKey>(const SigningProfile&)>;
  static std::shared_ptr<const KeyRing> build(const Config& config, const KeyResolver& resolve);

  // The profile for a client identified by these names (certificate CN and
  // DNS SANs); the default profile when none lists them; nullptr if none.
  const Profile* profile_for(const std::vector<std::string>& client_names) const;
  // The name the client is known by: the first of its names a profile
  // lists (the one profile_for matched), else the first name (the CN);
  // empty when it has none. Logs, the audit log and rate limits use it.
  const std::string* client_identity(const std::vector<std::string>& client_names) const;
  const std::vector<Profile>& profiles() const noexcept { return profiles_; }

  // Runs the one key self-test (p11::self_test, key_store.h) on every
  // profile's key: signs a test digest and verifies it with the key's public
  // half (the certificate's key: install-cert checked they match). Start-up
  // and /readyz (ApiServer::readiness) and reload call it; a reload swaps in
  // only a ring that passes. Threads: any, as many at once as the signers
  // allow (TokenKey: any number). Errors: p11::self_test's, for the first
  // key that fails.
  void self_test() const;

  // Prometheus gauges: the active key per profile and the seconds until
  // each certificate's notAfter, at `now`.
  std::string render_metrics(std::int64_t now) const;
  // The keys the process signs with, for GET /admin/v1/keys; no key material.
  nlohmann::json describe(std::int64_t now) const;

 private:
  std::vector<Profile> profiles_;
  std::map<std::string, std::size_t> by_client_;
  const Profile* default_profile_ = nullptr;
};

class KeyRingHolder {
 public:
  std::shared_ptr<const KeyRing> get() const noexcept { return ring_.load(); }
  void set(std::shared_ptr<const KeyRing> ring) noexcept { ring_.store(std::move(ring)); }

 private:
  std::atomic<std::shared_ptr<const KeyRing>> ring_;
};

}  // namespace sks::server
