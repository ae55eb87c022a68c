// The tn-cr configuration file: one TOML file with comments.
//
// Found as `--config FILE`, else $TN_CR_CONFIG, else kDefaultConfigPath.
// Relative paths inside the file are taken relative to the file's folder.
// Unknown keys are errors, so a typo never silently falls back to a
// default; errors are stir::Error(kConfig) naming the file, line and key.
//
//   [repository]
//   dir = "certs"                 # published chains; default: "certs" beside the config
//
//   [server]                      # `tn-cr serve`; needed by serve only. The listener
//                                 # keys are stir::http::ListenerConfig's
//                                 # (http/include/stir/http/listener.h), read by
//                                 # the reader sks uses too, without client_ca,
//                                 # lab_no_client_cert, client_verify_depth and
//                                 # max_body_bytes
//   listen = "0.0.0.0"
//   port = 8443                   # 443 or 8443 for verifiers; 0 = any free port
//   tls_cert = "tls/server.pem"   # chain, leaf first
//   tls_key = "tls/server.key"
//   max_age_s = 86400             # Cache-Control max-age; 86400 or more
//   path_prefix = "/"             # x5u https://host:8443/certs/x.pem -> "/certs/"
//   io_threads = 0                # I/O threads; 0 = one per CPU core (old name: threads)
//   handshake_timeout_ms = 5000   # accept to TLS handshake done (idle connections close)
//   header_timeout_ms = 5000      # a request's header (old name of both: read_timeout_ms)
//   body_timeout_ms = 5000        # a request's body
//   write_timeout_ms = 5000
//   keep_alive_timeout_s = 5
//   keep_alive_max_requests = 10000
//   max_connections = 4096        # open at once; more are accepted and closed at once
//   backlog = 0                   # listen queue; 0 = min(4096, net.core.somaxconn)
//   first_byte_timeout_ms = 2000  # accept to the ClientHello's first byte
//   max_handshakes_per_address = 256 # unfinished handshakes from one address; 0 = no cap
//   reserved_connection_percent = 25 # slots kept for connections past the handshake
//   tls_session_lifetime_s = 300  # TLS session cache and tickets; 0 = no resumption
//   lab_plain_http = false        # lab only: plain HTTP, logs a warning
//   client_ca = "tls/metrics-ca.pem"  # CAs of the metrics clients (asked for, not required)
//   metrics_clients = ["prometheus.example.net"]  # GET /metrics; absent: no /metrics
#pragma once

#include <string>

#include "tn_cr/server.h"

namespace tn_cr {

inline constexpr const char* kDefaultConfigPath = "/etc/tn-cr/tn-cr.toml";

struct Config {
  std::string path;            // the file it was read from
  std::string repository_dir;  // absolute
  bool has_server = false;     // a [server] table was given
  ServerOptions server;        // server.repository_dir == repository_dir
};

// Which file to read: `cli_path` if given, else $TN_CR_CONFIG, else the default.
std::string resolve_config_path(const std::string& cli_path);

Config load_config(const std::string& path);

}  // namespace tn_cr
