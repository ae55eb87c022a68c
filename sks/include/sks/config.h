// The sks configuration file: one TOML file with comments.
//
// Found as `--config FILE`, else $SKS_CONFIG, else kDefaultConfigPath.
// Relative paths inside the file are taken relative to the file's folder.
// Unknown keys are errors, so a typo never silently falls back to a
// default. load_config() validates everything it can without touching the
// token; errors are stir::Error(kConfig) with the file and line.
//
//   [token]
//   module = "/usr/lib/softhsm/libsofthsm2.so"  # PKCS#11 module path
//   label = "sks"                               # or serial = "..."; never a slot number
//   pin_file = "user.pin"                       # mode 0600; or pin_env = "SKS_PIN"
//   sessions = 0                                # session pool size; 0 = CPU cores
//   signature_check = "sample"                  # always | sample | off
//   signature_check_every = 100                 # sample: 1 in N (and after errors)
//   signature_check_strict_s = 600              # sample: all, this long after a failure
//   [token.module_env]                          # set before the module loads
//   SOFTHSM2_CONF = "/var/lib/sks/softhsm2.conf"
//
//   [certificates]               # the certificate store (was [keyring], still read
//   dir = "keyring"              #   with a deprecation warning); default: beside the config
//
//   [server]                     # `sks serve`; see ServerConfig for every setting
//   listen = "127.0.0.1"
//   port = 8444
//   tls_cert = "tls/server.pem"  # chain, leaf first
//   tls_key = "tls/server.key"   # mode 0600
//   client_ca = "tls/clients-ca.pem"
//   admins = ["ops.example.net"]   # client identities allowed on GET /admin/v1/keys
//   verification_clients = ["sbc1.example.net"]  # absent: any client of client_ca
//   metrics_clients = ["prometheus.example.net"]  # absent: any client of client_ca
//                                # (only without [metrics]: GET /metrics on this port)
//
//   [metrics]                    # optional; see MetricsConfig: /metrics on a listener
//   listen = "127.0.0.1"         #   of its own; the signing port then 404s /metrics
//   port = 9464
//   tls_cert = "tls/server.pem"  # all three or none; none: plain HTTP, loopback only
//   tls_key = "tls/server.key"
//   client_ca = "tls/ops-ca.pem"
//   clients = ["prometheus.example.net"]  # absent: any client of metrics.client_ca
//
//   [rate_limit]                 # `sks serve`, signing route; see RateLimitConfig
//   per_client_per_s = 0         # 0 = off (the default)
//
//   [audit]                      # `sks serve`; see AuditConfig. No table: no audit log
//   file = "/var/log/sks/audit.jsonl"
//
//   [verifier]                   # the verification role and `sks verify --from/--to`
//   trust_anchors = "sti-pa-roots"  # STI-PA root(s): a PEM file or a folder of them
//   (every stir::vs::VerifierConfig field, by the same name)
//
//   [rotation]                   # `sks rotate`; see RotationConfig
//   state_file = "rotation/state.json"
//   issue_command = ["sti-dev-ca", "issue", "--dir", "pki", "--csr", "{csr}", "--out", "{chain}"]
//   publish_command = ["tn-cr", "publish", "--dir", "cr", "--chain", "{chain}", "--name", "{name}"]
//   unpublish_command = ["tn-cr", "unpublish", "{name}", "--yes", "--dir", "cr"]
//   revoke_command = ["sti-dev-ca", "revoke", "--dir", "pki", "--serial", "{serial}"]
//
//   [[profile]]                  # one per signing profile
//   name = "subscribers-a"
//   key = "shaken-2026-11"       # key label in the token (not with [profile.rotation])
//   x5u = "https://cr.example.net/shaken-2026-11.pem"
//   origid = "de305d54-75b4-431b-adb2-eb6b9e546014"
//   attest = ["A", "B", "C"]
//   clients = ["sbc1.example.net"]  # client certificate CN or DNS SAN
//   [profile.rotation]           # key and x5u come from the rotation state
//   x5u_base = "https://cr.example.net/"
//   spc = "1234"
//   subject = "/C=US/O=Example"
//   renew_before_days = 30
//   drain_s = 300                # never below 90
//
// Which wins: a profile with [profile.rotation] takes its key and x5u from
// the rotation state's active key; its key/x5u in the config are used only
// until the first rotation activates a key (migration). A profile without
// [profile.rotation] uses its key/x5u from the config, as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sks/pkcs11/signature_check.h"
#include "sks/secret.h"
#include "stir/http/listener.h"
#include "stir/verifier/config.h"

