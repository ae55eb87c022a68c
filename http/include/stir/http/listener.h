// The listener of an HTTPS server as its operator configures it: address,
// TLS files, threads, deadlines and limits. One struct, one TOML reader and
// one TLS set-up for `sks serve` and `tn-cr serve` (both read it from their
// [server] table); listener_options() turns it into the stir::http::Options
// the server runs with (http/include/stir/http/server.h says what each limit
// does).
//
// Every setting is one row of kListenerFields (listener.cpp): its key, its
// bounds and what it means; its default is the member initialiser below.
// Where the two servers' defaults differ, the server sets its own before
// reading (tn_cr::ServerOptions: port 8443, keep-alive 5 s and 10,000
// requests; sks: port 8444, keep-alive 30 s and 100,000 requests).
//
// Old key names, accepted as aliases:
//   threads          = io_threads (io_threads wins when both are given)
//   read_timeout_ms  = the default of header_timeout_ms and body_timeout_ms
//
// The TOML reader is in stir/http/listener_reader.h, apart, so that this
// header needs no TOML.
//
// Threads: plain data and stateless functions. Errors: make_listener_tls()
// throws what stir::http::check_tls_files() and
// make_server_tls_context() throw.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stir/http/server.h"

namespace stir::http {

struct ListenerConfig {
  std::string listen = "127.0.0.1";    // IPv4 or IPv6 address
  int port = 8444;                     // 0 = ephemeral (bind() reports it)
  std::string tls_cert;                // PEM chain, leaf first
  std::string tls_key;                 // PEM private key of the TLS certificate, mode 0600
  std::string client_ca;               // PEM CAs for client certificates (mutual TLS)
  bool lab_plain_http = false;         // lab only: no TLS at all
  bool lab_no_client_cert = false;     // lab only: TLS without client certificates
  std::size_t io_threads = 0;          // I/O threads; 0 = CPU cores
  int backlog = 0;                     // listen queue; 0 = min(4096, somaxconn)
  std::size_t max_connections = 4096;  // open at once; more are closed at once
  int handshake_timeout_ms = 5000;     // accept to TLS handshake done
  int header_timeout_ms = 5000;        // a request's header once it began
  int body_timeout_ms = 5000;          // a request's body
  int write_timeout_ms = 5000;         // a response
  int keep_alive_timeout_s = 30;       // idle wait for the next request
  std::size_t keep_alive_max_requests = 100000;  // per connection
  std::size_t max_body_bytes = 16 * 1024;        // request body limit (413)
  // Hostile peers (README "Security").
  int first_byte_timeout_ms = 2000;              // accept to the ClientHello's first byte
  std::size_t max_handshakes_per_address = 256;  // pending from one address; 0 = no cap
  int reserved_connection_percent = 25;          // slots kept for authenticated clients
  int tls_session_lifetime_s = 300;              // session cache and tickets; 0 = no resumption
  int client_verify_depth = 4;                   // CAs above a client's leaf
  // Ask for a client certificate but never require one (tn-cr: verifiers
  // stay anonymous; only /metrics looks at the certificate).
  bool client_certificate_optional = false;
};

// The stir::http::Options of `config`: address, deadlines, limits and `tls`.
// Routes, pools and handlers are the server's to add.
Options listener_options(const ListenerConfig& config,
                         std::shared_ptr<boost::asio::ssl::context> tls);

// The TLS context of `config` (mutual TLS with client_ca unless
// lab_no_client_cert), after check_tls_files() with `program` in its
// messages; null for lab_plain_http. Each lab switch passes one warning
// line to `warn`.
std::shared_ptr<boost::asio::ssl::context> make_listener_tls(
    const ListenerConfig& config, std::string_view program,
    const std::function<void(std::string_view)>& warn);

// Whether one of a client's certificate names (CN or DNS SAN, as the TLS
// layer read them) is in `allowed`, compared as exact bytes: the allow-list
// check of both servers' /metrics and of sks's role lists.
bool client_listed(const std::vector<std::string>& allowed,
                   const std::vector<std::string>& client_names);

// "https://127.0.0.1:8443" (scheme, listen address in brackets when IPv6,
// `port`).
std::string listener_url(const ListenerConfig& config, int port);

}  // namespace stir::http
