#include "sks/server/key_ring.h"

#include "stir/error.h"

namespace sks::server {

std::shared_ptr<const KeyRing> KeyRing::build(const Config& config, p11::KeyStore& keys) {
  return build(config, [&keys](const SigningProfile& p) {
    auto entry = std::make_shared<SigningKey>();
    entry->label = p.key;
    entry->x5u = p.x5u;
    entry->signer = keys.signing_key(p.key);
    entry->public_key = stir::load_public_key_pem(keys.public_key_pem(p.key));
    return std::shared_ptr<const SigningKey>(std::move(entry));
  });
}

std::shared_ptr<const KeyRing> KeyRing::build(const Config& config, const KeyResolver& resolve) {
  auto ring = std::make_shared<KeyRing>();
  // One SigningKey per (label, x5u): profiles sharing a key share the entry.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const SigningKey>> loaded;
  for (const auto& p : config.profiles) {
    auto& key = loaded[{p.key, p.x5u}];
    if (!key) key = resolve(p);
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

const Profile* KeyRing::profile_for(const std::vector<std::string>& client_names) const {
  for (const auto& name : client_names) {
    if (auto it = by_client_.find(name); it != by_client_.end()) return &profiles_[it->second];
  }
  return default_profile_;
}

}  // namespace sks::server