namespace sks {

inline constexpr const char* kDefaultConfigPath = "/etc/sks/sks.toml";

struct TokenConfig {
  std::string module;        // absolute path of the PKCS#11 module
  std::string label;         // token label
  std::string serial;        // token serial (alternative or addition to label)
  PinSource pin;             // where the user PIN comes from
  std::size_t sessions = 0;  // session pool size; 0 = number of CPU cores
  // Signatures verified with the key's public key before they leave
  // (sks/pkcs11/signature_check.h): always, sample (1 in
  // signature_check_every, plus each session's first after an error), off.
  p11::SignatureCheckMode signature_check = p11::SignatureCheckMode::kSample;
  std::uint64_t signature_check_every = p11::SignatureCheck::kDefaultEvery;  // 1..1000000
  // sample: after a failed check, every signature is checked this long.
  std::int64_t signature_check_strict_s = p11::SignatureCheck::kDefaultStrictPeriod.count();
  // Calls into the module (sks/pkcs11/module.h, recovery.h): one that has
  // not returned after call_timeout_ms counts as a dead token (breaker
  // open, 503); `sks serve` exits 75 once one has not returned for
  // wedged_exit_s. calls: "serial" (one at a time: p11-kit-client.so),
  // "parallel", or "auto" (serial for p11-kit-client.so only).
  std::int64_t call_timeout_ms = 5000;
  std::int64_t wedged_exit_s = 60;
  std::string calls = "auto";
  // Environment for the module (SOFTHSM2_CONF, ChrystokiConfigurationPath,
  // ...), used verbatim: give absolute paths.
  std::map<std::string, std::string> module_env;
};

// The certificate store: the certificate chains installed per key (`sks keys
// install-cert`). Not the in-memory key ring of the server. Read from
// [certificates]; the old name [keyring] is accepted with a warning.
struct CertificateStoreConfig {
  std::string dir;  // certificate chains per key; default: "keyring" beside the config (the
                    // folder keeps its old name so existing installations need no move)
};

// The rotation manager (`sks rotate`, sks/rotation/manager.h). Each step is
// an argv (no shell) whose elements may hold {csr}, {chain}, {name}, {x5u},
// {serial}, {label}, {profile}; the contract is in sks/rotation/steps.h.
struct RotationConfig {
  bool present = false;                        // a [rotation] table was given
  std::string state_file;                      // default: "rotation/state.json" beside the config
  std::vector<std::string> issue_command;      // CSR in ({csr}), chain out ({chain})
  std::vector<std::string> publish_command;    // publish {chain} under {name}
  std::vector<std::string> unpublish_command;  // remove {name}; exit 66 = already gone
  std::vector<std::string> revoke_command;     // revoke {serial} (optional)
  std::vector<std::string> reload_command;     // tell the servers (optional), e.g. systemctl reload
  int step_timeout_s = 120;                    // each step is killed after this
  std::string x5u_ca_file;  // CA file to check x5u over HTTPS before activation ("" = system)
  // The fleet's signing instances, by admin base URL (https://host:port):
  // the manager reads GET /admin/v1/keys of each with this client
  // certificate (an identity in their server.admins). Empty: the local
  // server (its status file beside the state) is the fleet.
  std::vector<std::string> instances;
  std::string admin_cert;  // PEM client certificate for the instances' admin API
  std::string admin_key;   // its private key (mode 0600)
  std::string admin_ca;    // CA file for the instances' TLS certificates ("" = system)
  // Seconds the manager waits for the instances to load a new state after
  // it asked them to reload (each of up to 3 attempts).
  int observe_timeout_s = 30;
  std::int64_t loaded_generation = 0;  // set by apply_rotation_state: the state's generation
};

// Rotation settings of one signing profile ([profile.rotation]).
struct ProfileRotation {
  bool enabled = false;
  std::string x5u_base;                      // https://host[:port]/path/ ; the name is appended
  std::string spc;                           // TNAuthList SPC requested in the CSR
  std::string subject;                       // CSR subject, e.g. "/C=US/O=Example"
  std::int64_t renew_before_s = 30 * 86400;  // renew_before_days
  // How long the old certificate stays published after the last instance
  // switched away from it: a token signed just before with iat up to
  // server.max_iat_skew_s in the future is accepted until iat + 60 s
  // freshness + clock skew (drain_floor_s); 5 minutes leaves margin.
  std::int64_t drain_s = 300;
  std::int64_t retention_s = 0;  // retired -> destroyed no earlier than this
  bool new_key = true;           // `rotate run` renews with a new key (false: same key)
};
inline constexpr std::int64_t kMinDrainSeconds = 90;
// The drain floor: the furthest-future iat the server signs
// (max_iat_skew_s) + 60 s verifier freshness + 15 s clock skew + 15 s margin.
inline constexpr std::int64_t kVerifierFreshnessSeconds = 60;
inline constexpr std::int64_t kClockSkewSeconds = 15;
inline constexpr std::int64_t kDrainMarginSeconds = 15;
inline std::int64_t drain_floor_s(std::int64_t max_iat_skew_s) {
  return max_iat_skew_s + kVerifierFreshnessSeconds + kClockSkewSeconds + kDrainMarginSeconds;
}

// `sks serve`. The listener (address, TLS files, threads, deadlines,
// limits, and their bounds) is stir::http::ListenerConfig
// (http/include/stir/http/listener.h), read by the one listener reader both
// servers share; the sks defaults are its own (port 8444, keep-alive 30 s
// and 100,000 requests per connection). Lab-only switches log a warning at
// start and are never for production. Memory per connection is at most
// read buffer (header 8 KiB + 4 KiB) + header and trailer fields (20 KiB)
// + max_body_bytes + responses (2 x 8 KiB) + TLS (64 KiB): 128 KiB with the
// defaults, so max_connections x 128 KiB (512 MiB for 4096) is what
// MemoryMax must allow beyond the process's base.
struct ServerConfig : stir::http::ListenerConfig {
  bool present = false;  // a [server] table was given
  std::string api_root = "/stir/v1";
  // Signing requests waiting for a signing worker (one worker per token
  // session); beyond this they are answered 503 POL5003 with Retry-After.
  std::size_t signing_queue_depth = 256;  // (0..100000)
  std::int64_t max_iat_skew_s = 60;       // |iat - now| beyond this is SVC4005
  std::string default_profile;            // profile for clients no profile lists (optional)
  bool signing = true;                    // server.roles: "signing" (POST {api_root}/signing)
  bool verification = false;              //   and/or "verification" (POST {api_root}/verification)
  std::vector<std::string> admins;        // client identities allowed on /admin/v1/ (CN or DNS SAN)
  // Client identities allowed on POST {api_root}/verification and on GET
  // /metrics (CN or DNS SAN, exact bytes; 403 POL4003 for others). Absent
  // (nullopt): any client certificate of client_ca, as before these keys
  // existed; [] : nobody.
  std::optional<std::vector<std::string>> verification_clients;
  std::optional<std::vector<std::string>> metrics_clients;
};

// [metrics]: GET /metrics on a listener of its own, so the SBCs' signing
// port serves nothing but the API (it answers /metrics 404 once this table
// is given; without it /metrics stays on the signing port, gated by
// server.metrics_clients, as before the table existed). The listener
// settings are the same keys as [server]'s, read by the same reader, with
// defaults for a scrape a few times a minute (1 I/O thread, 64 connections,
// port 9464). Either mutual TLS (tls_cert, tls_key and client_ca: its own
// CA, e.g. the ops CA of Prometheus's identity; `clients` its allow-list,
// exact bytes, 403 POL4003 for others) or, with none of the three, plain
// HTTP, which only a loopback address may serve (a node-local scraper).
// A reload (SIGHUP) does not change it: a new [metrics] needs a restart;
// a config whose [metrics] is invalid fails the reload and changes nothing.
struct MetricsConfig : stir::http::ListenerConfig {
  MetricsConfig() {
    port = 9464;
    io_threads = 1;
    max_connections = 64;
  }
  bool present = false;  // a [metrics] table was given
  // Client identities allowed (CN or DNS SAN, exact bytes). Absent
  // (nullopt): any client certificate of metrics.client_ca; [] : nobody.
  std::optional<std::vector<std::string>> clients;
  bool plain_http() const { return tls_cert.empty(); }
};

// Whether `address` (IPv4 or IPv6 text) is a loopback address: 127.0.0.0/8 or ::1.
bool is_loopback_address(const std::string& address);

// Per-client token buckets on the signing route (sks/server/rate_limiter.h).
// Off by default: the right rate is the client's busy-hour calls per second
// with headroom, which only the carrier knows, and a refused signature is a
// call that leaves unsigned.
struct RateLimitConfig {
  std::int64_t per_client_per_s = 0;  // sustained signings/s per client identity; 0 = off
  std::int64_t burst = 0;             // bucket size; 0 = per_client_per_s (1..10000000)
};

// The audit log (sks/server/audit_log.h): one JSON line per signing request.
struct AuditConfig {
  std::string file;                        // empty = no audit log
  std::int64_t max_file_bytes = 64 << 20;  // rotate beyond this (4096..1 TiB)
  int keep_files = 10;                     // rotated files kept: file.1 .. file.N (1..1000)
  std::size_t queue_depth = 65536;         // records waiting for the writer; more are dropped
};

struct SigningProfile {
  std::string name;
  std::string key_label;             // key label in the token (config key: `key`)
  std::string x5u;                   // URL of the key's certificate chain
  std::string origid;                // default origid (UUID) for requests without one
  std::vector<std::string> attest;   // allowed attestation levels
  std::vector<std::string> clients;  // allowed client identities (certificate CN or DNS SAN)
  ProfileRotation rotation;          // [profile.rotation]
  std::int64_t not_after = 0;        // certificate notAfter from the rotation state; 0 = unknown
};

struct Config {
  std::string path;  // the file it was read from
  TokenConfig token;
  CertificateStoreConfig certificates;
  ServerConfig server;
  MetricsConfig metrics;
  std::vector<SigningProfile> profiles;
  std::optional<stir::vs::VerifierConfig> verifier;  // a [verifier] table was given
  RotationConfig rotation;
  RateLimitConfig rate_limit;
  AuditConfig audit;
  std::vector<std::string> warnings;  // deprecations; the CLI prints them
};

// Which file to read: `cli_path` if given, else $SKS_CONFIG, else the default.
std::string resolve_config_path(const std::string& cli_path);

Config load_config(const std::string& path);

// Sets the module environment. Call before loading the module and before
// any other thread starts (setenv is not thread-safe).
void apply_module_env(const TokenConfig& token);

// The text of a config file for a development token (used by `sks init`).
std::string render_dev_config(const std::string& module, const std::string& label,
                              const std::string& pin_file, const std::string& softhsm2_conf);

}  // namespace sks
