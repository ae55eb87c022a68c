#include "sks/rotation/manager.h"

#include <openssl/asn1.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "sks/rotation/adopt.h"
#include "sks/rotation/steps.h"
#include "sks/x509/csr.h"
#include "sks/x509/key_certificates.h"
#include "stir/error.h"
#include "stir/files.h"
#include "stir/hex.h"
#include "stir/openssl.h"
#include "stir/x509.h"

namespace sks::rotation {

using nlohmann::json;
using stir::Error;
using stir::ErrorCode;
namespace fs = std::filesystem;

namespace {

std::int64_t epoch_of(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string hex_digest(std::string_view data, std::size_t digits) {
  return stir::hex(stir::sha256(data)).substr(0, digits);
}

// A key label from the profile name: label characters only.
std::string label_stem(const std::string& profile) {
  std::string stem;
  for (const char c : profile) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    stem += ok ? c : '-';
  }
  return stem.substr(0, 40);
}

void set_state(KeyEntry& entry, KeyState state, std::int64_t now) {
  entry.state = state;
  entry.since[std::string(to_string(state))] = now;
}

std::string entry_name(const KeyEntry& e) {
  return "key '" + e.label + "' (#" + std::to_string(e.id) + ")";
}

// Migration: the key and x5u a rotating profile's config names from before
// rotation become its active entry when the state first needs it (a
// rotation starts, or the key is compromised), so that key drains, retires
// (its URL unpublished) and is destroyed like any other. Its certificate
// comes from the certificate store when one is installed there.
void record_config_key(RotationState& state, const SigningProfile& p,
                       const std::string& certificates_dir, std::int64_t now) {
  if (p.key_label.empty() || p.x5u.empty()) return;
  for (const auto& k : state.profiles[p.name].keys) {
    if (k.label == p.key_label) return;
  }
  KeyEntry e;
  e.id = state.next_id++;
  e.label = p.key_label;
  e.x5u = p.x5u;
  e.name = p.x5u.substr(p.x5u.rfind('/') + 1);
  const x509::KeyCertificates store(certificates_dir);
  if (const auto chain = store.chain_pem(p.key_label)) {
    const auto parsed = stir::parse_pem_chain(*chain);
    e.chain_path = store.chain_path(p.key_label);
    e.serial = store.show(p.key_label).serial;
    e.not_before = epoch_of(X509_get0_notBefore(parsed.front().get()));
    e.not_after = epoch_of(X509_get0_notAfter(parsed.front().get()));
  }
  set_state(e, KeyState::kActive, now);
  state.profiles[p.name].keys.push_back(std::move(e));
}

}  // namespace

Manager::Manager(const Config& config, p11::KeyStore* keys)
    : config_(config), keys_(keys), file_(config.rotation.state_file), now_(now()) {}

RotationState Manager::begin() {
  file_.lock();
  now_ = now();  // a command that waited for the lock acts at the time it got it
  return file_.load();
}

p11::KeyStore& Manager::keys() const {
  if (keys_ == nullptr) throw Error(ErrorCode::kInternal, "this rotation step needs the token");
  return *keys_;
}

const SigningProfile& Manager::rotation_profile(const std::string& name) const {
  for (const auto& p : config_.profiles) {
    if (p.name != name) continue;
    if (!p.rotation.enabled) {
      throw Error(ErrorCode::kConfig, "profile '" + name +
                                          "' has no [profile.rotation] table; add one (x5u_base, "
                                          "spc, subject) to rotate its keys");
    }
    return p;
  }
  throw Error(ErrorCode::kNotFound, "no [[profile]] named '" + name + "' in " + config_.path);
}

std::string Manager::profile_dir(const std::string& profile) const {
  return (fs::path(config_.rotation.state_file).parent_path() / label_stem(profile)).string();
}

void Manager::save(RotationState& state) const { file_.save(state); }

KeyEntry& Manager::new_entry(RotationState& state, const std::string& profile, bool reuse_key) {
  ProfileState& p = state.profiles[profile];
  KeyEntry entry;
  entry.id = state.next_id++;
  if (reuse_key) {
    const KeyEntry* active = p.active();
    if (active == nullptr) {
      throw Error(ErrorCode::kInvalidArgument,
                  "profile '" + profile +
                      "' has no active key to renew; run `sks rotate start` without --reuse-key");
    }
    entry.label = active->label;
    entry.reused_key = true;
  } else {
    entry.label =
        label_stem(profile) + "-" + utc_text(now_).substr(0, 10) + "-k" + std::to_string(entry.id);
    if (keys().find(entry.label)) {
      throw Error(ErrorCode::kAlreadyExists,
                  "the token already has a key '" + entry.label +
                      "' that the rotation state does not know; remove it or use another "
                      "state file");
    }
  }
  set_state(entry, KeyState::kGenerated, now_);
  p.keys.push_back(std::move(entry));
  return p.keys.back();
}

// generated -> csr: the key in the token (unless it is there), then its CSR.
void Manager::advance_csr(RotationState& state, const std::string& profile, KeyEntry& entry,
                          std::vector<Action>& out) {
  const SigningProfile& p = rotation_profile(profile);
  if (!keys().find(entry.label)) {
    keys().generate(entry.label);
    fault_point("after-keygen");
  }
  const x509::CsrSubject subject = x509::parse_subject(p.rotation.subject);
  const stir::EvpPkeyPtr public_key = keys().public_key(entry.label);
  const std::string csr =
      x509::make_csr(*keys().signing_key(entry.label), public_key.get(), subject, p.rotation.spc);
  stir::ensure_directory(profile_dir(profile), 0750);
  entry.csr_path = profile_dir(profile) + "/" + std::to_string(entry.id) + ".csr.pem";
  stir::write_file_atomic(entry.csr_path, csr, 0644);
  check_transition(profile, entry, KeyState::kCsr, now_, 0, 0);
  set_state(entry, KeyState::kCsr, now_);
  save(state);
  fault_point("after-csr");
  out.push_back({profile, entry.id, entry.label, "csr", true,
                 entry_name(entry) + ": CSR written to " + entry.csr_path});
}

void Manager::do_install(RotationState& state, const std::string& profile, KeyEntry& entry,
                         const std::string& chain_pem, std::vector<Action>& out) {
  const SigningProfile& p = rotation_profile(profile);
  const std::vector<stir::X509Ptr> chain = stir::parse_pem_chain(chain_pem);
  const std::string normalised = stir::chain_to_pem(chain);
  if (entry.state == KeyState::kCertified) {
    if (stir::read_file(entry.chain_path) == normalised) {
      out.push_back({profile, entry.id, entry.label, "install-cert", false,
                     entry_name(entry) + ": this chain is already installed"});
      return;
    }
    throw Error(ErrorCode::kAlreadyExists,
                entry_name(entry) + " already has a different certificate (" + entry.x5u +
                    "); publish it, or compromise the key to start over");
  }
  check_transition(profile, entry, KeyState::kCertified, now_, 0, 0);
  const stir::EvpPkeyPtr public_key = keys().public_key(entry.label);
  const x509::KeyCertificates store(profile_dir(profile) + "/" + std::to_string(entry.id));
  x509::InstallOptions options;
  options.now = static_cast<std::time_t>(now_);
  const x509::InstallResult installed =
      store.install(entry.label, public_key.get(), chain_pem, options);
  const X509* leaf = chain.front().get();
  // A new certificate always gets a new URL: the name carries its digest.
  entry.chain_path = installed.path;
  entry.name = entry.label + "-" + hex_digest(normalised, 12) + ".pem";
  entry.x5u = p.rotation.x5u_base + entry.name;
  entry.serial = store.show(entry.label).serial;
  entry.not_before = epoch_of(X509_get0_notBefore(leaf));
  entry.not_after = epoch_of(X509_get0_notAfter(leaf));
  set_state(entry, KeyState::kCertified, now_);
  save(state);
  fault_point("after-install");
  out.push_back({profile, entry.id, entry.label, "install-cert", true,
                 entry_name(entry) + ": certificate serial " + entry.serial + " valid until " +
                     utc_text(entry.not_after) + ", to be published at " + entry.x5u});
}

void Manager::do_issue(RotationState& state, const std::string& profile, KeyEntry& entry,
                       std::vector<Action>& out) {
  const RotationConfig& r = config_.rotation;
  if (r.issue_command.empty()) {
    throw Error(ErrorCode::kConfig,
                "no rotation.issue_command: send " + entry.csr_path +
                    " to the STI-CA and run `sks rotate install-cert --chain FILE --profile " +
                    profile + "`");
  }
  const std::string chain = profile_dir(profile) + "/" + std::to_string(entry.id) + ".issued.pem";
  require_step(
      "issue", r.issue_command,
      {{"csr", entry.csr_path}, {"chain", chain}, {"label", entry.label}, {"profile", profile}},
      std::chrono::seconds(r.step_timeout_s));
  fault_point("after-issue");
  do_install(state, profile, entry, stir::read_file(chain), out);
}

void Manager::do_publish(RotationState& state, const std::string& profile, KeyEntry& entry,
                         std::vector<Action>& out) {
  check_transition(profile, entry, KeyState::kPublished, now_, 0, 0);
  const RotationConfig& r = config_.rotation;
  require_step("publish", r.publish_command,
               {{"chain", entry.chain_path},
                {"name", entry.name},
                {"x5u", entry.x5u},
                {"label", entry.label},
                {"profile", profile}},
               std::chrono::seconds(r.step_timeout_s));
  fault_point("after-publish-step");
  set_state(entry, KeyState::kPublished, now_);
  save(state);
  out.push_back({profile, entry.id, entry.label, "publish", true,
                 entry_name(entry) + ": published at " + entry.x5u});
}

void Manager::do_activate(RotationState& state, const std::string& profile, KeyEntry& entry,
                          std::vector<Action>& out) {
  check_transition(profile, entry, KeyState::kActive, now_, 0, 0);
  const std::string installed = stir::read_file(entry.chain_path);
  // The x5u must serve exactly this chain before the first token names it.
  std::string served;
  try {
    served = fetch_x5u(entry.x5u, config_.rotation.x5u_ca_file);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument, "cannot activate " + entry_name(entry) + ": " +
                                                 e.what() +
                                                 "; run `sks rotate publish` and check the TN-CR");
  }
  std::string normalised_served;
  try {
    normalised_served = stir::chain_to_pem(stir::parse_pem_chain(served));
  } catch (const Error&) {
  }
  if (normalised_served != installed) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot activate " + entry_name(entry) + ": " + entry.x5u +
                    " does not serve the installed chain " + entry.chain_path);
  }
  const auto chain = stir::parse_pem_chain(installed);
  const stir::EvpPkeyPtr token_key = keys().public_key(entry.label);
  if (!stir::same_public_key(X509_get0_pubkey(chain.front().get()), token_key.get())) {
    throw Error(ErrorCode::kInvalidArgument, "cannot activate " + entry_name(entry) +
                                                 ": the certificate's key is not the token key");
  }
  if (now_ < entry.not_before || now_ >= entry.not_after) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot activate " + entry_name(entry) + ": its certificate is valid from " +
                    utc_text(entry.not_before) + " to " + utc_text(entry.not_after) +
                    ", not now (" + utc_text(now_) + ")");
  }
  ProfileState& p = state.profiles[profile];
  std::string previous;
  if (KeyEntry* old = p.active()) {
    set_state(*old, KeyState::kDraining, now_);
    old->left_generation = state.generation + 1;  // this write's
    old->drain_from = 0;
    previous = "; " + entry_name(*old) + " drains for " +
               std::to_string(rotation_profile(profile).rotation.drain_s) +
               " s once every instance is seen signing with the new key";
  }
  set_state(entry, KeyState::kActive, now_);
  save(state);  // one write: never two active keys
  fault_point("after-activate");
  out.push_back({profile, entry.id, entry.label, "activate", true,
                 entry_name(entry) + " is active with x5u " + entry.x5u + previous});
}

