// The rotation manager behind `sks rotate`: moves the keys of signing
// profiles through their lifecycle (sks/rotation/state.h) by running the
// configured steps (sks/rotation/steps.h) and the token.
//
// Every operation takes the state file's lock, reads the state, does one
// thing, and writes the state after each step that had an effect, so a
// crash at any point leaves a state from which running the same command
// again converges: a key label is reserved in the state before the key is
// generated (never two keys for one entry), the publish and unpublish steps
// are idempotent, and activation changes both keys in one write (never two
// active keys). Every operation is idempotent: done already means "unchanged".
//
// Activation is refused unless the new x5u answers over HTTPS with exactly
// the installed chain, the chain's leaf key is the token key and the
// certificate is valid now. Retirement is refused until the drain period has
// passed (force overrides it), destruction until retirement plus retention.
// Retirement unpublishes the x5u, unless another profile still uses it
// (profiles that shared one key and x5u in their config before rotation).
//
// Ownership: borrows the config and the KeyStore (null for status and plan,
// which need no token). Threads: one operation at a time per object;
// other processes are kept out by the lock.
// Errors: stir::Error: kInvalidArgument (an illegal step: the message says
// why and what to do next), kNotFound (unknown profile or key), kConfig (a
// profile without [profile.rotation], a step not configured), kIo (a step
// failed), kMalformed (a corrupt state file).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sks/config.h"
#include "sks/pkcs11/key_store.h"
#include "sks/rotation/state.h"

namespace sks::rotation {

// What one operation did (or, for plan, would do).
struct Action {
  std::string profile;
  int id = 0;
  std::string label;
  std::string what;      // "start", "install-cert", "publish", "activate", ...
  bool changed = false;  // false: it was done already, or it is only planned
  std::string message;   // one line for the operator
};

class Manager {
 public:
  Manager(const Config& config, p11::KeyStore* keys);

  std::vector<Action> start(const std::string& profile, bool reuse_key);
  std::vector<Action> install_cert(const std::string& profile, const std::string& chain_pem);
  std::vector<Action> publish(const std::string& profile);
  std::vector<Action> activate(const std::string& profile);
  std::vector<Action> retire(const std::string& profile, bool force);
  std::vector<Action> destroy(const std::string& profile, const std::string& label);
  // Every profile that uses the key: stop signing (the server drops it at
  // its next reload), unpublish, revoke; the messages say what to do next.
  std::vector<Action> compromise(const std::string& label);
  // Advances every rotation-enabled profile (or one) as far as it safely can
  // now. With dry_run, nothing changes and the actions say what would run.
  std::vector<Action> run(const std::string& profile, bool dry_run);

  // Every key of every profile (or one): state, x5u, validity, times, the
  // next step and the earliest time it may run; and the server's last
  // reload (its status file) when there is one.
  nlohmann::json status(const std::string& profile) const;

 private:
  const SigningProfile& rotation_profile(const std::string& name) const;
  std::string profile_dir(const std::string& profile) const;
  void save(const RotationState& state) const;

  void advance_csr(RotationState& state, const std::string& profile, KeyEntry& entry,
                   std::vector<Action>& out);
  void do_install(RotationState& state, const std::string& profile, KeyEntry& entry,
                  const std::string& chain_pem, std::vector<Action>& out);
  void do_issue(RotationState& state, const std::string& profile, KeyEntry& entry,
                std::vector<Action>& out);
  void do_publish(RotationState& state, const std::string& profile, KeyEntry& entry,
                  std::vector<Action>& out);
  void do_activate(RotationState& state, const std::string& profile, KeyEntry& entry,
                   std::vector<Action>& out);
  void do_retire(RotationState& state, const std::string& profile, KeyEntry& entry, bool force,
                 std::vector<Action>& out);
  void do_destroy(RotationState& state, const std::string& profile, KeyEntry& entry,
                  std::vector<Action>& out);
  // The profile other than `profile` that still needs entry's x5u served,
  // "" when none does.
  std::string x5u_user(const RotationState& state, const std::string& profile,
                       const KeyEntry& entry) const;
  KeyEntry& new_entry(RotationState& state, const std::string& profile, bool reuse_key);
  void reload_servers(std::vector<Action>& out) const;
  p11::KeyStore& keys() const;

  const Config& config_;
  p11::KeyStore* keys_;
  mutable StateFile file_;
  std::int64_t now_;
};

// The server-side view: `config` with each rotation-enabled profile's key
// and x5u taken from the state's active key (the config's own key/x5u only
// while the state has none for it), and keys the state marks compromised
// dropped. Reads the state file without the lock (it is replaced
// atomically). A profile left without a key signs nothing (503).
Config apply_rotation_state(const Config& config);

// Where `sks serve` reports its last reload, beside the state file.
std::string server_status_path(const Config& config);

}  // namespace sks::rotation
