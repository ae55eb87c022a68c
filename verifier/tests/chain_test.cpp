// Chain, CRL and certificate policy checks (E17), directly on the
// ChainValidator and, for CRLs from distribution points, through the Verifier.
#include "stir/verifier/chain.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "stir/error.h"
#include "stir/verifier/verifier.h"
#include "stir/x509.h"
#include "vs_fixture.h"

namespace stir::vs {
namespace {

using stir::testing::CertSpec;
using stir::testing::issue;
using stir::testing::make_crl_pem;
using stir::testing::TestCert;
using stir::testing::write_file;
using testing::unix_now;

std::uint64_t serial_of(const TestCert& cert) {
  std::uint64_t serial = 0;
  ASN1_INTEGER_get_uint64(&serial, X509_get0_serialNumber(cert.certificate.get()));
  return serial;
}

class Chain : public testing::VerifierFixture {
 protected:
  void add_routes(testing::TestHttpsServer& server) override {
    server.get(R"(/crl/ca\.crl)", [this](const std::smatch&) {
      ++crl_hits_;
      return testing::TestHttpsServer::ok(crl_body_, "application/pkix-crl");
    });
    server.get(R"(/dp-leaf\.pem)", [this](const std::smatch&) {
      return testing::TestHttpsServer::ok(dp_chain_, "application/pem-certificate-chain");
    });
  }

  std::vector<X509Ptr> chain_of(const TestCert& leaf) const {
    return parse_pem_chain(leaf.certificate_pem() + pki_.ca.certificate_pem());
  }
  std::vector<X509Ptr> chain() const { return parse_pem_chain(pki_.chain_pem()); }

  static CertSpec leaf_spec() {
    CertSpec spec;
    spec.common_name = "SHAKEN 1234";
    spec.spc = "1234";
    return spec;
  }

  // A CRL that claims to be the CA's but is signed by another key.
  std::string forged_crl(const std::vector<std::uint64_t>& revoked) const {
    CertSpec impostor;
    impostor.common_name = "Test STI-CA";  // same subject as the real CA
    impostor.ca = true;
    const TestCert fake = issue(impostor, nullptr);
    return make_crl_pem(fake, revoked);
  }

