#include "stir/verify.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>

#include "software_signer.h"
#include "stir/base64url.h"
#include "stir/identity.h"
#include "stir/openssl.h"

namespace stir {
namespace {

constexpr std::string_view kX5u = "https://cr.example.net/sp-2026-11.pem";
constexpr std::int64_t kIat = 1700000000;

class VerifyTest : public ::testing::Test {
 protected:
  PassportHeader header() const {
    PassportHeader h;
    h.x5u = kX5u;
    return h;
  }
  ShakenClaims claims(std::int64_t iat = kIat) const {
    ShakenClaims c;
    c.attest = "A";
    c.orig_tn = "12155550121";
    c.dest_tn = {"12155550131"};
    c.iat = iat;
    c.origid = "123e4567-e89b-12d3-a456-426655440000";
    return c;
  }
  std::string identity(std::int64_t iat = kIat) const {
    return compose_identity_header(sign_passport(header(), claims(iat), signer_), kX5u);
  }
  // Signs arbitrary header/payload JSON text, for tokens our signer would refuse.
  std::string sign_raw(std::string_view header_json, std::string_view payload_json) const {
    const std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
    return input + "." + base64url_encode(signer_.sign_digest(sha256(input)));
  }
  static VerifyOptions at(std::int64_t now) {
    VerifyOptions options;
    options.now = now;
    return options;
  }

