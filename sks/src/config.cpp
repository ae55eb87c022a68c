#include "sks/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "stir/error.h"
#include "stir/http/listener_reader.h"
#include "stir/passport.h"
#include "stir/toml_config.h"

namespace sks {

namespace fs = std::filesystem;

std::string resolve_config_path(const std::string& cli_path) {
  if (!cli_path.empty()) return cli_path;
  if (const char* env = std::getenv("SKS_CONFIG"); env != nullptr && *env != '\0') return env;
  return kDefaultConfigPath;
}

namespace {

using stir::toml_config::IntegerField;
using stir::toml_config::read_integers;
using stir::toml_config::Reader;
using stir::toml_config::sub_table;
using stir::toml_config::with_keys;

// Each table's integer settings, one row each: key, member, bounds. The
// default is the member's initialiser in sks/config.h.
const IntegerField<TokenConfig> kTokenFields[] = {
    {"signature_check_every", &TokenConfig::signature_check_every, 1, 1000000},
    {"signature_check_strict_s", &TokenConfig::signature_check_strict_s, 1, 7 * 86400},
    {"call_timeout_ms", &TokenConfig::call_timeout_ms, 100, 600000},
    {"wedged_exit_s", &TokenConfig::wedged_exit_s, 1, 86400},
};
const IntegerField<RotationConfig> kRotationFields[] = {
    {"step_timeout_s", &RotationConfig::step_timeout_s, 1, 86400},
    {"observe_timeout_s", &RotationConfig::observe_timeout_s, 1, 3600},
};
const IntegerField<ProfileRotation> kProfileRotationFields[] = {
    {"drain_s", &ProfileRotation::drain_s, kMinDrainSeconds, 30 * 86400},
    {"retention_s", &ProfileRotation::retention_s, 0, 3650 * 86400},
};
const IntegerField<AuditConfig> kAuditFields[] = {
    {"max_file_bytes", &AuditConfig::max_file_bytes, 4096, std::int64_t{1} << 40},
    {"keep_files", &AuditConfig::keep_files, 1, 1000},
    {"queue_depth", &AuditConfig::queue_depth, 1, 10000000},
};
const IntegerField<RateLimitConfig> kRateLimitFields[] = {
    {"per_client_per_s", &RateLimitConfig::per_client_per_s, 0, 10000000},
    {"burst", &RateLimitConfig::burst, 0, 10000000},
};

void read_token(const Reader& reader, const toml::table& root, Config& config) {
  const toml::table* token = sub_table(reader, root, "token");
  if (token == nullptr) return;
  reader.only_keys(*token, "[token]",
                   with_keys({"module", "label", "serial", "pin_file", "pin_env", "sessions",
                              "module_env", "signature_check", "calls"},
                             kTokenFields));

  TokenConfig& t = config.token;
  t.module = reader.path(*token, "module", "token");
  t.label = reader.string(*token, "label", "token");
  t.serial = reader.string(*token, "serial", "token");
  t.pin.file = reader.path(*token, "pin_file", "token");
  t.pin.env = reader.string(*token, "pin_env", "token");

  if (t.module.empty()) reader.fail(token, "token.module (the PKCS#11 module path) is required");
  // The error_code forms: a path the system cannot look up (a name longer
  // than NAME_MAX, say) is a config error too, not a filesystem_error.
  std::error_code ec;
  if (!fs::is_regular_file(t.module, ec)) {
    reader.fail(token->get("module"), "PKCS#11 module " + t.module + " does not exist");
  }
  if (t.label.empty() && t.serial.empty()) {
    reader.fail(token, "token.label or token.serial is required (never a slot number)");
  }
  if (t.label.size() > 32) reader.fail(token->get("label"), "token.label is longer than 32");
  if (t.pin.file.empty() == t.pin.env.empty()) {
    reader.fail(token, "exactly one of token.pin_file and token.pin_env is required");
  }
  if (const toml::node* node = token->get("sessions")) {
    const auto* value = node->as_integer();
    if (value == nullptr || value->get() < 0 || value->get() > 1024) {
      reader.fail(node, "token.sessions must be an integer from 0 (one per core) to 1024");
    }
    t.sessions = static_cast<std::size_t>(value->get());
  }
  if (const toml::node* node = token->get("signature_check")) {
    const auto* value = node->as_string();
    if (value == nullptr || !p11::parse_signature_check_mode(value->get(), t.signature_check)) {
      reader.fail(node, "token.signature_check must be \"always\", \"sample\" or \"off\"");
    }
  }
  read_integers(reader, *token, "token", kTokenFields, t);
  if (const toml::node* node = token->get("calls")) {
    const auto* value = node->as_string();
    if (value == nullptr ||
        (value->get() != "auto" && value->get() != "serial" && value->get() != "parallel")) {
      reader.fail(node, "token.calls must be \"auto\", \"serial\" or \"parallel\"");
    }
    t.calls = value->get();
  }
  if (const toml::node* node = token->get("module_env")) {
    const toml::table* env = node->as_table();
    if (env == nullptr) reader.fail(node, "token.module_env must be a table");
    for (const auto& [key, value] : *env) {
      const auto* text = value.as_string();
      if (text == nullptr) {
        reader.fail(&value, "token.module_env." + std::string(key.str()) + " must be a string");
      }
      t.module_env.emplace(std::string(key.str()), text->get());
    }
  }
}

// [certificates] is the certificate store; [keyring] is its old name, read
// with a warning so the in-memory key ring keeps that name alone.
void read_keyring(const Reader& reader, const toml::table& root, Config& config) {
  config.certificates.dir = (fs::absolute(config.path).parent_path() / "keyring").string();
  const toml::table* old_table = sub_table(reader, root, "keyring");
  const toml::table* keyring = sub_table(reader, root, "certificates");
  if (old_table != nullptr && keyring != nullptr) {
    reader.fail(old_table, "[keyring] is the old name of [certificates]; keep only [certificates]");
  }
  std::string name = "certificates";
  if (old_table != nullptr) {
    keyring = old_table;
    name = "keyring";
    config.warnings.push_back(config.path +
                              ": [keyring] is deprecated; rename it to [certificates] (the "
                              "certificate store)");
  }
  if (keyring == nullptr) return;
  reader.only_keys(*keyring, "[" + name + "]", {"dir"});
  if (auto dir = reader.path(*keyring, "dir", name); !dir.empty()) config.certificates.dir = dir;
}

// An argv for a rotation step: a non-empty array of strings; a relative
// program name is looked up in PATH, so it is left as it is.
std::vector<std::string> command(const Reader& reader, const toml::table& table,
                                 const std::string& key) {
  std::vector<std::string> argv = reader.strings(table, key, "rotation");
  if (table.get(key) != nullptr && argv.empty()) {
    reader.fail(table.get(key), "rotation." + key + " must name a program");
  }
  return argv;
}

void read_rotation(const Reader& reader, const toml::table& root, Config& config) {
  RotationConfig& r = config.rotation;
  r.state_file = (fs::absolute(config.path).parent_path() / "rotation" / "state.json").string();
  const toml::table* table = sub_table(reader, root, "rotation");
  if (table == nullptr) return;
  r.present = true;
  reader.only_keys(*table, "[rotation]",
                   with_keys({"state_file", "issue_command", "publish_command", "unpublish_command",
                              "revoke_command", "reload_command", "x5u_ca_file", "instances",
                              "admin_cert", "admin_key", "admin_ca"},
                             kRotationFields));
  read_integers(reader, *table, "rotation", kRotationFields, r);
  if (auto file = reader.path(*table, "state_file", "rotation"); !file.empty()) r.state_file = file;
  r.issue_command = command(reader, *table, "issue_command");
  r.publish_command = command(reader, *table, "publish_command");
  r.unpublish_command = command(reader, *table, "unpublish_command");
  r.revoke_command = command(reader, *table, "revoke_command");
  r.reload_command = command(reader, *table, "reload_command");
  r.x5u_ca_file = reader.path(*table, "x5u_ca_file", "rotation");
  r.instances = reader.strings(*table, "instances", "rotation");
  for (const auto& url : r.instances) {
    if (url.rfind("https://", 0) != 0 || url.find_first_of("?#<>\" \t") != std::string::npos) {
      reader.fail(table->get("instances"),
                  "rotation.instances: \"" + url + "\" is not an https:// admin URL");
    }
  }
  r.admin_cert = reader.path(*table, "admin_cert", "rotation");
  r.admin_key = reader.path(*table, "admin_key", "rotation");
  r.admin_ca = reader.path(*table, "admin_ca", "rotation");
  if (!r.instances.empty() && (r.admin_cert.empty() || r.admin_key.empty())) {
    reader.fail(table,
                "rotation.instances needs admin_cert and admin_key (a client identity in "
                "the instances' server.admins)");
  }
}

void read_profile_rotation(const Reader& reader, const toml::table& profile, const std::string& w,
                           ProfileRotation& r) {
  const toml::node* node = profile.get("rotation");
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  if (table == nullptr) reader.fail(node, w + ": rotation must be a table ([profile.rotation])");
  reader.only_keys(*table, "[profile.rotation]",
                   with_keys({"x5u_base", "spc", "subject", "renew_before_days", "new_key"},
                             kProfileRotationFields));
  const std::string where = w + " rotation";
  r.enabled = true;
  r.x5u_base = reader.string(*table, "x5u_base", where);
  if (r.x5u_base.rfind("https://", 0) != 0 || r.x5u_base.back() != '/' ||
      r.x5u_base.find_first_of("?#<>\" \t") != std::string::npos) {
    reader.fail(table->get("x5u_base") ? table->get("x5u_base") : table,
                where + ".x5u_base must be an https:// URL ending in '/'");
  }
  r.spc = reader.string(*table, "spc", where);
  if (r.spc.empty()) reader.fail(table, where + ".spc (the SPC of the certificates) is required");
  r.subject = reader.string(*table, "subject", where);
  if (r.subject.empty())
    reader.fail(table, where + ".subject (e.g. \"/C=US/O=Example\") is required");
  // Days in the file, seconds in the struct.
  r.renew_before_s =
      86400 * reader.integer(*table, "renew_before_days", where, r.renew_before_s / 86400, 1, 3650);
  read_integers(reader, *table, where, kProfileRotationFields, r);
  r.new_key = reader.boolean(*table, "new_key", where, r.new_key);
}

// The [server] settings of sks beyond the listener's (stir/http/listener.h).
const IntegerField<ServerConfig> kServerFields[] = {
    {"signing_queue_depth", &ServerConfig::signing_queue_depth, 0, 100000},
    {"max_iat_skew_s", &ServerConfig::max_iat_skew_s, 1, 3600},
};

void read_roles(const Reader& reader, const toml::table& server, ServerConfig& s) {
  if (server.get("roles") == nullptr) return;
  s.signing = s.verification = false;
  for (const auto& role : reader.strings(server, "roles", "server")) {
    if (role == "signing") {
      s.signing = true;
    } else if (role == "verification") {
      s.verification = true;
    } else {
      reader.fail(server.get("roles"), "server.roles holds \"signing\" and/or \"verification\"");
    }
  }
  if (!s.signing && !s.verification) reader.fail(server.get("roles"), "server.roles is empty");
}

void read_server(const Reader& reader, const toml::table& root, ServerConfig& s) {
  const toml::table* server = sub_table(reader, root, "server");
  if (server == nullptr) return;
  s.present = true;
  const stir::http::ListenerKeys listener;  // sks offers every listener setting
  std::set<std::string> keys = stir::http::listener_keys(listener);
  keys.insert({"api_root", "default_profile", "roles", "admins", "verification_clients",
               "metrics_clients"});
  reader.only_keys(*server, "[server]", with_keys(std::move(keys), kServerFields));
  const std::string w = "server";
  stir::http::read_listener(reader, *server, w, listener, s);
  if (auto root_path = reader.string(*server, "api_root", w); !root_path.empty()) {
    if (root_path.front() != '/' || root_path.back() == '/') {
      reader.fail(server->get("api_root"),
                  "server.api_root must start with '/' and not end with it");
    }
    s.api_root = root_path;
  }
  read_integers(reader, *server, w, kServerFields, s);
  s.default_profile = reader.string(*server, "default_profile", w);
  s.admins = reader.strings(*server, "admins", w);
  if (server->get("verification_clients") != nullptr) {
    s.verification_clients = reader.strings(*server, "verification_clients", w);
  }
  if (server->get("metrics_clients") != nullptr) {
    s.metrics_clients = reader.strings(*server, "metrics_clients", w);
  }
  read_roles(reader, *server, s);
}

// [metrics] (MetricsConfig): the listener keys of [server] (no lab
// switches) and its allow-list; mutual TLS, or plain HTTP on loopback.
void read_metrics(const Reader& reader, const toml::table& root, const ServerConfig& server,
                  MetricsConfig& m) {
  const toml::table* table = sub_table(reader, root, "metrics");
  if (table == nullptr) return;
  m.present = true;
  stir::http::ListenerKeys listener;
  listener.tls_required = false;
  listener.body_limit = false;  // GET only
  std::set<std::string> keys = stir::http::listener_keys(listener);
  keys.insert("clients");
  reader.only_keys(*table, "[metrics]", keys);
  const std::string w = "metrics";
  stir::http::read_listener(reader, *table, w, listener, m);
  if (table->get("clients") != nullptr) m.clients = reader.strings(*table, "clients", w);
  const int given = int{!m.tls_cert.empty()} + int{!m.tls_key.empty()} + int{!m.client_ca.empty()};
  if (given != 0 && given != 3) {
    reader.fail(table,
                "metrics.tls_cert, metrics.tls_key and metrics.client_ca go together (mutual "
                "TLS), or none of them (plain HTTP, on a loopback address only)");
  }
  if (m.plain_http() && !is_loopback_address(m.listen)) {
    reader.fail(table->get("listen") ? table->get("listen") : table,
                "metrics.listen = \"" + m.listen +
                    "\" is not a loopback address: plain HTTP is served on loopback only; give "
                    "metrics.tls_cert, metrics.tls_key and metrics.client_ca (mutual TLS) and "
                    "metrics.clients");
  }
  if (m.plain_http() && m.clients) {
    reader.fail(table->get("clients"),
                "metrics.clients needs mutual TLS (metrics.tls_cert, metrics.tls_key and "
                "metrics.client_ca): plain HTTP has no client identities");
  }
  if (server.metrics_clients) {
    reader.fail(nullptr,
                "server.metrics_clients is for /metrics on the signing port; with [metrics] "
                "/metrics is on its own listener: list the identities in metrics.clients");
  }
  if (server.present && m.port == server.port && m.port != 0) {
    reader.fail(table->get("port") ? table->get("port") : table,
                "metrics.port " + std::to_string(m.port) +
                    " is server.port: the metrics listener needs a port of its own");
  }
}

bool is_attestation(const std::string& a) { return a == "A" || a == "B" || a == "C"; }

void read_rate_limit(const Reader& reader, const toml::table& root, RateLimitConfig& r) {
  const toml::table* table = sub_table(reader, root, "rate_limit");
  if (table == nullptr) return;
  reader.only_keys(*table, "[rate_limit]", with_keys({}, kRateLimitFields));
  // burst defaults to per_client_per_s.
  if (table->get("burst") == nullptr) {
    r.burst =
        reader.integer(*table, "per_client_per_s", "rate_limit", r.per_client_per_s, 0, 10000000);
  }
  read_integers(reader, *table, "rate_limit", kRateLimitFields, r);
  if (r.per_client_per_s > 0 && r.burst == 0) {
    reader.fail(table->get("burst"), "rate_limit.burst must be at least 1 when the limit is on");
  }
}

void read_audit(const Reader& reader, const toml::table& root, AuditConfig& a) {
  const toml::table* table = sub_table(reader, root, "audit");
  if (table == nullptr) return;
  reader.only_keys(*table, "[audit]", with_keys({"file"}, kAuditFields));
  a.file = reader.path(*table, "file", "audit");
  if (a.file.empty()) reader.fail(table, "audit.file is required in [audit]");
  read_integers(reader, *table, "audit", kAuditFields, a);
}

void read_profiles(const Reader& reader, const toml::table& root, Config& config) {
  const toml::node* node = root.get("profile");
  std::set<std::string> names;
  std::set<std::string> clients;
  if (node != nullptr) {
    const toml::array* profiles = node->as_array();
    if (profiles == nullptr || !profiles->is_array_of_tables()) {
      reader.fail(node, "profile must be an array of tables ([[profile]])");
    }
    for (const auto& item : *profiles) {
      const toml::table& table = *item.as_table();
      reader.only_keys(table, "[[profile]]",
                       {"name", "key", "x5u", "origid", "attest", "clients", "rotation"});
      SigningProfile p;
      p.name = reader.string(table, "name", "profile");
      const std::string w = "profile '" + p.name + "'";
      if (p.name.empty()) reader.fail(&table, "every [[profile]] needs a name");
      if (!names.insert(p.name).second)
        reader.fail(&table, "two profiles are named '" + p.name + "'");
      read_profile_rotation(reader, table, w, p.rotation);
      p.key_label = reader.string(table, "key", w);
      // With rotation, the key and x5u come from the rotation state.
      const bool from_state = p.rotation.enabled && table.get("key") == nullptr;
      if (p.key_label.empty() && !from_state) {
        reader.fail(&table, w + " needs key (a key label in the token)");
      }
      p.x5u = reader.string(table, "x5u", w);
      if (!(from_state && table.get("x5u") == nullptr) &&
          (p.x5u.rfind("https://", 0) != 0 ||
           p.x5u.find_first_of("?#<>\" \t") != std::string::npos)) {
        reader.fail(table.get("x5u") ? table.get("x5u") : &table,
                    w + " needs x5u, an https:// URL without query or fragment");
      }
      p.origid = reader.string(table, "origid", w);
      if (!p.origid.empty() && !stir::is_uuid(p.origid)) {
        reader.fail(table.get("origid"), w + ": origid must be a UUID");
      }
      p.attest = reader.strings(table, "attest", w);
      if (p.attest.empty()) p.attest = {"A", "B", "C"};
      for (const auto& a : p.attest) {
        if (!is_attestation(a)) reader.fail(table.get("attest"), w + ": attest holds A, B or C");
      }
      p.clients = reader.strings(table, "clients", w);
      for (const auto& c : p.clients) {
        // The profile follows from the client identity, so one identity, one profile.
        if (!clients.insert(c).second) {
          reader.fail(table.get("clients"), "client '" + c + "' is listed in two profiles");
        }
      }
      config.profiles.push_back(std::move(p));
    }
  }
  const auto& d = config.server.default_profile;
  if (!d.empty() && !names.contains(d)) {
    reader.fail(nullptr, "server.default_profile '" + d + "' is not a [[profile]] name");
  }
}

void read_verifier(const Reader& reader, const toml::table& root, Config& config) {
  const toml::table* table = sub_table(reader, root, "verifier");
  if (table == nullptr) return;
  std::set<std::string> keys = {"trust_anchors",     "trust_anchor_files",
                                "crl_files",         "crl_dir",
                                "fetch_crl_from_dp", "crl_check_all",
                                "allowed_ports",     "allow_loopback",
                                "allow_private",     "tls_ca_file",
                                "require_spc",       "allowed_spcs",
                                "cache_dir",         "once_per_day_reason_policy"};
  const auto limits = stir::vs::verifier_limits();
  reader.only_keys(*table, "[verifier]", with_keys(std::move(keys), limits));
  const std::string w = "verifier";
  stir::vs::VerifierConfig v;
  if (auto anchors = reader.path(*table, "trust_anchors", w); !anchors.empty()) {
    if (std::error_code ec; fs::is_directory(anchors, ec)) {
      v.trust_anchors_dir = anchors;
    } else {
      v.trust_anchor_files.push_back(anchors);
    }
  }
  const fs::path base = fs::absolute(config.path).parent_path();
  auto resolve = [&base](const std::string& p) {
    return fs::path(p).is_absolute() ? p : (base / p).lexically_normal().string();
  };
  for (const auto& f : reader.strings(*table, "trust_anchor_files", w)) {
    v.trust_anchor_files.push_back(resolve(f));
  }
  for (const auto& f : reader.strings(*table, "crl_files", w)) v.crl_files.push_back(resolve(f));
  v.crl_dir = reader.path(*table, "crl_dir", w);
  v.fetch_crl_from_dp = reader.boolean(*table, "fetch_crl_from_dp", w, v.fetch_crl_from_dp);
  v.crl_check_all = reader.boolean(*table, "crl_check_all", w, v.crl_check_all);
  if (const toml::node* node = table->get("allowed_ports")) {
    const auto* ports = node->as_array();
    if (ports == nullptr) reader.fail(node, "verifier.allowed_ports must be an array");
    v.allowed_ports.clear();
    for (const auto& port : *ports) {
      const auto* value = port.as_integer();
      if (value == nullptr || value->get() < 1 || value->get() > 65535) {
        reader.fail(&port, "verifier.allowed_ports holds port numbers");
      }
      v.allowed_ports.push_back(static_cast<std::uint16_t>(value->get()));
    }
  }
  v.allow_loopback = reader.boolean(*table, "allow_loopback", w, v.allow_loopback);
  v.allow_private = reader.boolean(*table, "allow_private", w, v.allow_private);
  v.tls_ca_file = reader.path(*table, "tls_ca_file", w);
  v.require_spc = reader.boolean(*table, "require_spc", w, v.require_spc);
  v.allowed_spcs = reader.strings(*table, "allowed_spcs", w);
  v.cache_dir = reader.path(*table, "cache_dir", w);
  v.once_per_day_reason_policy =
      reader.boolean(*table, "once_per_day_reason_policy", w, v.once_per_day_reason_policy);
  read_integers(reader, *table, w, limits, v);
  try {
    stir::vs::validate_config(v);
  } catch (const stir::Error& e) {
    reader.fail(table, e.what());
  }
  config.verifier = std::move(v);
}

}  // namespace

Config load_config(const std::string& path) {
  const toml::table root = stir::toml_config::parse_file(
      path, "give --config FILE or set SKS_CONFIG; `sks init --dir DIR` makes one");

  Config config;
  config.path = path;
  const Reader reader(path);
  reader.only_keys(root, "the top level",
                   {"token", "keyring", "certificates", "server", "metrics", "profile", "verifier",
                    "rotation", "rate_limit", "audit"});

  read_token(reader, root, config);
  read_keyring(reader, root, config);
  read_server(reader, root, config.server);
  read_metrics(reader, root, config.server, config.metrics);
  read_profiles(reader, root, config);
  read_verifier(reader, root, config);
  read_rotation(reader, root, config);
  read_rate_limit(reader, root, config.rate_limit);
  read_audit(reader, root, config.audit);
  if (config.server.present && config.server.verification && !config.verifier) {
    reader.fail(nullptr, "server.roles has \"verification\" but there is no [verifier] table");
  }
  // Only a pure verifier (sks verify --from/--to, a verification-only
  // server) works without a token.
  const bool verification_only =
      config.verifier && (!config.server.present || !config.server.signing);
  if (config.token.module.empty() && !verification_only) {
    reader.fail(nullptr, "missing [token] table");
  }
  if (config.server.present && config.server.signing && config.profiles.empty()) {
    reader.fail(nullptr, "server.roles has \"signing\" but there is no [[profile]]");
  }
  // A draining certificate must stay published as long as a token it
  // signed can be accepted.
  const std::int64_t floor = drain_floor_s(config.server.max_iat_skew_s);
  for (const auto& p : config.profiles) {
    if (!p.rotation.enabled || p.rotation.drain_s >= floor) continue;
    reader.fail(nullptr,
                "profile '" + p.name +
                    "' rotation.drain_s = " + std::to_string(p.rotation.drain_s) +
                    " is below the drain floor of " + std::to_string(floor) +
                    " s = server.max_iat_skew_s " + std::to_string(config.server.max_iat_skew_s) +
                    " (the furthest-future iat the server signs) + " +
                    std::to_string(kVerifierFreshnessSeconds) + " s verifier freshness + " +
                    std::to_string(kClockSkewSeconds) + " s clock skew + " +
                    std::to_string(kDrainMarginSeconds) +
                    " s margin: a token signed just before the switch stays acceptable that long "
                    "after it; raise drain_s to at least " +
                    std::to_string(floor));
  }
  return config;
}

bool is_loopback_address(const std::string& address) {
  unsigned char bytes[16];
  if (::inet_pton(AF_INET, address.c_str(), bytes) == 1) return bytes[0] == 127;
  static const unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ::inet_pton(AF_INET6, address.c_str(), bytes) == 1 &&
         std::equal(bytes, bytes + 16, kLoopback6);
}

void apply_module_env(const TokenConfig& token) {
  for (const auto& [name, value] : token.module_env) ::setenv(name.c_str(), value.c_str(), 1);
}

std::string render_dev_config(const std::string& module, const std::string& label,
                              const std::string& pin_file, const std::string& softhsm2_conf) {
  std::ostringstream out;
  out << "# sks configuration for a development SoftHSM2 token, made by `sks init`.\n"
         "# Not for production: the token's PINs sit in files next to it.\n"
         "\n"
         "[token]\n"
         "# The PKCS#11 module; any HSM's module works the same way.\n"
         "module = "
      << toml::value<std::string>(module)
      << "\n"
         "# The token is found by its label (or serial), never by slot number.\n"
         "label = "
      << toml::value<std::string>(label)
      << "\n"
         "# The user PIN: a file only its owner can read (or pin_env = \"NAME\").\n"
         "pin_file = "
      << toml::value<std::string>(pin_file)
      << "\n"
         "# Sessions in the signing pool; 0 means one per CPU core.\n"
         "sessions = 0\n"
         "\n"
         "[token.module_env]\n"
         "# SoftHSM2 reads its token directory from this file.\n"
         "SOFTHSM2_CONF = "
      << toml::value<std::string>(softhsm2_conf) << "\n";
  return out.str();
}

}  // namespace sks
