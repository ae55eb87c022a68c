#include "sks/rotation/state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>

#include "stir/error.h"
#include "stir/files.h"

namespace sks::rotation {

using nlohmann::json;
using stir::Error;
using stir::ErrorCode;

namespace {

constexpr std::array<std::pair<KeyState, std::string_view>, 9> kNames = {{
    {KeyState::kGenerated, "generated"},
    {KeyState::kCsr, "csr"},
    {KeyState::kCertified, "certified"},
    {KeyState::kPublished, "published"},
    {KeyState::kActive, "active"},
    {KeyState::kDraining, "draining"},
    {KeyState::kRetired, "retired"},
    {KeyState::kDestroyed, "destroyed"},
    {KeyState::kCompromised, "compromised"},
}};

}  // namespace

std::string utc_text(std::int64_t t) {
  if (t == 0) return "";
  const std::time_t seconds = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

namespace {

// What an operator does next from each state, for refusal messages.
std::string next_step(KeyState state) {
  switch (state) {
    case KeyState::kGenerated:
    case KeyState::kCsr:
      return "`sks rotate install-cert --chain FILE` (or `sks rotate run` with an issue_command)";
    case KeyState::kCertified:
      return "`sks rotate publish`";
    case KeyState::kPublished:
      return "`sks rotate activate`";
    case KeyState::kActive:
      return "start a new rotation (`sks rotate start`) and activate it";
    case KeyState::kDraining:
      return "`sks rotate retire` once the drain period has passed";
    case KeyState::kRetired:
      return "`sks rotate destroy` once the retention period has passed";
    case KeyState::kDestroyed:
      return "nothing: the key is gone";
    case KeyState::kCompromised:
      return "`sks rotate destroy --key LABEL`";
  }
  return "";
}

std::optional<KeyState> previous_of(KeyState to) {
  switch (to) {
    case KeyState::kCsr:
      return KeyState::kGenerated;
    case KeyState::kCertified:
      return KeyState::kCsr;
    case KeyState::kPublished:
      return KeyState::kCertified;
    case KeyState::kActive:
      return KeyState::kPublished;
    case KeyState::kDraining:
      return KeyState::kActive;
    case KeyState::kRetired:
      return KeyState::kDraining;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::string_view to_string(KeyState state) noexcept {
  for (const auto& [s, name] : kNames) {
    if (s == state) return name;
  }
  return "?";
}

std::optional<KeyState> parse_key_state(std::string_view text) noexcept {
  for (const auto& [s, name] : kNames) {
    if (name == text) return s;
  }
  return std::nullopt;
}

bool is_pending(KeyState state) noexcept {
  return state == KeyState::kGenerated || state == KeyState::kCsr ||
         state == KeyState::kCertified || state == KeyState::kPublished;
}

std::int64_t KeyEntry::entered(KeyState s) const {
  const auto it = since.find(std::string(to_string(s)));
  return it == since.end() ? 0 : it->second;
}

const KeyEntry* ProfileState::active() const {
  for (const auto& k : keys) {
    if (k.state == KeyState::kActive) return &k;
  }
  return nullptr;
}
KeyEntry* ProfileState::active() {
  return const_cast<KeyEntry*>(static_cast<const ProfileState*>(this)->active());
}
const KeyEntry* ProfileState::pending() const {
  for (const auto& k : keys) {
    if (is_pending(k.state)) return &k;
  }
  return nullptr;
}
KeyEntry* ProfileState::pending() {
  return const_cast<KeyEntry*>(static_cast<const ProfileState*>(this)->pending());
}

KeyEntry* RotationState::find(int id) {
  for (auto& [name, profile] : profiles) {
    for (auto& k : profile.keys) {
      if (k.id == id) return &k;
    }
  }
  return nullptr;
}

json RotationState::to_json() const {
  json out = {{"format", "sks-rotation-state"},
              {"version", kStateFormatVersion},
              {"next_id", next_id},
              {"generation", generation},
              {"compromised_keys", compromised_keys},
              {"profiles", json::object()}};
  for (const auto& [name, profile] : profiles) {
    json keys = json::array();
    for (const auto& k : profile.keys) {
      keys.push_back({{"id", k.id},
                      {"label", k.label},
                      {"state", to_string(k.state)},
                      {"reused_key", k.reused_key},
                      {"csr_path", k.csr_path},
                      {"chain_path", k.chain_path},
                      {"name", k.name},
                      {"x5u", k.x5u},
                      {"serial", k.serial},
                      {"not_before", k.not_before},
                      {"not_after", k.not_after},
                      {"since", k.since},
                      {"unpublished", k.unpublished},
                      {"revoked", k.revoked},
                      {"left_generation", k.left_generation},
                      {"drain_from", k.drain_from}});
    }
    out["profiles"][name] = {{"keys", keys}};
  }
  return out;
}

RotationState RotationState::from_json(const json& document) {
  try {
    if (document.value("format", "") != "sks-rotation-state") {
      throw Error(ErrorCode::kMalformed, "not an sks rotation state file");
    }
    const int version = document.at("version").get<int>();
    if (version != kStateFormatVersion) {
      throw Error(ErrorCode::kMalformed, "rotation state format version " +
                                             std::to_string(version) +
                                             " is not supported (this sks reads version " +
                                             std::to_string(kStateFormatVersion) + ")");
    }
    RotationState state;
    state.next_id = document.at("next_id").get<int>();
    // Both absent from files written before generations: 0 and none.
    state.generation = document.value("generation", std::int64_t{0});
    state.compromised_keys = document.value("compromised_keys", std::vector<std::string>{});
    for (const auto& [name, profile] : document.at("profiles").items()) {
      ProfileState& p = state.profiles[name];
      int active = 0;
      int pending = 0;
      for (const auto& k : profile.at("keys")) {
        KeyEntry e;
        e.id = k.at("id").get<int>();
        e.label = k.at("label").get<std::string>();
        const auto s = parse_key_state(k.at("state").get<std::string>());
        if (!s) throw Error(ErrorCode::kMalformed, "unknown key state in profile " + name);
        e.state = *s;
        e.reused_key = k.at("reused_key").get<bool>();
        e.csr_path = k.at("csr_path").get<std::string>();
        e.chain_path = k.at("chain_path").get<std::string>();
        e.name = k.at("name").get<std::string>();
        e.x5u = k.at("x5u").get<std::string>();
        e.serial = k.at("serial").get<std::string>();
        e.not_before = k.at("not_before").get<std::int64_t>();
        e.not_after = k.at("not_after").get<std::int64_t>();
        e.since = k.at("since").get<std::map<std::string, std::int64_t>>();
        e.unpublished = k.at("unpublished").get<bool>();
        e.revoked = k.at("revoked").get<bool>();
        e.left_generation = k.value("left_generation", std::int64_t{0});
        e.drain_from = k.value("drain_from", std::int64_t{0});
        active += e.state == KeyState::kActive;
        pending += is_pending(e.state);
        p.keys.push_back(std::move(e));
      }
      if (active > 1 || pending > 1) {
        throw Error(ErrorCode::kMalformed, "profile " + name + " has " + std::to_string(active) +
                                               " active and " + std::to_string(pending) +
                                               " pending keys");
      }
    }
    return state;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kMalformed, std::string("rotation state: ") + e.what());
  }
}

std::int64_t earliest(const KeyEntry& entry, KeyState to, std::int64_t drain_s,
                      std::int64_t retention_s) {
  if (to == KeyState::kRetired) {
    return entry.drain_from == 0 ? std::numeric_limits<std::int64_t>::max()
                                 : entry.drain_from + drain_s;
  }
  if (to == KeyState::kDestroyed && entry.state == KeyState::kRetired) {
    return entry.entered(KeyState::kRetired) + retention_s;
  }
  return 0;
}

void check_transition(const std::string& profile, const KeyEntry& entry, KeyState to,
                      std::int64_t now, std::int64_t drain_s, std::int64_t retention_s) {
  const std::string key =
      "key '" + entry.label + "' (#" + std::to_string(entry.id) + ") of profile '" + profile + "'";
  const std::string from(to_string(entry.state));
  auto refuse = [&](const std::string& why) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot make " + key + " " + std::string(to_string(to)) + ": " + why);
  };
  if (entry.state == KeyState::kDestroyed) refuse("it is destroyed; nothing can follow");
  if (to == KeyState::kCompromised) return;
  if (to == KeyState::kDestroyed) {
    if (entry.state == KeyState::kCompromised) return;
    if (entry.state != KeyState::kRetired) {
      refuse("it is " + from +
             ", and only a retired (or compromised) key may be destroyed; next: " +
             next_step(entry.state));
    }
    const std::int64_t at = earliest(entry, to, drain_s, retention_s);
    if (now < at) refuse("its retention period runs until " + utc_text(at) + "; run it again then");
    return;
  }
  if (entry.state == KeyState::kCompromised) {
    refuse("it is compromised; it can only be destroyed (`sks rotate destroy --key " + entry.label +
           "`)");
  }
  const auto previous = previous_of(to);
  if (!previous || *previous != entry.state) {
    refuse("it is " + from + "; next: " + next_step(entry.state));
  }
  if (to == KeyState::kRetired) {
    const std::int64_t at = earliest(entry, to, drain_s, retention_s);
    if (entry.drain_from == 0) {
      refuse(
          "no running instance has been seen to stop signing with it yet (the drain starts "
          "then); run `sks rotate run` to reload them and check, `sks rotate status` shows "
          "each instance");
    }
    if (now < at) {
      refuse("tokens it signed may still be accepted until " + utc_text(at) + " (drain " +
             std::to_string(drain_s) +
             " s); run it again then, or add --force to risk verifiers rejecting those calls");
    }
  }
}

StateFile::~StateFile() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

void StateFile::lock() {
  if (lock_fd_ >= 0) return;
  const std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  stir::ensure_directory(dir.string(), 0750);
  const std::string lock_path = path_ + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw Error(ErrorCode::kIo, "cannot open " + lock_path + ": " + std::strerror(errno));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      ::close(fd);
      throw Error(ErrorCode::kIo, "cannot lock " + lock_path + ": " + std::strerror(errno));
    }
  }
  lock_fd_ = fd;
}

RotationState StateFile::load() const {
  const std::optional<std::string> text = stir::read_file_if_exists(path_);
  if (!text) return {};
  const json document = json::parse(*text, nullptr, false);
  if (document.is_discarded()) throw Error(ErrorCode::kMalformed, path_ + " is not valid JSON");
  try {
    return RotationState::from_json(document);
  } catch (const Error& e) {
    throw Error(e.code(), path_ + ": " + e.what());
  }
}

void StateFile::save(RotationState& state) const {
  ++state.generation;
  write_exact(state);
}

void StateFile::write_exact(const RotationState& state) const {
  stir::ensure_directory(std::filesystem::path(path_).parent_path().string(), 0750);
  stir::write_file_atomic(path_, state.to_json().dump(2) + "\n", 0640);
}

std::int64_t now() {
  if (const char* fake = std::getenv("SKS_FAKE_NOW"); fake != nullptr && *fake != '\0') {
    return std::strtoll(fake, nullptr, 10);
  }
  return static_cast<std::int64_t>(std::time(nullptr));
}

void fault_point(std::string_view point) {
  const char* chosen = std::getenv("SKS_FAULT_POINT");
  if (chosen != nullptr && point == chosen) ::raise(SIGKILL);
}

}  // namespace sks::rotation
