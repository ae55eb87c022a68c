// Public vectors (tests/vectors, see its README) through the verifier:
// libstirshaken's certificate fails the SPC policy (437), its
// stringified-claims token is 438, the yeti negatives are rejected. None of
// these fetch anything: the certificates are given (VerificationRequest::
// certificate_pem) or the token fails before the fetch.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "stir/verifier/chain.h"
#include "stir/verifier/verifier.h"
#include "stir/x509.h"

#ifndef STIR_TESTVECTORS_DIR
#define STIR_TESTVECTORS_DIR ""
#endif

namespace stir::vs {
namespace {

constexpr std::string_view kYetiToken =
    "eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jdXJsLmhheH"
    "guc2UvY2EvY2FjZXJ0LnBlbSJ9."
    "eyJhdHRlc3QiOiJDIiwiZGVzdCI6eyJ0biI6WyIiXX0sImlhdCI6MTYwMjA1NTc0Miwib3JpZyI6eyJ0biI6IiJ9LCJvcm"
    "lnaWQiOiJjOTlkOWU3Zi1kMWIzLTRjOTItYjMzMy1lNWU1ZWZmMDNhZjEifQ."
    "lj2311mNk23vinNsceeWNvVtElsuvEVCHO_hpT8eUOkPiy01PD85pFxKfPcVb0BolCZOlXsBsncXt3lNvcsW7w";
constexpr std::string_view kYetiX5u = "https://curl.haxx.se/ca/cacert.pem";
constexpr std::int64_t kYetiIat = 1602055742;
constexpr std::int64_t kLibstirshakenIat = 1616442523;

class PublicVectors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = STIR_TESTVECTORS_DIR;
    ASSERT_TRUE(std::filesystem::is_directory(dir_)) << "test vectors missing: " << dir_;
  }
  std::string path(const std::string& relative) const { return (dir_ / relative).string(); }
  std::string read(const std::string& relative) const {
    std::ifstream in(path(relative), std::ios::binary);
    EXPECT_TRUE(in) << path(relative);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }
  std::vector<std::string> lines(const std::string& relative) const {
    std::istringstream in(read(relative));
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }
  std::string line_after(const std::string& relative, std::string_view label) const {
    const std::vector<std::string> all = lines(relative);
    for (std::size_t i = 0; i + 1 < all.size(); ++i) {
      if (all[i] == label) return all[i + 1];
    }
    ADD_FAILURE() << "no line after " << label;
    return "";
  }
  // libstirshaken's CA is the trust anchor.
  VerifierConfig libstirshaken_config() const {
    VerifierConfig c;
    c.trust_anchor_files = {path("libstirshaken/ca.pem")};
    return c;
  }

  std::filesystem::path dir_;
};

TEST_F(PublicVectors, LibstirshakenCertificateFailsTheSpcPolicy) {
  const ChainValidator validator(libstirshaken_config());
  const std::vector<X509Ptr> chain = parse_pem_chain(read("libstirshaken/sp.pem"));
  const ChainVerdict verdict = validator.validate(chain, kLibstirshakenIat);
  EXPECT_FALSE(verdict.ok);
  EXPECT_NE(verdict.reason.find("TNAuthList"), std::string::npos)
      << verdict.reason << " / " << verdict.detail;

  // The same through the Verifier: the tokens' signatures are fine, so the
  // answer is the certificate's: 437 TN-Validation-Failed.
  Verifier verifier(libstirshaken_config());
  const std::vector<std::string> tokens = lines("libstirshaken/tokens.txt");
  ASSERT_EQ(tokens.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    VerificationRequest request;
    request.identity =
        tokens[i] + ";info=<https://shaken.signalwire.cloud/sp.pem>;alg=ES256;ppt=shaken";
    request.from_tn = "01256500600";
    request.to_tns = {"01256700800"};
    request.now = kLibstirshakenIat + 5;
    request.certificate_pem = read("libstirshaken/sp.pem");
    const VerificationResult result = verifier.verify(request);
    EXPECT_EQ(result.error_case, 17) << result.detail;
    EXPECT_EQ(result.reasoncode, 437);
    EXPECT_EQ(result.verstat, kVerstatFailed);
  }
}

