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
//   alert) before any byte of HTTP is read. With
//   `client_certificate_optional`, the certificate is asked for and verified
//   when sent, but a client without one is let in (no names): tn-cr, whose
//   verifiers are anonymous and only /metrics needs an identity.
// - Client chains are verified to at most `verify_depth` CA certificates
//   above the leaf (default 4: root, policy CA, issuing CA and one more).
// - A client certificate whose subject CN or a DNS subjectAltName holds a
//   NUL, a control character (C0, DEL, C1) or invalid UTF-8, whose subject
//   has more than one CN, fails the handshake (alert bad_certificate):
//   names are compared as exact bytes later, and a name that a C string
//   or a log line would cut or split must never reach that comparison.
// - Session resumption: a server-side session cache and session tickets,
//   both expiring after `session_lifetime_s` (0: no resumption at all),
//   counted from the full handshake: a ticket renewed at a resumption
//   carries the time of the handshake it descends from. A
//   resumed session keeps the client certificate it was made with; the
//   server closes a resumed connection whose certificate has expired
//   (server.h), so a session never outlives its certificate.
//
// Threads: the context is read-only once built and shared by every
// connection. Errors: stir::Error(kConfig) naming the file that does not load.
#pragma once

#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

namespace stir::http {

struct TlsSettings {
  std::string cert_chain_file;    // PEM chain, leaf first
  std::string key_file;           // PEM private key of the leaf
  std::string client_ca_file;     // PEM CAs for client certificates; empty = no mutual TLS
  int verify_depth = 4;           // CA certificates allowed above a client's leaf
  long session_lifetime_s = 300;  // session cache and tickets; 0 = no resumption

  // With client_ca_file: a client may send no certificate (and has no names).
  bool client_certificate_optional = false;
};

// The certificate's subject CN, then its DNS subjectAltNames, each read
// with its length (CN converted to UTF-8). Empty with `why` set when a
// name is refused (see above); a certificate with no CN and no DNS SAN
// gives an empty list and no `why`.
std::vector<std::string> certificate_names(const X509* certificate, std::string* why);

std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const TlsSettings& settings);

}  // namespace stir::http
