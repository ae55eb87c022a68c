// The rotation state: every key (and certificate) of every signing profile
// with where it is in its life, kept in one small JSON file.
//
// Lifecycle of one entry (a key with one certificate; renewing the
// certificate of the same key is a new entry with the same key label):
//
//   generated -> csr -> certified -> published -> active -> draining -> retired -> destroyed
//   any state but destroyed -> compromised -> destroyed
//
// Rules (checked by check_transition, each refusal says why and what next):
// - A profile has at most one active entry, and at most one pending entry
//   (generated, csr, certified or published): one rotation at a time.
// - Only a published entry becomes active, and activation turns the previous
//   active entry into draining in the same write, so there are never two.
// - An active entry never leaves "active" by itself: another entry's
//   activation (-> draining) or compromise takes it out.
// - draining -> retired only once the drain period has passed; retired ->
//   destroyed only after the retention period.
// The view of the state is safe to log: labels, URLs, dates, no key material.
//
// Persistence: StateFile writes a versioned JSON document through
// stir::write_file_atomic (temporary file, fsync, rename, fsync of the
// folder), so a crash leaves the old or the new state, never a mix; an
// exclusive flock on "<state_file>.lock" serialises every command that
// changes it, across processes.
//
// Threads: value types; StateFile's lock is per process and object.
// Errors: stir::Error: kMalformed (a corrupt or unknown-version file),
// kInvalidArgument (an illegal transition), kIo.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sks::rotation {

enum class KeyState {
  kGenerated,  // the label is reserved; the key may not be in the token yet
  kCsr,        // key in the token, CSR written
  kCertified,  // certificate chain installed and checked against the key
  kPublished,  // the chain is served at its x5u
  kActive,     // the profile signs with it
  kDraining,   // no longer signs; its x5u stays published for drain_s
  kRetired,    // its x5u is unpublished
  kDestroyed,  // its key is gone from the token (unless another entry uses it)
  kCompromised,
};

std::string_view to_string(KeyState state) noexcept;
std::optional<KeyState> parse_key_state(std::string_view text) noexcept;
// Pending: generated, csr, certified or published.
bool is_pending(KeyState state) noexcept;

inline constexpr int kStateFormatVersion = 1;

// One key with one certificate, in one profile.
struct KeyEntry {
  int id = 0;  // unique in the state file, never reused
  std::string label;
  KeyState state = KeyState::kGenerated;
  bool reused_key = false;  // a renewal of another entry's key: destroy leaves the key alone
  std::string csr_path;     // kCsr on
  std::string chain_path;   // kCertified on
  std::string name;         // last segment of the x5u, kCertified on
  std::string x5u;          // kCertified on
  std::string serial;       // certificate serial, hex
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::map<std::string, std::int64_t> since;  // state name -> when it was entered
  bool unpublished = false;                   // compromised: the unpublish step ran
  bool revoked = false;                       // compromised: the revocation step ran
  // The state generation of the write that took it out of signing
  // (draining or compromised): an instance that runs this generation or a
  // later one no longer signs with it. 0: never signed, or before generations.
  std::int64_t left_generation = 0;
  // When the last known instance was seen no longer signing with it: the
  // drain runs from here (0: not observed yet).
  std::int64_t drain_from = 0;

  std::int64_t entered(KeyState s) const;  // 0 when never
};

struct ProfileState {
  std::vector<KeyEntry> keys;  // oldest first

  const KeyEntry* active() const;
  KeyEntry* active();
  KeyEntry* pending();  // the one entry in generated..published, if any
  const KeyEntry* pending() const;
};

struct RotationState {
  int next_id = 1;
  // Bumped by every write (StateFile::save): what a running server loaded
  // is compared with it (observed generation vs generation).
  std::int64_t generation = 0;
  std::map<std::string, ProfileState> profiles;
  // Labels of compromised keys: no profile signs with them, rotating or not.
  std::vector<std::string> compromised_keys;

  nlohmann::json to_json() const;
  // Throws kMalformed naming what is wrong.
  static RotationState from_json(const nlohmann::json& document);
  KeyEntry* find(int id);
};

// Whether `entry` may move to `to` at `now` with this drain and retention;
// throws kInvalidArgument with the reason and the next thing to do.
void check_transition(const std::string& profile, const KeyEntry& entry, KeyState to,
                      std::int64_t now, std::int64_t drain_s, std::int64_t retention_s);

// The earliest time a draining entry may retire (from drain_from; never
// while it is 0), a retired one be destroyed.
std::int64_t earliest(const KeyEntry& entry, KeyState to, std::int64_t drain_s,
                      std::int64_t retention_s);

// The state file and its lock.
class StateFile {
 public:
  explicit StateFile(std::string path) : path_(std::move(path)) {}
  ~StateFile();
  StateFile(const StateFile&) = delete;  // owns the lock's file descriptor
  StateFile& operator=(const StateFile&) = delete;

  const std::string& path() const noexcept { return path_; }
  // Takes the exclusive lock (waits for another sks rotate to finish).
  void lock();
  // An empty state when the file does not exist yet.
  RotationState load() const;
  // Bumps state.generation, then writes it.
  void save(RotationState& state) const;
  // Writes it as it is (a fleet instance adopting the controller's state
  // keeps the controller's generation).
  void write_exact(const RotationState& state) const;

 private:
  std::string path_;
  int lock_fd_ = -1;
};

// ISO 8601 UTC ("2026-12-01T23:05:00Z"); "" for 0.
std::string utc_text(std::int64_t seconds);

// Seconds since 1970: $SKS_FAKE_NOW when set (TESTS ONLY: it moves every
// rotation decision in time), else the system clock.
std::int64_t now();

// Test-only crash injection: raise(SIGKILL) when $SKS_FAULT_POINT == point.
void fault_point(std::string_view point);

}  // namespace sks::rotation