namespace {

// The [profile.rotation] of a profile the config rotates, else null (an orphan).
const ProfileRotation* rotation_of(const Config& config, const std::string& name) {
  for (const auto& p : config.profiles) {
    if (p.name == name && p.rotation.enabled) return &p.rotation;
  }
  return nullptr;
}

bool is_live(KeyState s) {
  return s == KeyState::kPublished || s == KeyState::kActive || s == KeyState::kDraining;
}

}  // namespace

std::vector<std::string> Manager::orphans(const Config& config, const RotationState& state) {
  std::vector<std::string> out;
  for (const auto& [name, p] : state.profiles) {
    if (rotation_of(config, name) == nullptr) out.push_back(name);
  }
  return out;
}

void Manager::check_instances_off(const std::string& profile, const KeyEntry& entry, bool by_key,
                                  const std::vector<InstanceView>& views,
                                  const std::string& what) const {
  for (const auto& v : views) {
    if (!v.reachable) {
      throw Error(ErrorCode::kInvalidArgument,
                  what + ": instance " + v.name + " cannot be read (" + v.problem +
                      "), so nothing shows that it no longer signs with " + entry_name(entry) +
                      "; bring it back, remove it from rotation.instances, or add --force");
    }
    if (v.generation < entry.left_generation) {
      throw Error(ErrorCode::kInvalidArgument,
                  what + ": instance " + v.name + " runs rotation state generation " +
                      std::to_string(v.generation) + ", older than generation " +
                      std::to_string(entry.left_generation) + " that took " + entry_name(entry) +
                      " of profile '" + profile + "' out of signing (last reload " +
                      (v.reload_ok ? "ok" : "FAILED: " + v.reload_error) +
                      "); run `sks rotate run` to reload it, or add --force");
    }
    for (const auto& [name, signs] : v.signs) {
      if (by_key ? signs.key == entry.label : signs.x5u == entry.x5u) {
        throw Error(ErrorCode::kInvalidArgument,
                    what + ": instance " + v.name + " still signs with key '" + signs.key +
                        "' and x5u " + signs.x5u + " (profile '" + name +
                        "'); reload it (`sks rotate run`), or add --force");
      }
    }
  }
}

