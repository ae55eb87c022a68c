#include "sks/rotation/adopt.h"

#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "stir/error.h"
#include "stir/openssl.h"
#include "stir/verifier/fetcher.h"
#include "stir/verifier/url.h"
#include "stir/x509.h"

namespace sks::rotation {

using stir::Error;
using stir::ErrorCode;

namespace {

std::string entry_name(const KeyEntry& e) {
  return "key '" + e.label + "' (#" + std::to_string(e.id) + ")";
}

const KeyEntry* find_id(const ProfileState& profile, int id) {
  for (const auto& k : profile.keys) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

// The copy must know everything this instance knows, never an earlier step.
void check_not_older(const RotationState& mine, const RotationState& theirs,
                     const std::string& path) {
  const std::string older = path + " is older than this instance's rotation state: ";
  const std::string next = "; adopt the controller's current state file";
  for (const auto& [name, profile] : mine.profiles) {
    const auto it = theirs.profiles.find(name);
    for (const auto& k : profile.keys) {
      const KeyEntry* other = it == theirs.profiles.end() ? nullptr : find_id(it->second, k.id);
      if (other == nullptr || other->label != k.label) {
        throw Error(ErrorCode::kInvalidArgument,
                    older + entry_name(k) + " of profile '" + name + "' is missing there" + next);
      }
      if (!moves_forward(k.state, other->state)) {
        throw Error(ErrorCode::kInvalidArgument,
                    older + entry_name(k) + " of profile '" + name + "' is " +
                        std::string(to_string(k.state)) + " here and " +
                        std::string(to_string(other->state)) + " there" + next);
      }
    }
  }
  if (theirs.generation < mine.generation) {
    throw Error(ErrorCode::kInvalidArgument, older + "its generation is " +
                                                 std::to_string(theirs.generation) + ", here " +
                                                 std::to_string(mine.generation) + next);
  }
  if (theirs.next_id < mine.next_id) {
    throw Error(ErrorCode::kInvalidArgument, older + "its next key id is " +
                                                 std::to_string(theirs.next_id) + ", here " +
                                                 std::to_string(mine.next_id) + next);
  }
}

// An active key signs here only once its x5u serves its certificate.
void check_active(const Config& config, p11::KeyStore& keys, const std::string& profile,
                  const KeyEntry& k) {
  const std::string what = "cannot adopt " + entry_name(k) + " of profile '" + profile + "': ";
  if (!keys.find(k.label)) {
    throw Error(ErrorCode::kNotFound, what +
                                          "the token has no such key; does this instance use "
                                          "the controller's token (the same HSM partition)?");
  }
  std::vector<stir::X509Ptr> chain;
  try {
    chain = stir::parse_pem_chain(fetch_x5u(k.x5u, config.rotation.x5u_ca_file));
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument, what + e.what() + "; publish it on every TN-CR first");
  }
  const stir::EvpPkeyPtr token_key = keys.public_key(k.label);
  if (!stir::same_public_key(X509_get0_pubkey(chain.front().get()), token_key.get())) {
    throw Error(ErrorCode::kInvalidArgument,
                what + k.x5u + " serves a certificate for another key than the token's");
  }
  std::time_t at = static_cast<std::time_t>(now());
  if (X509_cmp_time(X509_get0_notBefore(chain.front().get()), &at) > 0 ||
      X509_cmp_time(X509_get0_notAfter(chain.front().get()), &at) <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                what + "the certificate at " + k.x5u + " is not valid now");
  }
}

}  // namespace

bool moves_forward(KeyState from, KeyState to) noexcept {
  if (from == to) return true;
  if (to == KeyState::kDestroyed) return true;
  if (from == KeyState::kCompromised || from == KeyState::kDestroyed) return false;
  if (to == KeyState::kCompromised) return true;
  return static_cast<int>(to) > static_cast<int>(from);
}

std::string fetch_x5u(const std::string& x5u, const std::string& ca_file) {
  std::string error;
  const auto url = stir::vs::parse_https_url(x5u, error);
  if (!url) throw Error(ErrorCode::kInvalidArgument, x5u + ": " + error);
  stir::vs::FetchPolicy policy;
  policy.allowed_ports = {url->port};
  policy.allow_loopback = policy.allow_private = true;  // our own repository
  policy.tls_ca_file = ca_file;
  try {
    return stir::vs::HttpsFetcher(policy).get(x5u, 64 * 1024).body;
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument, x5u + " does not answer: " + e.what());
  }
}

std::vector<Action> adopt_state(const Config& config, p11::KeyStore& keys,
                                const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(ErrorCode::kNotFound, "cannot read " + path);
  const RotationState theirs = StateFile(path).load();
  // Profiles this config does not rotate are orphans: their keys are not
  // signed with here; `sks rotate status` shows them.
  std::vector<std::string> orphans = Manager::orphans(config, theirs);
  StateFile file(config.rotation.state_file);
  file.lock();
  const RotationState mine = file.load();
  check_not_older(mine, theirs, path);
  std::vector<Action> out;
  if (theirs.to_json() == mine.to_json()) {
    out.push_back({"", 0, "", "adopt", false, "this instance already has the state of " + path});
    return out;
  }
  auto orphan = [&orphans](const std::string& name) {
    return std::find(orphans.begin(), orphans.end(), name) != orphans.end();
  };
  for (const auto& [name, profile] : theirs.profiles) {
    if (orphan(name)) continue;
    if (const KeyEntry* active = profile.active()) check_active(config, keys, name, *active);
  }
  file.write_exact(theirs);
  for (const auto& [name, profile] : theirs.profiles) {
    if (orphan(name)) {
      out.push_back({name, 0, "", "orphan", false,
                     "profile '" + name + "' is not rotated by " + config.path +
                         ": its keys are not signed with here (`sks rotate status` shows them)"});
      continue;
    }
    const KeyEntry* active = profile.active();
    out.push_back({name, active ? active->id : 0, active ? active->label : "", "adopt", true,
                   active ? "signs with " + entry_name(*active) + " and x5u " + active->x5u +
                                " at the next reload"
                          : "has no active key in the adopted state"});
  }
  return out;
}

}  // namespace sks::rotation
