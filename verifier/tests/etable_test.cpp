// One crafted token per row of PROTOCOL.md section 3's failure table: each
// gives exactly its reasoncode, verstat, E-case and JSON response.
#include <gtest/gtest.h>

#include "stir/base64url.h"
#include "stir/identity.h"
#include "stir/verifier/verifier.h"
#include "vs_fixture.h"

namespace stir::vs {
namespace {

using nlohmann::json;
using testing::kDestTn;
using testing::KeySigner;
using testing::kOrigid;
using testing::kOrigTn;
using testing::make_jws;
using testing::unix_now;

class ETable : public testing::VerifierFixture {
 protected:
  void SetUp() override {
    VerifierFixture::SetUp();
    now_ = unix_now();
    verifier_ = std::make_unique<Verifier>(config());
  }

  VerificationResult run(const std::string& identity_value) {
    return verifier_->verify(request(identity_value, now_));
  }

  std::string header_json(const std::string& x5u_json) const {
    return R"({"alg":"ES256","ppt":"shaken","typ":"passport","x5u":)" + x5u_json + "}";
  }
  std::string payload_json(std::int64_t iat) const {
    return R"({"attest":"A","dest":{"tn":[")" + std::string(kDestTn) + R"("]},"iat":)" +
           std::to_string(iat) + R"(,"orig":{"tn":")" + kOrigTn + R"("},"origid":")" + kOrigid +
           R"("})";
  }
  // A hand-built token signed by the leaf key, with its Identity parameters.
  std::string crafted(const std::string& header, const std::string& payload,
                      const std::string& params) const {
    const KeySigner signer(pki_.leaf.key.get());
    return make_jws(header, payload, signer) + params;
  }
  std::string params() const { return ";info=<" + x5u() + ">;alg=ES256;ppt=shaken"; }
  std::string quoted_x5u() const { return std::string("\"").append(x5u()).append("\""); }

  std::int64_t now_ = 0;
  std::unique_ptr<Verifier> verifier_;
};

void expect_case(const VerificationResult& result, int error_case, int reasoncode,
                 const char* verstat) {
  EXPECT_EQ(result.error_case, error_case) << result.reasondesc << " / " << result.detail;
  ASSERT_TRUE(result.reasoncode.has_value()) << result.detail;
  EXPECT_EQ(*result.reasoncode, reasoncode) << result.detail;
  EXPECT_EQ(result.verstat, verstat);
  EXPECT_FALSE(result.reasondesc.empty());
  const json response = to_verification_response(result);
  const json& inner = response.at("verificationResponse");
  ASSERT_TRUE(inner.at("reasoncode").is_number_integer());
  EXPECT_EQ(inner.at("reasoncode").get<int>(), reasoncode);
  EXPECT_EQ(inner.at("verstat"), verstat);
  EXPECT_EQ(inner.at("reasondesc"), result.reasondesc);
  const char* text = reasoncode == 403   ? "Stale Date"
                     : reasoncode == 436 ? "Bad Identity Info"
                     : reasoncode == 437 ? "Unsupported Credential"
                                         : "Invalid Identity Header";
  EXPECT_EQ(inner.at("reasontext"), text);
  EXPECT_EQ(inner.size(), 4u);
}

TEST_F(ETable, ValidTokenPasses) {
  const VerificationResult result = run(identity(now_));
  EXPECT_TRUE(result.passed()) << result.reasondesc << " / " << result.detail;
  EXPECT_EQ(result.error_case, 0);
  EXPECT_FALSE(result.reasoncode);
  ASSERT_TRUE(result.passport);
  EXPECT_EQ(result.passport->claims.orig_tn, kOrigTn);
  EXPECT_EQ(to_verification_response(result),
            json::parse(R"({"verificationResponse":{"verstat":"TN-Validation-Passed"}})"));
  EXPECT_EQ(x5u_hits_.load(), 1);
}

TEST_F(ETable, RequestTnsAreNormalised) {
  VerificationRequest r = request(identity(now_), now_);
  r.from_tn = "+1-215-555-0121";
  r.to_tns = {"+1 (215) 555.0131"};
  EXPECT_TRUE(verifier_->verify(r).passed());
}