void Manager::record_drains(RotationState& state, const std::vector<InstanceView>& views) {
  bool changed = false;
  for (auto& [name, p] : state.profiles) {
    const bool orphan = rotation_of(config_, name) == nullptr;
    for (auto& k : p.keys) {
      if (k.drain_from != 0) continue;
      if (!(k.state == KeyState::kDraining || (orphan && is_live(k.state)))) continue;
      bool off = true;
      for (const auto& v : views) {
        const auto it = v.signs.find(name);
        const bool signs =
            it != v.signs.end() && it->second.key == k.label && it->second.x5u == k.x5u;
        off = off && v.reachable && v.generation >= k.left_generation && !signs;
      }
      if (!off) continue;
      // Seen now: the drain runs from this observation (from the switch
      // written in the state when no instance is known).
      const std::int64_t entered = k.entered(KeyState::kDraining);
      k.drain_from = views.empty() && entered != 0 ? entered : std::max(now(), entered);
      changed = true;
    }
  }
  // An observation, not a change for the servers: the generation stays.
  if (changed) file_.write_exact(state);
}

namespace {

// The instances not yet running `generation`, by name ("a, b").
std::string behind_names(const std::vector<InstanceView>& views, std::int64_t generation) {
  std::string names;
  for (const auto& v : views) {
    if (!v.current(generation)) names += (names.empty() ? "" : ", ") + v.name;
  }
  return names;
}

}  // namespace

bool Manager::ask_reload(const RotationState& state, const std::vector<InstanceView>& views,
                         int attempt, std::vector<Action>& out) {
  const RotationConfig& r = config_.rotation;
  if (r.reload_command.empty()) {
    bool sent = false;
    for (const auto& v : views) {
      if (v.local && v.reachable && !v.current(state.generation) && v.pid > 0) {
        sent = ::kill(v.pid, SIGHUP) == 0 || sent;
      }
    }
    return sent;
  }
  std::string failure;
  try {
    const StepResult result =
        run_step("reload", r.reload_command, {}, std::chrono::seconds(r.step_timeout_s));
    if (result.exit_code != 0) {
      failure = "exit " + std::to_string(result.exit_code) +
                (result.output.empty() ? "" : ": " + result.output);
    }
  } catch (const Error& e) {
    failure = e.what();
  }
  if (failure.empty()) return true;
  while (!failure.empty() && failure.back() == '\n') failure.pop_back();
  out.push_back(
      {"", 0, "", "reload", false,
       "the reload command failed (attempt " + std::to_string(attempt) + " of 3): " + failure});
  return false;
}

