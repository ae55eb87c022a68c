// The TLS server context both HTTPS servers (`sks serve`, `tn-cr serve`) use.
//
// Policy, the same for every server of the project:
// - TLS 1.2 or newer; TLS 1.3 is preferred by OpenSSL whenever the client
//   offers it. No compression, no renegotiation, server cipher preference.
// - TLS 1.3 suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
//   TLS_CHACHA20_POLY1305_SHA256.
// - TLS 1.2 suites: ECDHE key exchange with AEAD only,
//   ECDHE-{ECDSA,RSA}-AES128-GCM-SHA256, ECDHE-{ECDSA,RSA}-AES256-GCM-SHA384,
//   ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305 (no CBC, no RSA key exchange).
// - Mutual TLS when `client_ca` is set: verify_peer and
//   verify_fail_if_no_peer_cert against those CAs, so a client without a
//   certificate fails the handshake (TLS 1.3: the "certificate required"
//   alert) before any byte of HTTP is read.
// - Session resumption: a server-side session cache and session tickets, so
//   a reconnecting client skips the full handshake (the client certificate
//   is kept with the session).
//
// Threads: the context is read-only once built and shared by every
// connection. Errors: stir::Error(kConfig) naming the file that does not load.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace stir::http {

struct TlsSettings {
  std::string cert_chain_file;  // PEM chain, leaf first
  std::string key_file;         // PEM private key of the leaf
  std::string client_ca_file;   // PEM CAs for client certificates; empty = no mutual TLS
};

std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const TlsSettings& settings);

}  // namespace stir::http