TEST_F(ETable, E3RequestTimeOff) {
  VerificationRequest r = request(identity(now_), now_);
  r.time = now_ - 61;
  expect_case(verifier_->verify(r), 3, 403, kVerstatNoValidation);
  r.time = now_ + 61;
  expect_case(verifier_->verify(r), 3, 403, kVerstatNoValidation);
  r.time = now_ - 60;
  EXPECT_TRUE(verifier_->verify(r).passed());
}

TEST_F(ETable, E4CompactForm) {
  const std::string token = identity(now_);
  const std::string jws = token.substr(0, token.find(';'));
  const std::string compact = ".." + jws.substr(jws.rfind('.') + 1) + params();
  expect_case(run(compact), 4, 438, kVerstatNoValidation);
}

TEST_F(ETable, E4MalformedIdentityHeader) {
  expect_case(run("not-a-token"), 4, 438, kVerstatNoValidation);
  expect_case(run(""), 4, 438, kVerstatNoValidation);
  const std::string token = identity(now_);
  expect_case(run(token.substr(0, 40)), 4, 438, kVerstatNoValidation);
}

TEST_F(ETable, E5IdentityPptNotShaken) {
  const std::string token = identity(now_);
  const std::string jws = token.substr(0, token.find(';'));
  expect_case(run(jws + ";info=<" + x5u() + ">;alg=ES256;ppt=div"), 5, 438, kVerstatNoValidation);
}

TEST_F(ETable, E6InfoMissing) {
  const std::string token = identity(now_);
  const std::string jws = token.substr(0, token.find(';'));
  expect_case(run(jws + ";alg=ES256;ppt=shaken"), 6, 436, kVerstatNoValidation);
}

TEST_F(ETable, E7InfoMalformed) {
  const std::string token = identity(now_);
  const std::string jws = token.substr(0, token.find(';'));
  // Not in angle brackets: the Identity parser refuses the info parameter.
  expect_case(run(jws + ";info=" + x5u() + ";alg=ES256"), 7, 436, kVerstatNoValidation);
  // A URL that is not one.
  const KeySigner signer(pki_.leaf.key.get());
  const std::string odd = "https://bad host/x.pem";
  expect_case(run(make_jws(header_json("\"" + odd + "\""), payload_json(now_), signer) + ";info=<" +
                  odd + ">"),
              7, 436, kVerstatNoValidation);
}

TEST_F(ETable, E8InfoCannotBeDereferenced) {
  const std::string missing = server_->url("/missing.pem");
  expect_case(run(identity(claims(now_), missing)), 8, 436, kVerstatNoValidation);
  const int port = testing::closed_port();
  VerifierConfig c = config();
  c.allowed_ports.push_back(static_cast<std::uint16_t>(port));
  Verifier verifier(c);
  const std::string dead = "https://127.0.0.1:" + std::to_string(port) + "/sp.pem";
  expect_case(verifier.verify(request(identity(claims(now_), dead), now_)), 8, 436,
              kVerstatNoValidation);
}

TEST_F(ETable, E8BodyIsNotACertificate) {
  VerifierConfig c = config();
  testing::TestHttpsServer other(tls_);
  other.get(R"(/x\.pem)",
            [](const std::smatch&) { return testing::TestHttpsServer::ok("hello", "text/plain"); });
  other.start();
  c.allowed_ports.push_back(static_cast<std::uint16_t>(other.port()));
  Verifier with_port(c);
  const VerificationResult result =
      with_port.verify(request(identity(claims(now_), other.url("/x.pem")), now_));
  expect_case(result, 8, 436, kVerstatNoValidation);
  EXPECT_NE(result.detail.find("PEM"), std::string::npos) << result.detail;
}

TEST_F(ETable, E9HeaderLacksMember) {
  const std::string payload = payload_json(now_);
  const std::string info = ";info=<" + x5u() + ">";
  expect_case(run(crafted(R"({"alg":"ES256","ppt":"shaken","typ":"passport"})", payload, info)), 9,
              436, kVerstatNoValidation);
  const std::string x = quoted_x5u();
  expect_case(run(crafted(R"({"ppt":"shaken","typ":"passport","x5u":)" + x + "}", payload, info)),
              9, 436, kVerstatNoValidation);
  expect_case(run(crafted(R"({"alg":"ES256","typ":"passport","x5u":)" + x + "}", payload, info)), 9,
              436, kVerstatNoValidation);
  expect_case(run(crafted(R"({"alg":"ES256","ppt":"shaken","x5u":)" + x + "}", payload, info)), 9,
              436, kVerstatNoValidation);
}