std::vector<InstanceView> Manager::await_generation(std::int64_t generation,
                                                    std::int64_t asked) const {
  // Read them again until they run the generation, report a failed reload,
  // or the time is up.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(config_.rotation.observe_timeout_s);
  for (;;) {
    std::vector<InstanceView> views = observe_instances(config_);
    bool waiting = false;
    bool failed = false;
    for (const auto& v : views) {
      if (v.current(generation)) continue;
      waiting = true;
      failed = failed || (v.reachable && !v.reload_ok && v.reload_time >= asked);
    }
    if (!waiting || failed || std::chrono::steady_clock::now() >= deadline) return views;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<InstanceView> Manager::reconcile(RotationState& state, std::vector<Action>& out) {
  const RotationConfig& r = config_.rotation;
  std::vector<InstanceView> views = observe_instances(config_);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const std::string names = behind_names(views, state.generation);
    if (names.empty()) break;
    const std::int64_t asked = static_cast<std::int64_t>(std::time(nullptr));
    if (!ask_reload(state, views, attempt, out)) {
      if (r.reload_command.empty()) break;  // no way to reload them: named below
      continue;
    }
    out.push_back({"", 0, "", "reload", true,
                   "told " + names + " to load rotation state generation " +
                       std::to_string(state.generation) + " (attempt " + std::to_string(attempt) +
                       " of 3)"});
    views = await_generation(state.generation, asked);
  }
  for (const auto& v : views) {
    if (v.current(state.generation)) continue;
    Action a{"",
             0,
             "",
             "behind",
             false,
             v.describe(state.generation) +
                 (!v.reachable ? ""
                  : r.reload_command.empty() && !v.local
                      ? "; set rotation.reload_command to reload it"
                      : "; it still signs with what it loaded before: fix its reload (sks serve's "
                        "log) and run `sks rotate run` again")};
    a.failed = true;
    a.code = ErrorCode::kIo;
    out.push_back(std::move(a));
  }
  record_drains(state, views);
  return views;
}

void Manager::do_retire(RotationState& state, const std::string& profile, KeyEntry& entry,
                        bool force, const std::vector<InstanceView>& views,
                        std::vector<Action>& out) {
  const ProfileRotation& r = rotation_profile(profile).rotation;
  // Profiles that shared one key and x5u in their config before rotation
  // each recorded an entry for it: the URL stays served while any other
  // profile still signs with it, or may still have tokens naming it.
  const std::string user = x5u_user(state, profile, entry);
  const std::string what = "cannot retire " + entry_name(entry) + " of profile '" + profile + "'";
  std::string risk;
  if (entry.state != KeyState::kDraining) {
    check_transition(profile, entry, KeyState::kRetired, now_, r.drain_s, r.retention_s);
  }
  try {
    check_transition(profile, entry, KeyState::kRetired, now_, r.drain_s, r.retention_s);
    if (user.empty()) check_instances_off(profile, entry, false, views, what);
  } catch (const Error& e) {
    if (!force) throw;
    risk = std::string(" (--force: ") + e.what() +
           "; verifiers reject every call signed with it from now on)";
  }
  std::string done = entry.x5u + " unpublished";
  if (user.empty()) {
    const RotationConfig& c = config_.rotation;
    require_step(
        "unpublish", c.unpublish_command,
        {{"name", entry.name}, {"x5u", entry.x5u}, {"label", entry.label}, {"profile", profile}},
        std::chrono::seconds(c.step_timeout_s), {66});
    fault_point("after-unpublish");
  } else {
    done = entry.x5u + " left published: profile '" + user + "' still uses it";
  }
  set_state(entry, KeyState::kRetired, now_);
  save(state);
  out.push_back(
      {profile, entry.id, entry.label, "retire", true, entry_name(entry) + ": " + done + risk});
}

std::string Manager::x5u_user(const RotationState& state, const std::string& profile,
                              const KeyEntry& entry) const {
  for (const auto& [name, p] : state.profiles) {
    for (const auto& k : p.keys) {
      if (k.id != entry.id && k.x5u == entry.x5u && is_live(k.state)) return name;
    }
  }
  // A profile still signing with the key and x5u its config names.
  for (const auto& p : config_.profiles) {
    const auto it = state.profiles.find(p.name);
    if (p.name != profile && p.x5u == entry.x5u &&
        (it == state.profiles.end() || it->second.active() == nullptr)) {
      return p.name;
    }
  }
  return "";
}

void Manager::do_destroy(RotationState& state, const std::string& profile, KeyEntry& entry,
                         bool force, const std::vector<InstanceView>& views,
                         std::vector<Action>& out) {
  const ProfileRotation* r = rotation_of(config_, profile);
  check_transition(profile, entry, KeyState::kDestroyed, now_, r ? r->drain_s : 0,
                   r ? r->retention_s : 0);
  // Another entry (a renewal of the same key) may still need the key.
  bool shared = false;
  for (const auto& [name, p] : state.profiles) {
    for (const auto& k : p.keys) {
      shared = shared ||
               (k.id != entry.id && k.label == entry.label && k.state != KeyState::kDestroyed &&
                k.state != KeyState::kCompromised && k.state != KeyState::kRetired);
    }
  }
  // So may a profile still signing with the key its config names.
  for (const auto& p : config_.profiles) {
    const auto it = state.profiles.find(p.name);
    shared = shared || (p.name != profile && p.key_label == entry.label &&
                        (it == state.profiles.end() || it->second.active() == nullptr));
  }
  std::string what = "certificate forgotten; the key stays: another entry or profile uses it";
  std::string risk;
  if (!shared) {
    try {
      check_instances_off(profile, entry, true, views,
                          "cannot destroy " + entry_name(entry) + " of profile '" + profile + "'");
    } catch (const Error& e) {
      if (!force) throw;
      risk = std::string(" (--force: ") + e.what() +
             "; every request it signs fails from now on: 500)";
    }
    if (keys().find(entry.label)) keys().destroy(entry.label);
    what = "key destroyed in the token";
  }
  fault_point("after-destroy-key");
  set_state(entry, KeyState::kDestroyed, now_);
  save(state);
  out.push_back(
      {profile, entry.id, entry.label, "destroy", true, entry_name(entry) + ": " + what + risk});
}

void Manager::retire_orphan(RotationState& state, const std::string& profile, bool force,
                            const std::vector<InstanceView>& views, std::vector<Action>& out) {
  const std::int64_t floor = drain_floor_s(config_.server.max_iat_skew_s);
  for (auto& k : state.profiles[profile].keys) {
    if (!is_live(k.state) && !is_pending(k.state)) continue;
    const std::string what =
        "cannot retire " + entry_name(k) + " of profile '" + profile + "' (not in the config)";
    std::string risk;
    const std::string user = k.x5u.empty() ? "" : x5u_user(state, profile, k);
    if (is_live(k.state)) {
      try {
        if (user.empty()) check_instances_off(profile, k, false, views, what);
        if (k.drain_from == 0 || now_ < k.drain_from + floor) {
          throw Error(ErrorCode::kInvalidArgument,
                      what + ": tokens it signed may still be accepted until " +
                          (k.drain_from == 0 ? std::string("drain floor after every instance is "
                                                           "seen off it")
                                             : utc_text(k.drain_from + floor)) +
                          " (drain floor " + std::to_string(floor) +
                          " s); run it again then, or add --force");
        }
      } catch (const Error& e) {
        if (!force) throw;
        risk = std::string(" (--force: ") + e.what() + ")";
      }
    }
    std::string done = "retired";
    if (!k.name.empty() && user.empty() && (k.state == KeyState::kPublished || is_live(k.state))) {
      const RotationConfig& c = config_.rotation;
      require_step("unpublish", c.unpublish_command,
                   {{"name", k.name}, {"x5u", k.x5u}, {"label", k.label}, {"profile", profile}},
                   std::chrono::seconds(c.step_timeout_s), {66});
      done = k.x5u + " unpublished";
    } else if (!user.empty()) {
      done = k.x5u + " left published: profile '" + user + "' still uses it";
    }
    set_state(k, KeyState::kRetired, now_);
    save(state);
    out.push_back(
        {profile, k.id, k.label, "retire", true,
         entry_name(k) + " of profile '" + profile + "' (not in the config): " + done + risk});
  }
}

std::vector<Action> Manager::start(const std::string& profile, bool reuse_key) {
  rotation_profile(profile);
  RotationState state = begin();
  std::vector<Action> out;
  KeyEntry* entry = state.profiles[profile].pending();
  if (entry != nullptr && entry->state != KeyState::kGenerated) {
    out.push_back({profile, entry->id, entry->label, "start", false,
                   "a rotation is already under way: " + entry_name(*entry) + " is " +
                       std::string(to_string(entry->state))});
    return out;
  }
  if (entry == nullptr) {
    if (state.profiles[profile].keys.empty()) {
      record_config_key(state, rotation_profile(profile), config_.certificates.dir, now_);
    }
    entry = &new_entry(state, profile, reuse_key);
    save(state);  // the label is reserved before the key exists
    fault_point("after-reserve");
    out.push_back({profile, entry->id, entry->label, "start", true,
                   entry_name(*entry) + (reuse_key ? " renews its certificate" : " reserved")});
  }
  advance_csr(state, profile, *entry, out);
  return out;
}

std::vector<Action> Manager::install_cert(const std::string& profile,
                                          const std::string& chain_pem) {
  rotation_profile(profile);
  RotationState state = begin();
  std::vector<Action> out;
  KeyEntry* entry = state.profiles[profile].pending();
  if (entry == nullptr) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "profile '" + profile + "' has no rotation under way; run `sks rotate start` first");
  }
  if (entry->state == KeyState::kGenerated) advance_csr(state, profile, *entry, out);
  do_install(state, profile, *entry, chain_pem, out);
  return out;
}

