// What the in-process signing-server suites (server, hardening, HSM fault)
// share: the TLS files of a server with mutual TLS and the config of one
// signing profile, so each suite states only what it changes.
//
// Files under DIR/tls/: server.pem (leaf and its CA, the chain a client
// verifies), server.key (0600), server-ca.pem, clients-ca.pem, and
// PREFIX.pem / PREFIX.key for each client written. Header-only, test code.
#pragma once

#include <string>
#include <vector>

#include "sks/config.h"
#include "test_pki.h"

namespace sks::testing {

inline constexpr const char* kOrigid = "de305d54-75b4-431b-adb2-eb6b9e546014";
inline constexpr const char* kX5u = "https://cr.example.net/sks-a.pem";

// A client's certificate and key as DIR/tls/NAME.pem and DIR/tls/NAME.key.
inline void write_tls_client(const std::string& dir, const std::string& name,
                             const stir::testing::TestCert& cert) {
  stir::testing::write_file(dir + "/tls/" + name + ".pem", cert.certificate_pem());
  stir::testing::write_file(dir + "/tls/" + name + ".key", cert.private_key_pem());
}

// The server's TLS files and tls.client as client.pem / client.key.
inline void write_server_tls(const std::string& dir, const stir::testing::TlsPki& tls) {
  stir::testing::write_file(dir + "/tls/server.pem",
                            tls.server.certificate_pem() + tls.server_ca.certificate_pem());
  stir::testing::write_file(dir + "/tls/server.key", tls.server.private_key_pem());
  stir::testing::write_file(dir + "/tls/server-ca.pem", tls.server_ca.certificate_pem());
  stir::testing::write_file(dir + "/tls/clients-ca.pem", tls.client_ca.certificate_pem());
  write_tls_client(dir, "client", tls.client);
}

// config.server on 127.0.0.1:0 with the files above, and one profile
// "subscribers-a" (key-a, kX5u, kOrigid, attestation A and B) for `clients`.
inline void configure_signing_server(Config& config, const std::string& dir,
                                     const std::vector<std::string>& clients) {
  config.path = dir + "/sks.toml";
  config.server.present = true;
  config.server.port = 0;
  config.server.tls_cert = dir + "/tls/server.pem";
  config.server.tls_key = dir + "/tls/server.key";
  config.server.client_ca = dir + "/tls/clients-ca.pem";
  SigningProfile a;
  a.name = "subscribers-a";
  a.key_label = "key-a";
  a.x5u = kX5u;
  a.origid = kOrigid;
  a.attest = {"A", "B"};
  a.clients = clients;
  config.profiles.push_back(a);
}

}  // namespace sks::testing