TEST_F(ETable, E10X5uDiffersFromInfo) {
  const std::string other = server_->url("/other.pem");
  expect_case(run(crafted(header_json("\"" + other + "\""), payload_json(now_), params())), 10, 436,
              kVerstatNoValidation);
}

TEST_F(ETable, E11TypNotPassport) {
  const std::string header =
      R"({"alg":"ES256","ppt":"shaken","typ":"JWT","x5u":)" + quoted_x5u() + "}";
  expect_case(run(crafted(header, payload_json(now_), params())), 11, 437, kVerstatNoValidation);
}

TEST_F(ETable, E12AlgNotEs256) {
  const std::string header =
      R"({"alg":"ES384","ppt":"shaken","typ":"passport","x5u":)" + quoted_x5u() + "}";
  expect_case(run(crafted(header, payload_json(now_), ";info=<" + x5u() + ">")), 12, 437,
              kVerstatNoValidation);
  // The Identity alg parameter too.
  const std::string token = identity(now_);
  const std::string jws = token.substr(0, token.find(';'));
  expect_case(run(jws + ";info=<" + x5u() + ">;alg=RS256"), 12, 437, kVerstatNoValidation);
}

TEST_F(ETable, E13HeaderPptNotShaken) {
  const std::string header =
      R"({"alg":"ES256","ppt":"div","typ":"passport","x5u":)" + quoted_x5u() + "}";
  expect_case(run(crafted(header, payload_json(now_), ";info=<" + x5u() + ">")), 13, 438,
              kVerstatNoValidation);
}

TEST_F(ETable, E14PayloadCorruptOrClaimMissing) {
  const std::string header = header_json(quoted_x5u());
  expect_case(run(crafted(header, "not json", params())), 14, 438, kVerstatNoValidation);
  const std::string no_origid = R"({"attest":"A","dest":{"tn":[")" + std::string(kDestTn) +
                                R"("]},"iat":)" + std::to_string(now_) + R"(,"orig":{"tn":")" +
                                kOrigTn + R"("}})";
  const VerificationResult missing = run(crafted(header, no_origid, params()));
  expect_case(missing, 14, 438, kVerstatNoValidation);
  EXPECT_NE(missing.reasondesc.find("origid"), std::string::npos) << missing.reasondesc;
  const std::string string_iat = R"({"attest":"A","dest":{"tn":[")" + std::string(kDestTn) +
                                 R"("]},"iat":")" + std::to_string(now_) + R"(","orig":{"tn":")" +
                                 kOrigTn + R"("},"origid":")" + kOrigid + R"("})";
  expect_case(run(crafted(header, string_iat, params())), 14, 438, kVerstatNoValidation);
  expect_case(run(crafted("[1]", payload_json(now_), params())), 14, 438, kVerstatNoValidation);
  EXPECT_EQ(x5u_hits_.load(), 0) << "no fetch for a broken token";
}

TEST_F(ETable, E15IatStaleOrFuture) {
  expect_case(run(identity(now_ - 61)), 15, 403, kVerstatNoValidation);
  expect_case(run(identity(now_ + 61)), 15, 403, kVerstatNoValidation);
  EXPECT_TRUE(run(identity(now_ - 60)).passed());
  EXPECT_TRUE(run(identity(now_ + 60)).passed());
}

TEST_F(ETable, E16OrigOrDestMismatch) {
  VerificationRequest r = request(identity(now_), now_);
  r.from_tn = "12155550199";
  expect_case(verifier_->verify(r), 16, 438, kVerstatNoValidation);
  r = request(identity(now_), now_);
  r.to_tns = {"12155550199"};
  expect_case(verifier_->verify(r), 16, 438, kVerstatNoValidation);
  r.to_tns = {};
  expect_case(verifier_->verify(r), 16, 438, kVerstatNoValidation);
  r = request(identity(now_), now_);
  r.from_tn = "";
  expect_case(verifier_->verify(r), 16, 438, kVerstatNoValidation);
}