std::vector<Action> Manager::publish(const std::string& profile) {
  rotation_profile(profile);
  RotationState state = begin();
  std::vector<Action> out;
  ProfileState& p = state.profiles[profile];
  KeyEntry* entry = p.pending();
  if (entry != nullptr && entry->state == KeyState::kPublished) {
    out.push_back({profile, entry->id, entry->label, "publish", false,
                   entry_name(*entry) + " is already published at " + entry->x5u});
    return out;
  }
  if (entry == nullptr) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "profile '" + profile + "' has no certified key to publish; run `sks rotate start`");
  }
  do_publish(state, profile, *entry, out);
  return out;
}

std::vector<Action> Manager::activate(const std::string& profile) {
  rotation_profile(profile);
  RotationState state = begin();
  std::vector<Action> out;
  ProfileState& p = state.profiles[profile];
  KeyEntry* entry = p.pending();
  if (entry == nullptr) {
    if (const KeyEntry* active = p.active()) {
      out.push_back({profile, active->id, active->label, "activate", false,
                     entry_name(*active) + " is already active"});
      reconcile(state, out);
      return out;
    }
    throw Error(
        ErrorCode::kInvalidArgument,
        "profile '" + profile + "' has no published key to activate; run `sks rotate start`");
  }
  do_activate(state, profile, *entry, out);
  reconcile(state, out);
  return out;
}

// A profile the config rotates, or an orphan of the state; else the error
// rotation_profile gives.
namespace {
bool is_orphan_name(const Config& config, const RotationState& state, const std::string& name) {
  return rotation_of(config, name) == nullptr && state.profiles.count(name) != 0;
}
}  // namespace

std::vector<Action> Manager::retire(const std::string& profile, bool force) {
  if (!is_orphan_name(config_, file_.load(), profile)) rotation_profile(profile);
  RotationState state = begin();
  std::vector<Action> out;
  const std::vector<InstanceView> views = reconcile(state, out);
  if (rotation_of(config_, profile) == nullptr) {
    retire_orphan(state, profile, force, views, out);
  } else {
    for (auto& k : state.profiles[profile].keys) {
      if (k.state == KeyState::kDraining) do_retire(state, profile, k, force, views, out);
    }
  }
  bool any = false;
  for (const auto& a : out) any = any || a.what == "retire";
  if (!any) {
    out.push_back(
        {profile, 0, "", "retire", false, "profile '" + profile + "' has no draining key"});
  } else {
    reconcile(state, out);  // the servers run the state they are checked against
  }
  return out;
}

std::vector<Action> Manager::destroy(const std::string& profile, const std::string& label,
                                     bool force) {
  if (!is_orphan_name(config_, file_.load(), profile)) rotation_profile(profile);
  RotationState state = begin();
  std::vector<Action> out;
  const std::vector<InstanceView> views = reconcile(state, out);
  bool found = false;
  bool any = false;
  for (auto& k : state.profiles[profile].keys) {
    if (!label.empty() && k.label != label) continue;
    if (k.state == KeyState::kDestroyed) {
      found = true;
      continue;
    }
    if (label.empty() && k.state != KeyState::kRetired && k.state != KeyState::kCompromised) {
      continue;
    }
    found = true;
    any = true;
    do_destroy(state, profile, k, force, views, out);
  }
  if (!found && !label.empty()) {
    throw Error(ErrorCode::kNotFound, "profile '" + profile + "' has no key '" + label + "'");
  }
  if (!any) {
    out.push_back({profile, 0, label, "destroy", false, "nothing to destroy"});
  } else {
    reconcile(state, out);
  }
  return out;
}