  testing::SoftwareSigner signer_;
};

void expect_reason(const VerifyResult& result, SipReason reason, std::string_view detail = {}) {
  EXPECT_FALSE(result.valid);
  EXPECT_EQ(result.reason, reason) << result.detail;
  if (!detail.empty()) {
    EXPECT_NE(result.detail.find(detail), std::string::npos) << result.detail;
  }
}

TEST_F(VerifyTest, RoundTripIsValid) {
  const VerifyResult result = verify_identity(identity(), signer_.key(), at(kIat));
  ASSERT_TRUE(result.valid) << result.detail;
  EXPECT_EQ(result.reason, SipReason::kNone);
  ASSERT_TRUE(result.passport);
  EXPECT_EQ(result.passport->header.x5u, kX5u);
  EXPECT_EQ(result.passport->claims.orig_tn, "12155550121");
  EXPECT_EQ(result.passport->claims.dest_tn, std::vector<std::string>{"12155550131"});
  EXPECT_EQ(result.passport->claims.iat, kIat);
  EXPECT_EQ(result.passport->payload_json["attest"], "A");
}

TEST_F(VerifyTest, BarePassportVerifies) {
  const std::string jws = sign_passport(header(), claims(), signer_);
  EXPECT_TRUE(verify_passport(jws, signer_.key()).valid);
  expect_reason(verify_passport(jws + ";info=<x>", signer_.key()),
                SipReason::kInvalidIdentityHeader);
}

TEST_F(VerifyTest, FlippedSignatureByteIs438) {
  std::string jws = sign_passport(header(), claims(), signer_);
  const std::size_t sig = jws.rfind('.') + 1;
  jws[sig + 5] = jws[sig + 5] == 'A' ? 'B' : 'A';
  expect_reason(verify_identity(compose_identity_header(jws, kX5u), signer_.key()),
                SipReason::kInvalidIdentityHeader, "signature does not verify");
}

TEST_F(VerifyTest, FlippedPayloadIs438) {
  const std::string jws = sign_passport(header(), claims(), signer_);
  // Same claims, different iat: still well-formed JSON, so only the signature catches it.
  const std::string other_payload = base64url_encode(canonical_claims_json(claims(kIat + 1)));
  const std::size_t dot1 = jws.find('.');
  const std::size_t dot2 = jws.find('.', dot1 + 1);
  const std::string forged = jws.substr(0, dot1 + 1) + other_payload + jws.substr(dot2);
  expect_reason(verify_identity(compose_identity_header(forged, kX5u), signer_.key()),
                SipReason::kInvalidIdentityHeader, "signature does not verify");
  std::string corrupt = jws;
  corrupt[dot1 + 3] = corrupt[dot1 + 3] == 'x' ? 'y' : 'x';
  expect_reason(verify_identity(compose_identity_header(corrupt, kX5u), signer_.key()),
                SipReason::kInvalidIdentityHeader);
}

TEST_F(VerifyTest, Freshness) {
  expect_reason(verify_identity(identity(kIat - 61), signer_.key(), at(kIat)),
                SipReason::kStaleDate, "older");
  expect_reason(verify_identity(identity(kIat + 61), signer_.key(), at(kIat)),
                SipReason::kStaleDate, "ahead");
  EXPECT_TRUE(verify_identity(identity(kIat - 30), signer_.key(), at(kIat)).valid);
  EXPECT_TRUE(verify_identity(identity(kIat - 60), signer_.key(), at(kIat)).valid);
  EXPECT_TRUE(verify_identity(identity(kIat + 60), signer_.key(), at(kIat)).valid);
  EXPECT_TRUE(verify_identity(identity(kIat - 100000), signer_.key()).valid);
  // A stale result still carries the (authenticated) passport.
  EXPECT_TRUE(verify_identity(identity(kIat - 61), signer_.key(), at(kIat)).passport);
}

TEST_F(VerifyTest, FreshnessHasNoOverflow) {
  const std::string extreme_past = sign_raw(
      canonical_header_json(header()),
      R"({"attest":"A","dest":{"tn":["1"]},"iat":-9223372036854775808,"orig":{"tn":"1"},"origid":"123e4567-e89b-12d3-a456-426655440000"})");
  VerifyOptions options = at(std::numeric_limits<std::int64_t>::max());
  options.require_shaken_claims = false;
  expect_reason(verify_passport(extreme_past, signer_.key(), options), SipReason::kStaleDate);
}

TEST_F(VerifyTest, WrongKeyIs438) {
  testing::SoftwareSigner other;
  expect_reason(verify_identity(identity(), other.key()), SipReason::kInvalidIdentityHeader,
                "signature does not verify");
}

TEST_F(VerifyTest, DerSignatureIs438) {
  const std::string input = signing_input(header(), claims());
  const std::string jws = input + "." + base64url_encode(signer_.sign_digest_der(sha256(input)));
  expect_reason(verify_identity(compose_identity_header(jws, kX5u), signer_.key()),
                SipReason::kInvalidIdentityHeader, "64");
}

TEST_F(VerifyTest, NonP256KeyIs437) {
  EvpPkeyPtr rsa(EVP_RSA_gen(2048));
  ASSERT_TRUE(rsa);
  expect_reason(verify_identity(identity(), rsa.get()), SipReason::kUnsupportedCredential);
  expect_reason(verify_identity(identity(), nullptr), SipReason::kUnsupportedCredential);
}

TEST_F(VerifyTest, IdentityParameterChecks) {
  const std::string jws = sign_passport(header(), claims(), signer_);
  const std::string info = ";info=<" + std::string(kX5u) + ">";
  expect_reason(verify_identity(jws, signer_.key()), SipReason::kBadIdentityInfo, "info");
  expect_reason(verify_identity(jws + info + ";ppt=shake", signer_.key()),
                SipReason::kInvalidIdentityHeader, "ppt");
  expect_reason(verify_identity(jws + info + ";alg=ES25", signer_.key()),
                SipReason::kUnsupportedCredential, "alg");
  expect_reason(verify_identity(jws + ";info=<https://other.example/x.pem>", signer_.key()),
                SipReason::kBadIdentityInfo, "x5u");
  expect_reason(verify_identity(jws + ";info=" + std::string(kX5u), signer_.key()),
                SipReason::kBadIdentityInfo);
  EXPECT_TRUE(verify_identity(jws + info, signer_.key()).valid);
  EXPECT_TRUE(verify_identity(jws + info + ";ppt=\"shaken\";foo=bar", signer_.key()).valid);
}

TEST_F(VerifyTest, CompactFormIs438) {
  const std::string jws = sign_passport(header(), claims(), signer_);
  const std::string compact = ".." + jws.substr(jws.rfind('.') + 1);
  expect_reason(verify_identity(compose_identity_header(compact, kX5u), signer_.key()),
                SipReason::kInvalidIdentityHeader, "compact");
  expect_reason(verify_passport(compact, signer_.key()), SipReason::kInvalidIdentityHeader,
                "compact");
}

TEST_F(VerifyTest, HeaderChecksInOrder) {
  const std::string payload = canonical_claims_json(claims());
  const auto check = [&](std::string_view header_json, SipReason reason, std::string_view detail) {
    SCOPED_TRACE(header_json);
    expect_reason(verify_identity(compose_identity_header(sign_raw(header_json, payload), kX5u),
                                  signer_.key()),
                  reason, detail);
  };
  const std::string x5u = "\"x5u\":\"" + std::string(kX5u) + "\"";
  check("[1,2]", SipReason::kInvalidIdentityHeader, "not a JSON object");
  check("{\"alg\":", SipReason::kInvalidIdentityHeader, "not a JSON object");
  check(R"({"alg":"ES256","ppt":"shaken","typ":"passport"})", SipReason::kBadIdentityInfo, "x5u");
  check(R"({"alg":"ES256","typ":"passport",)" + x5u + "}", SipReason::kBadIdentityInfo, "ppt");
  check(R"({"alg":"ES256","ppt":"shaken","typ":"passport","x5u":7})", SipReason::kBadIdentityInfo,
        "x5u");
  check(R"({"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://x/y"})",
        SipReason::kBadIdentityInfo, "info");
  check(R"({"alg":"ES256","ppt":"shaken","typ":"JWT",)" + x5u + "}",
        SipReason::kUnsupportedCredential, "typ");
  check(R"({"alg":"RS256","ppt":"shaken","typ":"passport",)" + x5u + "}",
        SipReason::kUnsupportedCredential, "alg");
  check(R"({"alg":"ES256","ppt":"div","typ":"passport",)" + x5u + "}",
        SipReason::kInvalidIdentityHeader, "ppt");
  check(R"({"alg":"ES256","alg":"ES256","ppt":"shaken","typ":"passport",)" + x5u + "}",
        SipReason::kInvalidIdentityHeader, "repeats");
  // Non-canonical member order and whitespace are fine: the received bytes are hashed.
  const std::string loose = R"({ "x5u":")" + std::string(kX5u) +
                            R"(", "typ":"passport", "ppt":"shaken", "alg":"ES256" })";
  const VerifyResult result =
      verify_identity(compose_identity_header(sign_raw(loose, payload), kX5u), signer_.key());
  EXPECT_TRUE(result.valid) << result.detail;
}