TEST_F(ETable, E17UntrustedRoot) {
  const stir::testing::ShakenPki other = stir::testing::make_shaken_pki("1234");
  testing::TestHttpsServer foreign(tls_);
  foreign.get(R"(/foreign\.pem)", [&](const std::smatch&) {
    return testing::TestHttpsServer::ok(other.chain_pem(), "application/pem-certificate-chain");
  });
  foreign.start();
  VerifierConfig c = config();
  c.allowed_ports.push_back(static_cast<std::uint16_t>(foreign.port()));
  Verifier verifier(c);
  const std::string url = foreign.url("/foreign.pem");
  const VerificationResult result =
      verifier.verify(request(identity(claims(now_), url, other.leaf.key.get()), now_));
  expect_case(result, 17, 437, kVerstatFailed);
  EXPECT_NE(result.reasondesc.find("trusted"), std::string::npos) << result.reasondesc;
}

// A chain served by a second server, for E17 certificate variants.
class ETableCerts : public ETable {
 protected:
  VerificationResult verify_with_leaf(const stir::testing::CertSpec& spec, VerifierConfig c) {
    leaf_ = stir::testing::issue(spec, &pki_.ca);
    chain_ = leaf_.certificate_pem() + pki_.ca.certificate_pem();
    testing::TestHttpsServer other(tls_);
    other.get(R"(/leaf\.pem)", [&](const std::smatch&) {
      return testing::TestHttpsServer::ok(chain_, "application/pem-certificate-chain");
    });
    other.start();
    c.allowed_ports.push_back(static_cast<std::uint16_t>(other.port()));
    Verifier verifier(c);
    const std::string url = other.url("/leaf.pem");
    VerificationResult result =
        verifier.verify(request(identity(claims(now_), url, leaf_.key.get()), now_));
    other.stop();
    return result;
  }

  static stir::testing::CertSpec leaf_spec() {
    stir::testing::CertSpec spec;
    spec.common_name = "SHAKEN 1234";
    spec.spc = "1234";
    return spec;
  }

  stir::testing::TestCert leaf_;
  std::string chain_;
};

TEST_F(ETableCerts, GoodLeafPasses) {
  EXPECT_TRUE(verify_with_leaf(leaf_spec(), config()).passed());
}

TEST_F(ETableCerts, E17ExpiredAtIat) {
  stir::testing::CertSpec spec = leaf_spec();
  spec.not_before_offset_s = -7200;
  spec.not_after_offset_s = -3600;
  const VerificationResult result = verify_with_leaf(spec, config());
  expect_case(result, 17, 437, kVerstatFailed);
  EXPECT_NE(result.reasondesc.find("expired"), std::string::npos) << result.reasondesc;
}

TEST_F(ETableCerts, E17NotYetValidAtIat) {
  stir::testing::CertSpec spec = leaf_spec();
  spec.not_before_offset_s = 3600;
  expect_case(verify_with_leaf(spec, config()), 17, 437, kVerstatFailed);
}

TEST_F(ETableCerts, E17NoSpc) {
  stir::testing::CertSpec spec = leaf_spec();
  spec.spc.reset();
  const VerificationResult result = verify_with_leaf(spec, config());
  expect_case(result, 17, 437, kVerstatFailed);
  EXPECT_NE(result.reasondesc.find("SPC"), std::string::npos) << result.reasondesc;
  VerifierConfig lax = config();
  lax.require_spc = false;
  EXPECT_TRUE(verify_with_leaf(spec, lax).passed());
}

TEST_F(ETableCerts, E17SpcNotAllowed) {
  VerifierConfig c = config();
  c.allowed_spcs = {"5678"};
  const VerificationResult result = verify_with_leaf(leaf_spec(), c);
  expect_case(result, 17, 437, kVerstatFailed);
  EXPECT_NE(result.reasondesc.find("SPC not allowed"), std::string::npos) << result.reasondesc;
  c.allowed_spcs = {"5678", "1234"};
  EXPECT_TRUE(verify_with_leaf(leaf_spec(), c).passed());
}