namespace {

// Profiles without rotation that sign with `label` from their config.
std::vector<const SigningProfile*> fixed_profiles(const Config& config, const std::string& label) {
  std::vector<const SigningProfile*> fixed;
  for (const auto& p : config.profiles) {
    if (!p.rotation.enabled && p.key_label == label) fixed.push_back(&p);
  }
  return fixed;
}

}  // namespace

std::vector<std::string> Manager::mark_compromised(RotationState& state, const std::string& label,
                                                   const std::vector<const SigningProfile*>& fixed,
                                                   bool listed, std::vector<Action>& out) {
  // A key the config names but the state does not know (from before
  // rotation): recorded, so the server drops it too.
  for (const auto& p : config_.profiles) {
    if (p.key_label == label && p.rotation.enabled) {
      record_config_key(state, p, config_.certificates.dir, now_);
    }
  }
  std::vector<std::string> affected;
  bool found = !fixed.empty();
  for (auto& [name, p] : state.profiles) {
    for (auto& k : p.keys) {
      if (k.label != label) continue;
      found = true;
      if (k.state == KeyState::kDestroyed || k.state == KeyState::kCompromised) continue;
      if (k.state == KeyState::kActive) affected.push_back(name);
      set_state(k, KeyState::kCompromised, now_);
      k.left_generation = state.generation + 1;
      out.push_back({name, k.id, k.label, "compromise", true,
                     entry_name(k) + " of profile '" + name + "' is marked compromised"});
    }
  }
  if (!found) throw Error(ErrorCode::kNotFound, "no profile uses a key '" + label + "'");
  if (!listed) {
    state.compromised_keys.push_back(label);
    for (const auto* p : fixed) {
      out.push_back({p->name, 0, label, "compromise", true,
                     "profile '" + p->name + "' (no rotation) stops signing with key '" + label +
                         "' (--force): its requests fail with 503 until its config names "
                         "another key"});
    }
  }
  return affected;
}

bool Manager::revoke_serial(const std::string& profile, const std::string& label,
                            const std::string& serial, const std::string& x5u,
                            std::set<std::string>& revoked, std::vector<Action>& out) {
  if (serial.empty()) {
    out.push_back(
        {profile, 0, label, "revoke", false,
         "no certificate serial is known for key '" + label + "' (profile '" + profile +
             "'): revocation must be asked for by hand: read the serial of the certificate " +
             "published at " + (x5u.empty() ? std::string("its x5u") : x5u) +
             " (`openssl x509 -noout -serial -issuer -in CHAIN.pem` on the chain you "
             "installed, or a verifier's cached copy) and ask the STI-CA that issued it to "
             "revoke it (reason keyCompromise)"});
    return false;
  }
  if (revoked.count(serial)) return false;
  revoked.insert(serial);
  const RotationConfig& r = config_.rotation;
  if (r.revoke_command.empty()) {
    out.push_back({profile, 0, label, "revoke", false,
                   "no rotation.revoke_command: ask the STI-CA to revoke serial " + serial +
                       " (reason keyCompromise)"});
    return false;
  }
  require_step("revoke", r.revoke_command,
               {{"serial", serial}, {"label", label}, {"profile", profile}},
               std::chrono::seconds(r.step_timeout_s));
  out.push_back({profile, 0, label, "revoke", true, "certificate " + serial + " revoked"});
  return true;
}

void Manager::withdraw_compromised(RotationState& state, const std::string& label,
                                   const std::vector<const SigningProfile*>& fixed, bool listed,
                                   const std::string& still, std::vector<Action>& out) {
  const RotationConfig& r = config_.rotation;
  std::set<std::string> revoked;
  for (auto& [name, p] : state.profiles) {
    for (auto& k : p.keys) {
      if (k.label != label || k.state != KeyState::kCompromised) continue;
      if (!k.unpublished && !k.name.empty() && !r.unpublish_command.empty()) {
        require_step("unpublish", r.unpublish_command,
                     {{"name", k.name}, {"x5u", k.x5u}, {"label", k.label}, {"profile", name}},
                     std::chrono::seconds(r.step_timeout_s), {66});
        k.unpublished = true;
        save(state);
        out.push_back(
            {name, k.id, k.label, "unpublish", true,
             k.x5u + " unpublished" +
                 (still.empty() ? "" : " (--force: " + still + " may still sign with it)")});
      }
      if (!k.revoked && revoke_serial(name, label, k.serial, k.x5u, revoked, out)) {
        k.revoked = true;
        save(state);
      }
    }
  }
  const x509::KeyCertificates store(config_.certificates.dir);
  for (const auto* p : fixed) {
    if (!p->x5u.empty() && !r.unpublish_command.empty() && !listed) {
      const std::string name = p->x5u.substr(p->x5u.rfind('/') + 1);
      require_step("unpublish", r.unpublish_command,
                   {{"name", name}, {"x5u", p->x5u}, {"label", label}, {"profile", p->name}},
                   std::chrono::seconds(r.step_timeout_s), {66});
      out.push_back({p->name, 0, label, "unpublish", true, p->x5u + " unpublished"});
    }
    std::string serial;
    if (store.chain_pem(label)) serial = store.show(label).serial;
    if (!listed) revoke_serial(p->name, label, serial, p->x5u, revoked, out);
  }
}

