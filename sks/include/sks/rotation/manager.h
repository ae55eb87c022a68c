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
// certificate is valid now. Retirement unpublishes the x5u, unless another
// profile still uses it (profiles that shared one key and x5u in their
// config before rotation).
//
// Intent is not fact (the observed-state rule). Every write of the state
// bumps its generation; every running server reports the generation it
// loaded and what it signs with (sks/rotation/observe.h). `run`, `retire`,
// `destroy` and `compromise` first reconcile: an instance behind the state
// is told to reload (reload_command, tried up to 3 times; without one the
// local server gets SIGHUP) and read again until it runs the state's
// generation; one that stays behind is named. A draining key's drain
// starts when the last known instance is seen no longer signing with it
// (recorded in the entry as drain_from, a write that keeps the generation:
// it changes nothing the servers load). Retirement is refused until then
// plus drain_s, and while any known instance signs with the x5u or has not
// loaded the generation that took the key out; destruction likewise for
// the key; --force overrides both and says what it risks.
//
// Keys of profiles the config no longer rotates (orphans) are shown by
// status, warned about by run, and retired and destroyed by retire and
// destroy --profile NAME with the same server checks.
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
#include <set>
#include <string>
#include <vector>

#include "sks/config.h"
#include "sks/pkcs11/key_store.h"
#include "sks/rotation/observe.h"
#include "sks/rotation/state.h"
#include "stir/error.h"

namespace sks::rotation {

// What one operation did (or, for plan, would do).
struct Action {
  std::string profile;
  int id = 0;
  std::string label;
  std::string what;      // "start", "install-cert", "publish", "activate", ...
  bool changed = false;  // false: it was done already, or it is only planned
  std::string message;   // one line for the operator
  // This profile (or the reconcile) failed; `code` is the error's. Only run
  // reports failures as actions (it goes on with the other profiles); the
  // caller exits non-zero.
  bool failed = false;
  stir::ErrorCode code = stir::ErrorCode::kIo;
};

class Manager {
 public:
  Manager(const Config& config, p11::KeyStore* keys);

  std::vector<Action> start(const std::string& profile, bool reuse_key);
  std::vector<Action> install_cert(const std::string& profile, const std::string& chain_pem);
  std::vector<Action> publish(const std::string& profile);
  std::vector<Action> activate(const std::string& profile);
  // `profile` may be an orphan (in the state, not rotating in the config).
  std::vector<Action> retire(const std::string& profile, bool force);
  std::vector<Action> destroy(const std::string& profile, const std::string& label, bool force);
  // Every profile that signs with the key stops (rotating ones through the
  // state, others because the state lists the key as compromised), once
  // the servers reloaded; then unpublish, revoke. Refused (kInvalidArgument,
  // listing them) when a profile without rotation signs with it, unless
  // `force`. The messages say what to do next (revocation by hand when no
  // serial is known).
  std::vector<Action> compromise(const std::string& label, bool force);
  // Reconciles, then advances every rotation-enabled profile (or one) as far
  // as it safely can now, each on its own: a failed profile is an action
  // with failed = true and the others go on. With dry_run, nothing changes
  // and the actions say what would run.
  std::vector<Action> run(const std::string& profile, bool dry_run);

  // Every key of every profile (or one; orphans included): state, x5u,
  // validity, times, the next step and the earliest time it may run; the
  // state's generation and every instance: the generation it runs, what it
  // signs with, whether it is behind.
  nlohmann::json status(const std::string& profile) const;

  // Profiles in the state that the config does not rotate.
  static std::vector<std::string> orphans(const Config& config, const RotationState& state);

 private:
  const SigningProfile& rotation_profile(const std::string& name) const;
  // Takes the lock, then reads the clock and the state.
  RotationState begin();
  // Brings the instances to the state's generation (reload, read again);
  // records drain_from of entries no instance signs with any more. Adds a
  // "behind" action (failed) for each instance that stays behind.
  std::vector<InstanceView> reconcile(RotationState& state, std::vector<Action>& out);
  // One reload request to the instances behind the state's generation:
  // rotation.reload_command, or SIGHUP to local instances. False when the
  // command failed (an action says why) or no local instance could be told.
  bool ask_reload(const RotationState& state, const std::vector<InstanceView>& views, int attempt,
                  std::vector<Action>& out);
  // The instances, read again until every one runs `generation`, one reports
  // a reload that failed after `asked`, or rotation.observe_timeout_s passes.
  std::vector<InstanceView> await_generation(std::int64_t generation, std::int64_t asked) const;
  // compromise's steps: mark the entries and list the key (returns the
  // profiles left without an active key); unpublish and revoke.
  std::vector<std::string> mark_compromised(RotationState& state, const std::string& label,
                                            const std::vector<const SigningProfile*>& fixed,
                                            bool listed, std::vector<Action>& out);
  void withdraw_compromised(RotationState& state, const std::string& label,
                            const std::vector<const SigningProfile*>& fixed, bool listed,
                            const std::string& still, std::vector<Action>& out);
  // Runs revoke_command for a serial once per compromise (`revoked` holds
  // those done); an action tells the operator when it cannot.
  bool revoke_serial(const std::string& profile, const std::string& label,
                     const std::string& serial, const std::string& x5u,
                     std::set<std::string>& revoked, std::vector<Action>& out);
  // run's steps: name orphaned profiles; retire and destroy a profile's old
  // keys when due; take its pending key one step on (true: one activated).
  void report_orphans(RotationState& state, std::vector<Action>& out) const;
  void age_old_keys(RotationState& state, const SigningProfile& profile, bool dry_run,
                    const std::vector<InstanceView>& views, std::vector<Action>& out);
  bool advance_profile(RotationState& state, const SigningProfile& profile, bool dry_run,
                       std::vector<Action>& out);
  void record_drains(RotationState& state, const std::vector<InstanceView>& views);
  // Throws kInvalidArgument naming the instance that still signs with the
  // entry's x5u (by_key: its key), or has not loaded entry.left_generation.
  void check_instances_off(const std::string& profile, const KeyEntry& entry, bool by_key,
                           const std::vector<InstanceView>& views, const std::string& what) const;
  void retire_orphan(RotationState& state, const std::string& profile, bool force,
                     const std::vector<InstanceView>& views, std::vector<Action>& out);
  void destroy_key(RotationState& state, const std::string& profile, KeyEntry& entry,
                   std::vector<Action>& out);
  std::string profile_dir(const std::string& profile) const;
  void save(RotationState& state) const;  // bumps the generation

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
                 const std::vector<InstanceView>& views, std::vector<Action>& out);
  void do_destroy(RotationState& state, const std::string& profile, KeyEntry& entry, bool force,
                  const std::vector<InstanceView>& views, std::vector<Action>& out);
  // The profile other than `profile` that still needs entry's x5u served,
  // "" when none does.
  std::string x5u_user(const RotationState& state, const std::string& profile,
                       const KeyEntry& entry) const;
  KeyEntry& new_entry(RotationState& state, const std::string& profile, bool reuse_key);
  p11::KeyStore& keys() const;

  const Config& config_;
  p11::KeyStore* keys_;
  mutable StateFile file_;
  std::int64_t now_;  // read after the lock is held (begin), else at construction
};

// Where `sks serve` reports its last reload, beside the state file.
std::string server_status_path(const Config& config);

}  // namespace sks::rotation