TEST_F(ETableCerts, E17Revoked) {
  stir::testing::CertSpec spec = leaf_spec();
  spec.serial = 0x1234567890abcdefULL;
  VerifierConfig c = config();
  c.crl_files = {stir::testing::write_file(dir_.file("crl/ca.crl"),
                                           stir::testing::make_crl_pem(pki_.ca, {spec.serial}))};
  const VerificationResult result = verify_with_leaf(spec, c);
  expect_case(result, 17, 437, kVerstatFailed);
  EXPECT_NE(result.reasondesc.find("revoked"), std::string::npos) << result.reasondesc;
}

TEST_F(ETable, E18BadSignature) {
  // Signed by a key that is not the certificate's.
  const EvpPkeyPtr stranger = stir::testing::new_p256_key();
  const VerificationResult result = run(identity(claims(now_), x5u(), stranger.get()));
  expect_case(result, 18, 438, kVerstatFailed);
  EXPECT_EQ(result.reasondesc, "Signature validation failed");
  // A signature of the wrong length.
  const std::string token = identity(now_);
  const std::string jws = token.substr(0, token.find(';'));
  const std::string short_sig = jws.substr(0, jws.rfind('.') + 1) + "AAAA" + params();
  expect_case(run(short_sig), 18, 438, kVerstatFailed);
}

TEST_F(ETable, E19AttestNotABC) {
  const std::string payload = R"({"attest":"D","dest":{"tn":[")" + std::string(kDestTn) +
                              R"("]},"iat":)" + std::to_string(now_) + R"(,"orig":{"tn":")" +
                              kOrigTn + R"("},"origid":")" + kOrigid + R"("})";
  expect_case(run(crafted(header_json(quoted_x5u()), payload, params())), 19, 438,
              kVerstatNoValidation);
}

TEST_F(ETable, NonCanonicalKeyOrderStillPasses) {
  // Real tokens are not canonical; the received bytes are hashed as they are.
  const std::string header =
      R"({"x5u":)" + quoted_x5u() + R"(,"typ":"passport","ppt":"shaken","alg":"ES256"})";
  const std::string payload = R"({"origid":")" + std::string(kOrigid) + R"(","orig":{"tn":")" +
                              kOrigTn + R"("},"iat":)" + std::to_string(now_) +
                              R"(,"dest":{"tn":[")" + kDestTn + R"("]},"attest":"B"})";
  const VerificationResult result = run(crafted(header, payload, params()));
  EXPECT_TRUE(result.passed()) << result.detail;
}

// The verifier runs the token checks itself (one parse on the hot path); they
// must agree with the signer library's verify_identity on every crafted token.
TEST_F(ETable, AgreesWithSignerVerifyIdentity) {
  const std::string token = identity(now_);
  const std::string jws = token.substr(0, token.find(';'));
  const std::string header = header_json(quoted_x5u());
  const std::string payload = payload_json(now_);
  const std::string x = quoted_x5u();
  const EvpPkeyPtr stranger = stir::testing::new_p256_key();
  const std::vector<std::string> tokens = {
      token,
      ".." + jws.substr(jws.rfind('.') + 1) + params(),
      "not-a-token",
      jws + ";info=<" + x5u() + ">;ppt=div",
      jws + ";alg=ES256",
      jws + ";info=" + x5u(),
      jws + ";info=<" + x5u() + ">;alg=RS256",
      crafted(R"({"alg":"ES256","ppt":"shaken","typ":"passport"})", payload, params()),
      crafted(header_json("\"" + server_->url("/other.pem") + "\""), payload, params()),
      crafted(R"({"alg":"ES256","ppt":"shaken","typ":"JWT","x5u":)" + x + "}", payload, params()),
      crafted(R"({"alg":"ES384","ppt":"shaken","typ":"passport","x5u":)" + x + "}", payload,
              params()),
      crafted(R"({"alg":"ES256","ppt":"div","typ":"passport","x5u":)" + x + "}", payload, params()),
      crafted(R"({"alg":"ES256","alg":"ES256","ppt":"shaken","typ":"passport","x5u":)" + x + "}",
              payload, params()),
      crafted(header, "not json", params()),
      crafted(header, R"({"attest":"A"})", params()),
      crafted("[1]", payload, params()),
      crafted(header, payload_json(now_ - 61), params()),
      crafted(header, payload_json(now_ + 61), params()),
      identity(claims(now_), x5u(), stranger.get()),
      jws.substr(0, jws.rfind('.') + 1) + "AAAA" + params(),
      crafted(header,
              R"({"attest":"D","dest":{"tn":[")" + std::string(kDestTn) + R"("]},"iat":)" +
                  std::to_string(now_) + R"(,"orig":{"tn":")" + kOrigTn + R"("},"origid":")" +
                  kOrigid + R"("})",
              params()),
  };
  VerifyOptions options;
  options.now = now_;
  EVP_PKEY* key = X509_get0_pubkey(pki_.leaf.certificate.get());
  for (const std::string& t : tokens) {
    const VerificationResult ours = run(t);
    const VerifyResult theirs = verify_identity(t, key, options);
    EXPECT_EQ(ours.reasoncode.value_or(0), static_cast<int>(theirs.reason))
        << t << "\n ours: " << ours.detail << "\n theirs: " << theirs.detail;
  }
}

