#include "sks/server/key_ring.h"

#include <algorithm>

#include "sks/rotation/state.h"
#include "stir/error.h"

namespace sks::server {

Config apply_rotation_state(const Config& config) {
  Config out = config;
  const rotation::RotationState state = rotation::StateFile(config.rotation.state_file).load();
  out.rotation.loaded_generation = state.generation;
  for (auto& p : out.profiles) {
    const auto it = p.rotation.enabled ? state.profiles.find(p.name) : state.profiles.end();
    if (it != state.profiles.end()) {
      // Once a key of the state has been active, the state has taken over
      // the profile and the config's key no longer signs.
      bool taken_over = false;
      for (const auto& k : it->second.keys) {
        taken_over = taken_over || k.entered(rotation::KeyState::kActive) != 0 ||
                     (k.label == p.key_label && k.state == rotation::KeyState::kCompromised);
      }
      if (const rotation::KeyEntry* active = it->second.active()) {
        p.key_label = active->label;
        p.x5u = active->x5u;
        p.not_after = active->not_after;
      } else if (taken_over) {
        p.key_label.clear();
        p.x5u.clear();
      }
    }
    // A compromised key signs for no profile, rotating or not.
    if (std::find(state.compromised_keys.begin(), state.compromised_keys.end(), p.key_label) !=
        state.compromised_keys.end()) {
      p.key_label.clear();
      p.x5u.clear();
    }
  }
  return out;
}

std::shared_ptr<const KeyRing> KeyRing::build(const Config& config, p11::KeyStore& keys) {
  return build(config, [&keys](const SigningProfile& p) {
    auto entry = std::make_shared<SigningKey>();
    entry->label = p.key_label;
    entry->x5u = p.x5u;
    auto signer = keys.signing_key(p.key_label);
    // The public half the token key read when it was resolved: one load.
    entry->public_key = signer->public_key();
    if (!entry->public_key) {
      throw stir::Error(stir::ErrorCode::kNotFound,
                        "key '" + p.key_label + "' has no public key object in the token");
    }
    entry->signer = std::move(signer);
    entry->not_after = p.not_after;
    return std::shared_ptr<const SigningKey>(std::move(entry));
  });
}

std::shared_ptr<const KeyRing> KeyRing::build(const Config& config, const KeyResolver& resolve) {
  auto ring = std::make_shared<KeyRing>();
  // One SigningKey per (label, x5u): profiles sharing a key share the entry.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const SigningKey>> loaded;
  for (const auto& p : config.profiles) {
    std::shared_ptr<const SigningKey> none;
    auto& key = p.key_label.empty() ? none : loaded[{p.key_label, p.x5u}];  // no active key yet
    if (!key && !p.key_label.empty()) key = resolve(p);
    Profile profile;
    profile.name = p.name;
    profile.origid = p.origid;
    profile.attest = {p.attest.begin(), p.attest.end()};
    profile.key = key;
    ring->profiles_.push_back(std::move(profile));
  }
  for (std::size_t i = 0; i < config.profiles.size(); ++i) {
    for (const auto& client : config.profiles[i].clients) ring->by_client_[client] = i;
    if (config.profiles[i].name == config.server.default_profile) {
      ring->default_profile_ = &ring->profiles_[i];
    }
  }
  return ring;
}

void KeyRing::self_test() const {
  for (const auto& profile : profiles_) {
    if (profile.key)
      p11::self_test(profile.key->label, *profile.key->signer, profile.key->public_key.get());
  }
}

std::string KeyRing::render_metrics(std::int64_t now) const {
  std::string out =
      "# HELP sks_profile_active_key The key each signing profile signs with (1), by label.\n"
      "# TYPE sks_profile_active_key gauge\n";
  for (const auto& p : profiles_) {
    out += "sks_profile_active_key{profile=\"" + p.name + "\",key=\"" +
           (p.key ? p.key->label : "") + "\",x5u=\"" + (p.key ? p.key->x5u : "") + "\"} " +
           (p.key ? "1" : "0") + "\n";
  }
  out +=
      "# HELP sks_certificate_expiry_seconds Seconds until the notAfter of each profile's "
      "certificate.\n"
      "# TYPE sks_certificate_expiry_seconds gauge\n";
  for (const auto& p : profiles_) {
    if (!p.key || p.key->not_after == 0) continue;
    out += "sks_certificate_expiry_seconds{profile=\"" + p.name + "\",key=\"" + p.key->label +
           "\"} " + std::to_string(p.key->not_after - now) + "\n";
  }
  return out;
}

nlohmann::json KeyRing::describe(std::int64_t now) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : profiles_) {
    nlohmann::json entry = {{"profile", p.name}, {"key", nullptr}, {"x5u", nullptr}};
    if (p.key) {
      entry["key"] = p.key->label;
      entry["x5u"] = p.key->x5u;
      if (p.key->not_after != 0) entry["expires_in_s"] = p.key->not_after - now;
    }
    out.push_back(entry);
  }
  return out;
}

const Profile* KeyRing::profile_for(const std::vector<std::string>& client_names) const {
  for (const auto& name : client_names) {
    if (auto it = by_client_.find(name); it != by_client_.end()) return &profiles_[it->second];
  }
  return default_profile_;
}

const std::string* KeyRing::client_identity(const std::vector<std::string>& client_names) const {
  for (const auto& name : client_names) {
    if (by_client_.contains(name)) return &name;
  }
  return client_names.empty() ? nullptr : &client_names.front();
}

}  // namespace sks::server