std::vector<Action> Manager::compromise(const std::string& label, bool force) {
  RotationState state = begin();
  std::vector<Action> out;
  // Profiles without rotation sign with their config's key: they stop only
  // through the state's list of compromised keys.
  const std::vector<const SigningProfile*> fixed = fixed_profiles(config_, label);
  const bool listed = std::find(state.compromised_keys.begin(), state.compromised_keys.end(),
                                label) != state.compromised_keys.end();
  if (!fixed.empty() && !force && !listed) {
    std::string names;
    for (const auto* p : fixed) names += (names.empty() ? "'" : ", '") + p->name + "'";
    throw Error(ErrorCode::kInvalidArgument,
                "key '" + label + "' is also signed with by profile(s) " + names +
                    " (no [profile.rotation]); they would keep signing with it while its URL is "
                    "unpublished, and every such call would fail verification. Add --force to stop "
                    "them too (their requests fail with 503 until their config names another key "
                    "and the servers reload), or give them another key first; nothing changed");
  }
  const std::vector<std::string> affected = mark_compromised(state, label, fixed, listed, out);
  if (!listed || !out.empty()) {
    save(state);  // first: the next reload drops the key
    fault_point("after-compromise-mark");
  }
  const std::int64_t generation = state.generation;
  const std::vector<InstanceView> views = reconcile(state, out);
  const std::int64_t reconciled = state.generation;
  // Its URL goes once no instance signs with the key any more.
  std::string still;
  for (const auto& v : views) {
    if (!v.reachable || v.generation < generation || v.signs_key(label)) {
      still += (still.empty() ? "" : ", ") + v.name;
    }
  }
  if (!still.empty() && !force) {
    Action a{"",
             0,
             label,
             "unpublish",
             false,
             "key '" + label + "': its URL stays published while " + still +
                 " may still sign with it (every call it signs would fail verification); fix its "
                 "reload and run `sks rotate compromise --key " +
                 label + "` again, or add --force to unpublish now"};
    a.failed = true;
    a.code = ErrorCode::kIo;
    out.push_back(std::move(a));
    return out;
  }
  withdraw_compromised(state, label, fixed, listed, still, out);
  for (const auto& name : affected) {
    out.push_back({name, 0, "", "next", false,
                   "profile '" + name +
                       "' has no active key and its requests fail (503) until a new one is "
                       "active: run `sks rotate run --profile " +
                       name + "` (or start, install-cert, publish, activate)"});
  }
  if (state.generation != reconciled) reconcile(state, out);
  return out;
}

void Manager::report_orphans(RotationState& state, std::vector<Action>& out) const {
  for (const auto& name : orphans(config_, state)) {
    std::string keys;
    for (const auto& k : state.profiles[name].keys) {
      if (k.state == KeyState::kDestroyed) continue;
      keys += (keys.empty() ? "" : ", ") + k.label + " " + std::string(to_string(k.state)) +
              (is_live(k.state) ? " at " + k.x5u : "");
    }
    if (keys.empty()) continue;
    out.push_back({name, 0, "", "orphan", false,
                   "profile '" + name + "' is no longer rotated by " + config_.path +
                       "; its keys stay in the token and published (" + keys +
                       "): `sks rotate retire --profile " + name +
                       "`, then `sks rotate destroy --profile " + name + "`"});
  }
}

void Manager::age_old_keys(RotationState& state, const SigningProfile& profile, bool dry_run,
                           const std::vector<InstanceView>& views, std::vector<Action>& out) {
  const std::string& name = profile.name;
  const ProfileRotation& r = profile.rotation;
  auto plan = [&](const KeyEntry& e, const std::string& what, const std::string& message) {
    out.push_back({name, e.id, e.label, what, false, message});
  };
  // Old keys first: retire after the drain, destroy after retention.
  for (std::size_t i = 0; i < state.profiles[name].keys.size(); ++i) {
    KeyEntry& k = state.profiles[name].keys[i];
    const KeyState to = k.state == KeyState::kDraining  ? KeyState::kRetired
                        : k.state == KeyState::kRetired ? KeyState::kDestroyed
                                                        : KeyState::kGenerated;
    if (to == KeyState::kGenerated) continue;
    const std::int64_t at = earliest(k, to, r.drain_s, r.retention_s);
    if (to == KeyState::kRetired && k.drain_from == 0) {
      plan(k, "wait",
           entry_name(k) +
               ": its drain starts when every instance is seen signing without "
               "it (`sks rotate status` shows each instance)");
    } else if (now_ < at) {
      plan(k, "wait", entry_name(k) + ": " + std::string(to_string(to)) + " at " + utc_text(at));
    } else if (dry_run) {
      plan(k, to == KeyState::kRetired ? "retire" : "destroy",
           entry_name(k) + " would be " + std::string(to_string(to)));
    } else if (to == KeyState::kRetired) {
      do_retire(state, name, k, false, views, out);
    } else {
      do_destroy(state, name, k, false, views, out);
    }
  }
}

bool Manager::advance_profile(RotationState& state, const SigningProfile& profile, bool dry_run,
                              std::vector<Action>& out) {
  const std::string& name = profile.name;
  const ProfileRotation& r = profile.rotation;
  auto plan = [&](const KeyEntry* e, const std::string& what, const std::string& message) {
    out.push_back({name, e ? e->id : 0, e ? e->label : "", what, false, message});
  };
  if (state.profiles[name].keys.empty()) {
    record_config_key(state, profile, config_.certificates.dir, now_);
  }
  ProfileState& p = state.profiles[name];
  const KeyEntry* active = p.active();
  KeyEntry* entry = p.pending();
  if (entry == nullptr) {
    const bool due = active == nullptr || now_ >= active->not_after - r.renew_before_s;
    if (!due) {
      plan(active, "wait",
           "renewal of " + entry_name(*active) + " starts at " +
               utc_text(active->not_after - r.renew_before_s));
      return false;
    }
    const bool reuse = active != nullptr && !r.new_key;
    if (dry_run) {
      plan(active, "start",
           active == nullptr ? "a first key would be generated"
                             : std::string("renewal would start") + (reuse ? " (same key)" : ""));
      return false;
    }
    entry = &new_entry(state, name, reuse);
    save(state);
    fault_point("after-reserve");
    out.push_back({name, entry->id, entry->label, "start", true, entry_name(*entry) + " reserved"});
  }
  if (dry_run) {
    static const std::map<KeyState, std::string> kNext = {
        {KeyState::kGenerated, "generate the key and its CSR"},
        {KeyState::kCsr, "issue the certificate (issue_command) and install it"},
        {KeyState::kCertified, "publish the chain (publish_command)"},
        {KeyState::kPublished, "check the x5u over HTTPS and activate"}};
    plan(entry, "next", entry_name(*entry) + ": " + kNext.at(entry->state));
    return false;
  }
  if (entry->state == KeyState::kGenerated) advance_csr(state, name, *entry, out);
  if (entry->state == KeyState::kCsr) do_issue(state, name, *entry, out);
  if (entry->state == KeyState::kCertified) do_publish(state, name, *entry, out);
  if (entry->state != KeyState::kPublished) return false;
  do_activate(state, name, *entry, out);
  return true;
}