TEST_F(ETable, ReasonOncePerDayPolicy) {
  VerifierConfig c = config();
  c.once_per_day_reason_policy = true;
  Verifier verifier(c);
  const EvpPkeyPtr stranger = stir::testing::new_p256_key();
  auto forged = [&](std::int64_t t) {
    return verifier.verify(request(identity(claims(t), x5u(), stranger.get()), t));
  };
  expect_case(forged(now_), 18, 438, kVerstatFailed);
  const VerificationResult second = forged(now_ + 10);
  EXPECT_EQ(second.verstat, kVerstatNoValidation);
  EXPECT_FALSE(second.reasoncode);
  EXPECT_TRUE(second.reason_suppressed);
  EXPECT_EQ(second.error_case, 18) << "the case stays for logs";
  EXPECT_EQ(to_verification_response(second),
            json::parse(R"({"verificationResponse":{"verstat":"No-TN-Validation"}})"));
  // 403 is not affected.
  expect_case(verifier.verify(request(identity(now_ - 600), now_ + 20)), 15, 403,
              kVerstatNoValidation);
  // Another originating TN gets its reason.
  VerificationRequest other = request(identity(claims(now_), x5u(), stranger.get()), now_ + 30);
  ShakenClaims c2 = claims(now_ + 30);
  c2.orig_tn = "12155550999";
  other.identity = identity(c2, x5u(), stranger.get());
  other.from_tn = "12155550999";
  expect_case(verifier.verify(other), 18, 438, kVerstatFailed);
  // A day later the reason comes back.
  expect_case(forged(now_ + 86400 + 1), 18, 438, kVerstatFailed);
  EXPECT_EQ(verifier.metrics().reasons_suppressed, 1u);
}

TEST_F(ETable, PolicyOffByDefault) {
  const EvpPkeyPtr stranger = stir::testing::new_p256_key();
  for (int i = 0; i < 3; ++i) {
    expect_case(run(identity(claims(now_), x5u(), stranger.get())), 18, 438, kVerstatFailed);
  }
}

TEST_F(ETable, MetricsCountVerstatAndReason) {
  run(identity(now_));
  run(identity(now_ - 600));
  const EvpPkeyPtr stranger = stir::testing::new_p256_key();
  run(identity(claims(now_), x5u(), stranger.get()));
  const MetricsSnapshot m = verifier_->metrics();
  EXPECT_EQ(m.verifications_by_verstat.at(kVerstatPassed), 1u);
  EXPECT_EQ(m.verifications_by_verstat.at(kVerstatFailed), 1u);
  EXPECT_EQ(m.verifications_by_verstat.at(kVerstatNoValidation), 1u);
  EXPECT_EQ(m.verifications_by_reasoncode.at(403), 1u);
  EXPECT_EQ(m.verifications_by_reasoncode.at(438), 1u);
  EXPECT_EQ(m.verifications_by_case.at("E15"), 1u);
  EXPECT_EQ(m.verifications_by_case.at("E18"), 1u);
  EXPECT_EQ(m.cert_cache_misses, 1u);
  EXPECT_EQ(m.cert_cache_hits, 1u);
  EXPECT_EQ(m.fetches, 1u);
  EXPECT_EQ(m.fetch_latency_buckets.back(), 1u);
  EXPECT_EQ(m.chain_verdict_misses, 1u);
  EXPECT_EQ(m.chain_verdict_hits, 1u);
}

}  // namespace
}  // namespace stir::vs