TEST_F(VerifyTest, PayloadTypeChecks) {
  const std::string hdr = canonical_header_json(header());
  const std::string uuid = "\"origid\":\"123e4567-e89b-12d3-a456-426655440000\"";
  const auto check = [&](const std::string& payload, std::string_view detail) {
    SCOPED_TRACE(payload);
    VerifyOptions lax;
    lax.require_shaken_claims = false;
    expect_reason(verify_passport(sign_raw(hdr, payload), signer_.key(), lax),
                  SipReason::kInvalidIdentityHeader, detail);
  };
  check("\"just a string\"", "not a JSON object");
  check("{\"attest\":\"A\"", "not a JSON object");
  check(R"({"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},)" + uuid + "}", "attest");
  check(R"({"attest":1,"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},)" + uuid + "}", "attest");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1,)" + uuid + "}", "orig");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":"1",)" + uuid + "}", "orig");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{"tn":1},)" + uuid + "}", "orig.tn");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{},)" + uuid + "}", "orig");
  check(R"({"attest":"A","iat":1,"orig":{"tn":"1"},)" + uuid + "}", "dest");
  check(R"({"attest":"A","dest":{"tn":"1"},"iat":1,"orig":{"tn":"1"},)" + uuid + "}", "dest.tn");
  check(R"({"attest":"A","dest":{"tn":[1]},"iat":1,"orig":{"tn":"1"},)" + uuid + "}", "dest.tn");
  check(R"({"attest":"A","dest":{"uri":"x"},"iat":1,"orig":{"tn":"1"},)" + uuid + "}", "dest.uri");
  check(R"({"attest":"A","dest":{"tn":["1"]},"orig":{"tn":"1"},)" + uuid + "}", "iat");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":"1","orig":{"tn":"1"},)" + uuid + "}", "iat");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1.5,"orig":{"tn":"1"},)" + uuid + "}", "iat");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1e9,"orig":{"tn":"1"},)" + uuid + "}", "iat");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":18446744073709551615,"orig":{"tn":"1"},)" +
            uuid + "}",
        "iat");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"}})", "origid");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},"origid":null})", "origid");
  check(R"({"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1","tn":"2"},)" + uuid + "}",
        "repeats");
  // Refused before a tree is built: no recursive walk ever sees it.
  check(R"({"attest":)" + std::string(5000, '[') + std::string(5000, ']') + "}",
        "nested deeper than 32 levels");
}