  std::atomic<int> crl_hits_{0};
  std::string crl_body_;
  std::string dp_chain_;
};

TEST_F(Chain, GoodChain) {
  const ChainValidator validator(config());
  const ChainVerdict verdict = validator.validate(chain(), unix_now());
  EXPECT_TRUE(verdict.ok) << verdict.detail;
  EXPECT_EQ(verdict.spc, "1234");
  EXPECT_LE(verdict.valid_from, unix_now());
  EXPECT_GT(verdict.valid_until, unix_now() + 86400);
  EXPECT_EQ(validator.trust_anchor_count(), 1u);
  EXPECT_FALSE(validator.crl_checking());
}

TEST_F(Chain, ServedRootIsNotAnAnchor) {
  // A chain that carries its own (untrusted) root is still untrusted.
  const stir::testing::ShakenPki other = stir::testing::make_shaken_pki();
  const ChainValidator validator(config());
  const auto with_root = parse_pem_chain(other.chain_pem() + other.root.certificate_pem());
  const ChainVerdict verdict = validator.validate(with_root, unix_now());
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.reason, "certificate not issued by a trusted STI-PA root") << verdict.detail;
}

TEST_F(Chain, MissingIntermediateFails) {
  const ChainValidator validator(config());
  const auto leaf_only = parse_pem_chain(pki_.leaf.certificate_pem());
  EXPECT_FALSE(validator.validate(leaf_only, unix_now()).ok);
}

TEST_F(Chain, ValidityAtIat) {
  const ChainValidator validator(config());
  // The leaf is valid from an hour ago for 30 days.
  EXPECT_FALSE(validator.validate(chain(), unix_now() - 7200).ok);
  EXPECT_FALSE(validator.validate(chain(), unix_now() + std::int64_t{31} * 86400).ok);
}

TEST_F(Chain, TrustAnchorsFromAFolder) {
  VerifierConfig c = config();
  c.trust_anchor_files.clear();
  c.trust_anchors_dir = dir_.path() + "/anchors";
  write_file(dir_.file("anchors/README"), "not a certificate");
  const ChainValidator validator(c);
  EXPECT_TRUE(validator.validate(chain(), unix_now()).ok);
}

TEST_F(Chain, ConfigErrors) {
  VerifierConfig c = config();
  c.trust_anchor_files = {dir_.file("nope.pem")};
  try {
    ChainValidator validator(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
  }
  c.trust_anchor_files = {write_file(dir_.file("junk.pem"), "junk")};
  EXPECT_THROW(ChainValidator{c}, Error);
  c.trust_anchor_files.clear();
  EXPECT_THROW(Verifier{c}, Error);
  c = config();
  c.crl_files = {write_file(dir_.file("junk.crl"), "junk")};
  EXPECT_THROW(ChainValidator{c}, Error);
  c = config();
  c.total_timeout_ms = 0;
  EXPECT_THROW(Verifier{c}, Error);
  // One set of bounds (verifier_limits()) for the config file and the
  // library: 512 bytes of CRL passed here once and not in sks.toml.
  c = config();
  c.max_crl_bytes = 512;
  try {
    validate_config(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "verifier.max_crl_bytes: must be from 1024 to 67108864");
  }
  c.max_crl_bytes = 1024;
  EXPECT_NO_THROW(validate_config(c));
}

TEST_F(Chain, RevokedLeafIs437) {
  VerifierConfig c = config();
  c.crl_files = {write_file(dir_.file("ca.crl"), make_crl_pem(pki_.ca, {serial_of(pki_.leaf)}))};
  const ChainValidator validator(c);
  const ChainVerdict verdict = validator.validate(chain(), unix_now());
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.reason, "certificate revoked") << verdict.detail;
  Verifier verifier(c);
  const std::int64_t now = unix_now();
  const VerificationResult result = verifier.verify(request(identity(now), now));
  EXPECT_EQ(result.error_case, 17);
  EXPECT_EQ(result.reasoncode, 437);
  EXPECT_EQ(result.verstat, kVerstatFailed);
}

TEST_F(Chain, CrlNotRevokingPasses) {
  VerifierConfig c = config();
  c.crl_dir = dir_.path() + "/crls";
  write_file(dir_.file("crls/ca.crl"), make_crl_pem(pki_.ca, {12345}));
  const ChainValidator validator(c);
  EXPECT_TRUE(validator.crl_checking());
  const ChainVerdict verdict = validator.validate(chain(), unix_now());
  EXPECT_TRUE(verdict.ok) << verdict.detail;
}

TEST_F(Chain, CrlWithBadSignatureIsNotTrusted) {
  VerifierConfig c = config();
  // Claims to revoke nothing, but is not signed by the CA: it must not vouch
  // for the leaf.
  c.crl_files = {write_file(dir_.file("forged.crl"), forged_crl({}))};
  const ChainValidator validator(c);
  const ChainVerdict verdict = validator.validate(chain(), unix_now());
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.reason, "CRL signature invalid") << verdict.detail;
}

TEST_F(Chain, MissingCrlWhenCheckingIs437) {
  VerifierConfig c = config();
  // A CRL for another issuer only: the leaf's issuer has none.
  c.crl_files = {write_file(dir_.file("root.crl"), make_crl_pem(pki_.root, {}))};
  const ChainValidator validator(c);
  const ChainVerdict verdict = validator.validate(chain(), unix_now());
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.reason, "no CRL for the certificate") << verdict.detail;
}

TEST_F(Chain, CrlCheckAllNeedsEveryLevel) {
  VerifierConfig c = config();
  c.crl_check_all = true;
  c.crl_files = {write_file(dir_.file("ca.crl"), make_crl_pem(pki_.ca, {}))};
  EXPECT_FALSE(ChainValidator(c).validate(chain(), unix_now()).ok);
  c.crl_files.push_back(write_file(dir_.file("root.crl"), make_crl_pem(pki_.root, {})));
  const ChainVerdict verdict = ChainValidator(c).validate(chain(), unix_now());
  EXPECT_TRUE(verdict.ok) << verdict.detail;
  // The intermediate revoked by the root.
  c.crl_files.back() =
      write_file(dir_.file("root.crl"), make_crl_pem(pki_.root, {serial_of(pki_.ca)}));
  EXPECT_EQ(ChainValidator(c).validate(chain(), unix_now()).reason, "certificate revoked");
}