TEST_F(PublicVectors, LibstirshakenChainBuildsButItsTnAuthListIsMalformed) {
  // Chain errors come first, so this reason shows the chain itself built to
  // the anchor at iat. The TNAuthList (a URL, not an SPC) does not parse,
  // which fails even when an SPC is not required.
  for (const bool require_spc : {true, false}) {
    VerifierConfig c = libstirshaken_config();
    c.require_spc = require_spc;
    const ChainValidator validator(c);
    const ChainVerdict verdict =
        validator.validate(parse_pem_chain(read("libstirshaken/sp.pem")), kLibstirshakenIat);
    EXPECT_FALSE(verdict.ok);
    EXPECT_EQ(verdict.reason, "TNAuthList malformed") << verdict.detail;
  }
}

TEST_F(PublicVectors, LibstirshakenTokenThreeIs438) {
  Verifier verifier(libstirshaken_config());
  const std::vector<std::string> tokens = lines("libstirshaken/tokens.txt");
  VerificationRequest request;
  request.identity = tokens[2] + ";info=<https://shaken.signalwire.cloud/sp.pem>";
  request.from_tn = "Bob";
  request.to_tns = {"Alice"};
  request.now = 1615936245;
  request.certificate_pem = read("libstirshaken/sp.pem");
  const VerificationResult result = verifier.verify(request);
  EXPECT_EQ(result.error_case, 14) << result.detail;
  EXPECT_EQ(result.reasoncode, 438);
}

TEST_F(PublicVectors, LibstirshakenStringifiedClaimsAre438) {
  Verifier verifier(libstirshaken_config());
  const std::string file = "libstirshaken/passport-stringified-claims.txt";
  VerificationRequest request;
  request.identity = line_after(file, "SIP Identity Header with PASSporT is:");
  ASSERT_FALSE(request.identity.empty());
  request.from_tn = "01256789999";
  request.to_tns = {"01256500600"};
  request.now = 1603458131;
  request.certificate_pem = read("libstirshaken/sp.pem");
  const VerificationResult result = verifier.verify(request);
  EXPECT_EQ(result.error_case, 14) << result.detail;
  EXPECT_EQ(result.reasoncode, 438);
  EXPECT_EQ(result.verstat, kVerstatNoValidation);
  EXPECT_NE(result.reasondesc.find("not a JSON object"), std::string::npos) << result.reasondesc;
  // Fetched the normal way, its http:// info is refused first (436).
  request.certificate_pem.reset();
  const VerificationResult fetched = verifier.verify(request);
  EXPECT_EQ(fetched.error_case, 7) << fetched.detail;
  EXPECT_EQ(fetched.reasoncode, 436);
}

TEST_F(PublicVectors, YetiNegativesAreRejected) {
  VerifierConfig c;
  c.trust_anchor_files = {path("yeti/test.pem")};
  Verifier verifier(c);
  const std::string token(kYetiToken);
  const std::string info = ";info=<" + std::string(kYetiX5u) + ">";
  auto run = [&](const std::string& identity) {
    VerificationRequest request;
    request.identity = identity;
    request.from_tn = "12155550121";
    request.to_tns = {"12155550131"};
    request.now = kYetiIat;
    return verifier.verify(request);
  };
  auto expect = [](const VerificationResult& r, int error_case, int code) {
    EXPECT_EQ(r.error_case, error_case) << r.detail;
    EXPECT_EQ(r.reasoncode, code) << r.detail;
    EXPECT_EQ(r.verstat, kVerstatNoValidation);
  };
  expect(run(token + info + ";alg=ES25;ppt=shaken"), 12, 437);
  expect(run(token + info + ";alg=ES256;ppt=shake"), 5, 438);
  expect(run(token + ";info=<https://curl.haxx.se/ca/other.pem>;alg=ES256"), 10, 436);
  expect(run(".." + token.substr(token.rfind('.') + 1) + info), 4, 438);
  // The token itself has empty TNs: not a SHAKEN token (438), and no fetch.
  expect(run(token + info + ";alg=ES256;ppt=shaken"), 14, 438);
  EXPECT_EQ(verifier.metrics().fetches, 0u);
}

}  // namespace
}  // namespace stir::vs