TEST_F(VerifyTest, ShakenClaimRulesAfterSignature) {
  const std::string hdr = canonical_header_json(header());
  const std::string bad_tn = sign_raw(
      hdr,
      R"({"attest":"A","dest":{"tn":["+12155550131"]},"iat":1700000000,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"})");
  expect_reason(verify_passport(bad_tn, signer_.key()), SipReason::kInvalidIdentityHeader,
                "dest.tn[0] is not a canonical TN");
  VerifyOptions lax;
  lax.require_shaken_claims = false;
  EXPECT_TRUE(verify_passport(bad_tn, signer_.key(), lax).valid);
  const std::string bad_attest = sign_raw(
      hdr,
      R"({"attest":"D","dest":{"tn":["12155550131"]},"iat":1700000000,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"})");
  expect_reason(verify_passport(bad_attest, signer_.key()), SipReason::kInvalidIdentityHeader,
                "attest");
}

TEST_F(VerifyTest, HostileInputNeverThrows) {
  std::mt19937 rng(438);
  const std::string good = identity();
  for (int i = 0; i < 3000; ++i) {
    std::string value = good;
    // Mutate a few bytes anywhere, or truncate.
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      value[rng() % value.size()] = static_cast<char>(rng() & 0xFF);
    }
    if (i % 3 == 0) value.resize(rng() % value.size());
    VerifyResult result;
    EXPECT_NO_THROW(result = verify_identity(value, signer_.key(), at(kIat)));
    if (!result.valid) {
      EXPECT_NE(result.reason, SipReason::kNone) << value;
    }
  }
  std::string huge(kMaxIdentityHeaderSize + 1, 'A');
  expect_reason(verify_identity(huge, signer_.key()), SipReason::kInvalidIdentityHeader);
  expect_reason(verify_passport(huge, signer_.key()), SipReason::kInvalidIdentityHeader);
  // Deep nesting must not exhaust the stack.
  std::string deep(8000, '[');
  expect_reason(verify_passport(base64url_encode(deep) + ".e30.AAAA", signer_.key()),
                SipReason::kInvalidIdentityHeader);
}

TEST(SipReason, Texts) {
  EXPECT_EQ(sip_reason_text(SipReason::kStaleDate), "Stale Date");
  EXPECT_EQ(sip_reason_text(SipReason::kBadIdentityInfo), "Bad Identity Info");
  EXPECT_EQ(sip_reason_text(SipReason::kUnsupportedCredential), "Unsupported Credential");
  EXPECT_EQ(sip_reason_text(SipReason::kInvalidIdentityHeader), "Invalid Identity Header");
  EXPECT_EQ(static_cast<int>(SipReason::kInvalidIdentityHeader), 438);
}

}  // namespace
}  // namespace stir