TEST_F(Chain, KeyUsageAndSpcPolicy) {
  const ChainValidator validator(config());
  CertSpec no_spc = leaf_spec();
  no_spc.spc.reset();
  EXPECT_EQ(validator.validate(chain_of(issue(no_spc, &pki_.ca)), unix_now()).reason,
            "no SPC in TNAuthList");
  VerifierConfig c = config();
  c.allowed_spcs = {"9999"};
  EXPECT_EQ(ChainValidator(c).validate(chain(), unix_now()).reason, "SPC not allowed");
}

TEST_F(Chain, CrlFromDistributionPoint) {
  CertSpec spec = leaf_spec();
  spec.crl_url = server_->url("/crl/ca.crl");
  const TestCert leaf = issue(spec, &pki_.ca);
  dp_chain_ = leaf.certificate_pem() + pki_.ca.certificate_pem();
  crl_body_ = make_crl_pem(pki_.ca, {});
  VerifierConfig c = config();
  c.fetch_crl_from_dp = true;
  Verifier verifier(c);
  const std::string url = server_->url("/dp-leaf.pem");
  const std::int64_t now = unix_now();
  auto verify_at = [&](std::int64_t t) {
    return verifier.verify(request(identity(claims(t), url, leaf.key.get()), t));
  };
  const VerificationResult good = verify_at(now);
  EXPECT_TRUE(good.passed()) << good.detail;
  EXPECT_EQ(crl_hits_.load(), 1);

  // The CRL now revokes the leaf: seen once the cached CRL and verdict expire.
  crl_body_ = make_crl_pem(pki_.ca, {serial_of(leaf)});
  EXPECT_TRUE(verify_at(now + 10).passed());
  const VerificationResult revoked = verify_at(now + 3600);
  EXPECT_EQ(crl_hits_.load(), 2);
  EXPECT_EQ(revoked.error_case, 17) << revoked.detail;
  EXPECT_NE(revoked.reasondesc.find("revoked"), std::string::npos) << revoked.reasondesc;
  EXPECT_EQ(verifier.metrics().crl_cache_misses, 2u);
}

TEST_F(Chain, CrlFromDistributionPointWithBadSignature) {
  CertSpec spec = leaf_spec();
  spec.crl_url = server_->url("/crl/ca.crl");
  const TestCert leaf = issue(spec, &pki_.ca);
  dp_chain_ = leaf.certificate_pem() + pki_.ca.certificate_pem();
  crl_body_ = forged_crl({});
  VerifierConfig c = config();
  c.fetch_crl_from_dp = true;
  Verifier verifier(c);
  const std::int64_t now = unix_now();
  const VerificationResult result = verifier.verify(
      request(identity(claims(now), server_->url("/dp-leaf.pem"), leaf.key.get()), now));
  EXPECT_EQ(result.error_case, 17) << result.detail;
  EXPECT_EQ(result.verstat, kVerstatFailed);
}

TEST_F(Chain, UnreachableDistributionPointIs437) {
  CertSpec spec = leaf_spec();
  spec.crl_url = server_->url("/crl/none.crl");
  const TestCert leaf = issue(spec, &pki_.ca);
  dp_chain_ = leaf.certificate_pem() + pki_.ca.certificate_pem();
  VerifierConfig c = config();
  c.fetch_crl_from_dp = true;
  Verifier verifier(c);
  const std::int64_t now = unix_now();
  const VerificationResult result = verifier.verify(
      request(identity(claims(now), server_->url("/dp-leaf.pem"), leaf.key.get()), now));
  EXPECT_EQ(result.error_case, 17) << result.detail;
  EXPECT_NE(result.reasondesc.find("no CRL"), std::string::npos) << result.reasondesc;
}

TEST(CrlParsing, PemAndDerAndJunk) {
  const TestCert ca = issue(
      [] {
        CertSpec s;
        s.ca = true;
        return s;
      }(),
      nullptr);
  const std::string pem = make_crl_pem(ca, {1, 2});
  EXPECT_EQ(parse_crls(pem).size(), 1u);
  EXPECT_EQ(parse_crls(pem + pem).size(), 2u);
  const auto crls = parse_crls(pem);
  unsigned char* der = nullptr;
  const int len = i2d_X509_CRL(crls.front().get(), &der);
  const std::string der_text(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  EXPECT_EQ(parse_crls(der_text).size(), 1u);
  EXPECT_THROW(parse_crls("junk"), Error);
  EXPECT_THROW(parse_crls(der_text.substr(0, 20)), Error);
  EXPECT_THROW(parse_crls("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), Error);
}

}  // namespace
}  // namespace stir::vs