std::vector<Action> Manager::run(const std::string& only, bool dry_run) {
  if (!only.empty()) rotation_profile(only);  // unknown, or without rotation: an error
  RotationState state = dry_run ? file_.load() : begin();
  std::vector<Action> out;
  std::vector<InstanceView> views;
  if (dry_run) {
    views = observe_instances(config_);
    for (const auto& v : views) {
      if (!v.current(state.generation)) {
        out.push_back(
            {"", 0, "", "reload", false, v.describe(state.generation) + ": would reload"});
      }
    }
  } else {
    views = reconcile(state, out);
  }
  const std::int64_t started = state.generation;
  if (only.empty()) report_orphans(state, out);
  bool activated = false;
  for (const auto& profile : config_.profiles) {
    if (!profile.rotation.enabled || (!only.empty() && profile.name != only)) continue;
    try {
      age_old_keys(state, profile, dry_run, views, out);
      activated = advance_profile(state, profile, dry_run, out) || activated;
    } catch (const Error& e) {
      // This profile stops here; the others go on.
      Action a{profile.name, 0, "", "failed", false, e.what()};
      a.failed = true;
      a.code = e.code();
      out.push_back(std::move(a));
    }
  }
  // Whatever else failed: the servers load what this run wrote.
  if (!dry_run && (activated || state.generation != started)) reconcile(state, out);
  return out;
}

namespace {

// The step an entry waits for and when it may run ("now", a time, or why
// it waits); r is null for an orphan's entries.
std::pair<std::string, std::string> next_step(const KeyEntry& k, const ProfileRotation* r,
                                              std::int64_t now) {
  std::string next;
  std::int64_t at = 0;
  std::string when;
  switch (k.state) {
    case KeyState::kGenerated:
      next = "start";
      break;
    case KeyState::kCsr:
      next = "install-cert";
      break;
    case KeyState::kCertified:
      next = "publish";
      break;
    case KeyState::kPublished:
      next = "activate";
      break;
    case KeyState::kActive:
      next = "start";
      if (r) at = k.not_after - r->renew_before_s;
      break;
    case KeyState::kDraining:
      next = "retire";
      if (k.drain_from == 0) {
        when = "after every instance is seen signing without it";
      } else if (r) {
        at = earliest(k, KeyState::kRetired, r->drain_s, r->retention_s);
      }
      break;
    case KeyState::kRetired:
      next = "destroy";
      if (r) at = earliest(k, KeyState::kDestroyed, r->drain_s, r->retention_s);
      break;
    case KeyState::kCompromised:
      next = "destroy";
      break;
    case KeyState::kDestroyed:
      break;
  }
  if (!r && is_live(k.state)) next = "retire";  // an orphan
  if (when.empty()) when = at > now ? utc_text(at) : (next.empty() ? "" : "now");
  return {next, when};
}

json key_rows(const RotationState& state, const std::string& name, const ProfileRotation* r,
              std::int64_t now) {
  json keys = json::array();
  const auto it = state.profiles.find(name);
  if (it == state.profiles.end()) return keys;
  for (const auto& k : it->second.keys) {
    const auto [next, when] = next_step(k, r, now);
    json since = json::object();
    for (const auto& [s, t] : k.since) since[s] = utc_text(t);
    keys.push_back({{"id", k.id},
                    {"label", k.label},
                    {"state", to_string(k.state)},
                    {"x5u", k.x5u},
                    {"serial", k.serial},
                    {"csr", k.csr_path},
                    {"chain", k.chain_path},
                    {"not_before", utc_text(k.not_before)},
                    {"not_after", utc_text(k.not_after)},
                    {"since", since},
                    {"left_generation", k.left_generation},
                    {"drain_from", utc_text(k.drain_from)},
                    {"next", next},
                    {"next_at", when}});
  }
  return keys;
}

}  // namespace

json Manager::status(const std::string& only) const {
  const RotationState state = file_.load();
  const std::vector<std::string> orphan_names = orphans(config_, state);
  if (!only.empty() &&
      std::find(orphan_names.begin(), orphan_names.end(), only) == orphan_names.end()) {
    bool known = false;
    for (const auto& p : config_.profiles) known = known || p.name == only;
    if (!known) {
      throw Error(ErrorCode::kNotFound, "no [[profile]] named '" + only + "' in " + config_.path +
                                            " or in the rotation state");
    }
  }
  json profiles = json::array();
  for (const auto& profile : config_.profiles) {
    if (!only.empty() && profile.name != only) continue;
    json p = {{"profile", profile.name}, {"rotation", profile.rotation.enabled}, {"orphan", false}};
    p["keys"] =
        key_rows(state, profile.name, profile.rotation.enabled ? &profile.rotation : nullptr, now_);
    if (!profile.rotation.enabled) {
      p["key"] = profile.key_label;
      p["x5u"] = profile.x5u;
    }
    profiles.push_back(p);
  }
  for (const auto& name : orphan_names) {
    if (!only.empty() && name != only) continue;
    profiles.push_back({{"profile", name},
                        {"rotation", false},
                        {"orphan", true},
                        {"keys", key_rows(state, name, nullptr, now_)}});
  }
  json instances = json::array();
  for (const auto& v : observe_instances(config_)) instances.push_back(v.to_json(state.generation));
  json out = {{"state_file", file_.path()},     {"now", utc_text(now_)},
              {"generation", state.generation}, {"compromised_keys", state.compromised_keys},
              {"instances", instances},         {"profiles", profiles}};
  std::ifstream server(server_status_path(config_));
  if (server) {
    const json document = json::parse(server, nullptr, false);
    if (!document.is_discarded()) out["server"] = document;
  }
  return out;
}

std::string server_status_path(const Config& config) {
  return (fs::path(config.rotation.state_file).parent_path() / "server-status.json").string();
}

}  // namespace sks::rotation
