// TEST ONLY: a fixture with a SHAKEN test PKI, an HTTPS x5u server on
// 127.0.0.1 serving its chain (counting requests), and a VerifierConfig that
// trusts both (loopback and the server's port explicitly allowed).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "stir/passport.h"
#include "stir/verifier/config.h"
#include "stir/verifier/verifier.h"
#include "test_pki.h"
#include "vs_test_support.h"

namespace stir::vs::testing {

inline constexpr const char* kOrigTn = "12155550121";
inline constexpr const char* kDestTn = "12155550131";
inline constexpr const char* kOrigid = "123e4567-e89b-12d3-a456-426655440000";

class VerifierFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = stir::testing::make_shaken_pki("1234");
    tls_ = stir::testing::make_tls_pki();
    anchors_file_ =
        stir::testing::write_file(dir_.file("anchors/root.pem"), pki_.root.certificate_pem());
    tls_ca_file_ =
        stir::testing::write_file(dir_.file("tls-ca.pem"), tls_.server_ca.certificate_pem());
    server_ = std::make_unique<TestHttpsServer>(tls_);
    server_->get("/sp\\.pem", [this](const std::smatch&) {
      ++x5u_hits_;
      return TestHttpsServer::ok(pki_.chain_pem(), "application/pem-certificate-chain",
                                 {{"Cache-Control", "max-age=86400"}});
    });
    add_routes(*server_);
    server_->start();
  }

  void TearDown() override { server_->stop(); }

  // Extra routes for a test suite, before the server starts.
  virtual void add_routes(TestHttpsServer&) {}

  VerifierConfig config() const {
    VerifierConfig c;
    c.trust_anchor_files = {anchors_file_};
    c.tls_ca_file = tls_ca_file_;
    c.allow_loopback = true;
    c.allowed_ports = {443, 8443, static_cast<std::uint16_t>(server_->port())};
    // Generous: on a loaded machine eight concurrent TLS handshakes may take
    // seconds; the timeout tests set their own short limits.
    c.connect_timeout_ms = 10000;
    c.total_timeout_ms = 20000;
    return c;
  }

  std::string x5u() const { return server_->url("/sp.pem"); }

  static ShakenClaims claims(std::int64_t iat) {
    ShakenClaims c;
    c.attest = "A";
    c.orig_tn = kOrigTn;
    c.dest_tn = {kDestTn};
    c.iat = iat;
    c.origid = kOrigid;
    return c;
  }

  // A valid Identity header signed by `key` (default: the test leaf).
  std::string identity(const ShakenClaims& c, const std::string& url,
                       EVP_PKEY* key = nullptr) const {
    PassportHeader header;
    header.x5u = url;
    const KeySigner signer(key != nullptr ? key : pki_.leaf.key.get());
    return compose_identity_header(sign_passport(header, c, signer), url);
  }
  std::string identity(std::int64_t iat) const { return identity(claims(iat), x5u()); }

  static VerificationRequest request(const std::string& identity_value, std::int64_t now) {
    VerificationRequest r;
    r.identity = identity_value;
    r.from_tn = kOrigTn;
    r.to_tns = {kDestTn};
    r.now = now;
    return r;
  }

  TempDir dir_;
  stir::testing::ShakenPki pki_;
  stir::testing::TlsPki tls_;
  std::string anchors_file_;
  std::string tls_ca_file_;
  std::unique_ptr<TestHttpsServer> server_;
  std::atomic<int> x5u_hits_{0};
};

}  // namespace stir::vs::testing
