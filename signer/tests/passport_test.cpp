#include "stir/passport.h"

#include <gtest/gtest.h>

#include <string>

#include "software_signer.h"
#include "stir/base64url.h"
#include "stir/error.h"
#include "stir/openssl.h"

namespace stir {
namespace {

using nlohmann::json;

// PROTOCOL.md section 1.
constexpr std::string_view kProtocolHeader =
    R"({"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cr.example.net/sp-2026-11.pem"})";
constexpr std::string_view kProtocolPayload =
    R"({"attest":"A","dest":{"tn":["12155550131"]},"iat":1443208345,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"})";

PassportHeader protocol_header() {
  PassportHeader header;
  header.x5u = "https://cr.example.net/sp-2026-11.pem";
  return header;
}

ShakenClaims protocol_claims() {
  ShakenClaims claims;
  claims.attest = "A";
  claims.orig_tn = "12155550121";
  claims.dest_tn = {"12155550131"};
  claims.iat = 1443208345;
  claims.origid = "123e4567-e89b-12d3-a456-426655440000";
  return claims;
}

// Expects validate_claims to refuse `claims` naming `claim_name` in the message.
void expect_rejected(const ShakenClaims& claims, const std::string& claim_name) {
  try {
    validate_claims(claims);
    ADD_FAILURE() << "accepted; expected a complaint about " << claim_name;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(claim_name), std::string::npos) << e.what();
  }
}

class CountingSigner : public DigestSigner {
 public:
  Es256Signature sign_digest(const Sha256Digest& digest) const override {
    ++calls;
    return inner.sign_digest(digest);
  }
  testing::SoftwareSigner inner;
  mutable int calls = 0;
};

TEST(CanonicalJson, HeaderIsByteExact) {
  EXPECT_EQ(canonical_header_json(protocol_header()), kProtocolHeader);
}

TEST(CanonicalJson, PayloadIsByteExact) {
  EXPECT_EQ(canonical_claims_json(protocol_claims()), kProtocolPayload);
}

TEST(CanonicalJson, MemberOrderDoesNotMatter) {
  const json reordered = json::parse(
      R"({ "origid":"123e4567-e89b-12d3-a456-426655440000", "orig":{"tn":"12155550121"},
           "iat":1443208345, "dest":{"tn":["12155550131"]}, "attest":"A" })");
  EXPECT_EQ(canonical_json(reordered), kProtocolPayload);
  const json header = json::parse(
      R"({"x5u":"https://cr.example.net/sp-2026-11.pem","typ":"passport","ppt":"shaken","alg":"ES256"})");
  EXPECT_EQ(canonical_json(header), kProtocolHeader);
}

TEST(CanonicalJson, NestedMembersAreSortedToo) {
  const json value = json::parse(R"({"b":{"z":1,"a":[{"y":true,"x":null}]},"a":"s"})");
  EXPECT_EQ(canonical_json(value), R"({"a":"s","b":{"a":[{"x":null,"y":true}],"z":1}})");
}

TEST(CanonicalJson, SlashIsNotEscapedAndUtf8StaysRaw) {
  PassportHeader header = protocol_header();
  header.x5u = "https://cr.example.net/a/b.pem";
  EXPECT_NE(canonical_header_json(header).find("\"https://cr.example.net/a/b.pem\""),
            std::string::npos);
  EXPECT_EQ(canonical_header_json(header).find("\\/"), std::string::npos);
  EXPECT_EQ(canonical_json(json("caf\xC3\xA9 \xE2\x82\xAC")), "\"caf\xC3\xA9 \xE2\x82\xAC\"");
}

TEST(CanonicalJson, IatIsAnInteger) {
  ShakenClaims claims = protocol_claims();
  claims.iat = 1700000000;
  const std::string payload = canonical_claims_json(claims);
  EXPECT_NE(payload.find("\"iat\":1700000000,"), std::string::npos) << payload;
  EXPECT_TRUE(json::parse(payload)["iat"].is_number_integer());
}

TEST(CanonicalJson, InvalidUtf8IsAnError) {
  EXPECT_THROW(canonical_json(json("bad \xFF byte")), Error);
  ShakenClaims claims = protocol_claims();
  claims.origid = "\xC3";
  try {
    canonical_claims_json(claims);
    ADD_FAILURE() << "invalid UTF-8 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(CanonicalJson, DestHasTnArrayThenUriArray) {
  ShakenClaims claims = protocol_claims();
  claims.dest_uri = {"sip:alice@example.com"};
  EXPECT_NE(canonical_claims_json(claims).find(
                R"("dest":{"tn":["12155550131"],"uri":["sip:alice@example.com"]})"),
            std::string::npos);
  claims.dest_tn.clear();
  EXPECT_NE(canonical_claims_json(claims).find(R"("dest":{"uri":["sip:alice@example.com"]})"),
            std::string::npos);
}

TEST(CanonicalJson, OrigUriInsteadOfTn) {
  ShakenClaims claims = protocol_claims();
  claims.orig_tn.clear();
  claims.orig_uri = "sip:bob@example.net";
  EXPECT_NE(canonical_claims_json(claims).find(R"("orig":{"uri":"sip:bob@example.net"})"),
            std::string::npos);
  EXPECT_NO_THROW(validate_claims(claims));
}

TEST(CanonicalJson, EmptyPptMeansAbsent) {
  PassportHeader header = protocol_header();
  header.ppt.clear();
  EXPECT_EQ(canonical_header_json(header),
            R"({"alg":"ES256","typ":"passport","x5u":"https://cr.example.net/sp-2026-11.pem"})");
}

// The header and claims are written directly, not as a tree: byte for
// byte what the tree they stand for dumps, escapes and refusals included.
TEST(CanonicalJson, WrittenDirectlyAsTheirTreeDumps) {
  const auto same = [](const PassportHeader& header, const ShakenClaims& claims) {
    const auto text = [](auto&& write) {
      try {
        return write();
      } catch (const Error& e) {
        return std::string("!") + e.what();
      }
    };
    EXPECT_EQ(text([&] { return canonical_header_json(header); }),
              text([&] { return canonical_json(header_to_json(header)); }));
    EXPECT_EQ(text([&] { return canonical_claims_json(claims); }),
              text([&] { return canonical_json(claims_to_json(claims)); }));
  };
  same(protocol_header(), protocol_claims());
  same(PassportHeader{"", "", "", ""}, ShakenClaims{});  // {} and {"iat":0}
  EXPECT_EQ(canonical_header_json(PassportHeader{"", "", "", ""}), "{}");
  EXPECT_EQ(canonical_claims_json(ShakenClaims{}), R"({"iat":0})");
  PassportHeader odd = protocol_header();
  odd.x5u = "https://x/\"q\"\\\x7F\x01\x1F\t\n caf\xC3\xA9 \xF0\x9F\x93\x9E";
  ShakenClaims claims = protocol_claims();
  claims.iat = INT64_MIN;
  claims.orig_uri = "sip:\"bob\"@example.net";
  claims.dest_tn = {"1", "", "2"};
  claims.dest_uri = {"sip:a\\b@example.com", "\b\f\r"};
  same(odd, claims);
  EXPECT_NE(canonical_claims_json(claims).find(R"("iat":-9223372036854775808,)"),
            std::string::npos);
  claims.dest_uri.push_back("bad \xFF byte");
  same(odd, claims);
  EXPECT_THROW(canonical_claims_json(claims), Error);
}

TEST(Claims, ProtocolExampleIsValid) { EXPECT_NO_THROW(validate_claims(protocol_claims())); }

TEST(Claims, AttestMustBeABOrC) {
  for (const char* attest : {"D", "a", "", "AB", " A"}) {
    ShakenClaims claims = protocol_claims();
    claims.attest = attest;
    expect_rejected(claims, "attest");
  }
  for (const char* attest : {"A", "B", "C"}) {
    ShakenClaims claims = protocol_claims();
    claims.attest = attest;
    EXPECT_NO_THROW(validate_claims(claims));
  }
}

TEST(Claims, OrigTnMustBeCanonical) {
  for (const char* tn :
       {"+12155550121", "1-215-555-0121", "Bob", "1215 5550121", "1234567890123456"}) {
    ShakenClaims claims = protocol_claims();
    claims.orig_tn = tn;
    expect_rejected(claims, "orig.tn");
  }
}

TEST(Claims, OrigNeedsExactlyOneIdentity) {
  ShakenClaims none = protocol_claims();
  none.orig_tn.clear();
  expect_rejected(none, "orig");
  ShakenClaims both = protocol_claims();
  both.orig_uri = "sip:bob@example.net";
  expect_rejected(both, "orig");
}

TEST(Claims, DestNeedsAnEntry) {
  ShakenClaims claims = protocol_claims();
  claims.dest_tn.clear();
  expect_rejected(claims, "dest");
}

TEST(Claims, EachDestTnMustBeCanonical) {
  ShakenClaims claims = protocol_claims();
  claims.dest_tn = {"12155550131", "+12155550132"};
  expect_rejected(claims, "dest.tn[1]");
  claims.dest_tn = {""};
  expect_rejected(claims, "dest.tn[0]");
  claims.dest_tn = {"12155550131"};
  claims.dest_uri = {""};
  expect_rejected(claims, "dest.uri[0]");
}

TEST(Claims, IatMustBePositive) {
  for (const std::int64_t iat : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{-1443208345}}) {
    ShakenClaims claims = protocol_claims();
    claims.iat = iat;
    expect_rejected(claims, "iat");
  }
}

TEST(Claims, OrigidMustBeUuid) {
  for (const char* origid :
       {"ref", "", "123e4567e89b12d3a456426655440000", "123e4567-e89b-12d3-a456-42665544000g",
        "{123e4567-e89b-12d3-a456-426655440000}"}) {
    ShakenClaims claims = protocol_claims();
    claims.origid = origid;
    expect_rejected(claims, "origid");
  }
}

TEST(Claims, TnAndUuidPredicates) {
  EXPECT_TRUE(is_canonical_tn("1"));
  EXPECT_TRUE(is_canonical_tn("123456789012345"));
  EXPECT_FALSE(is_canonical_tn(""));
  EXPECT_FALSE(is_canonical_tn("1234567890123456"));
  EXPECT_FALSE(is_canonical_tn("+1"));
  EXPECT_FALSE(is_canonical_tn("1.2"));
  EXPECT_TRUE(is_uuid("DE305D54-75B4-431B-ADB2-EB6B9E546014"));
  EXPECT_TRUE(is_uuid("de305d54-75b4-431b-adb2-eb6b9e546014"));
  EXPECT_FALSE(is_uuid("de305d54-75b4-431b-adb2-eb6b9e54601"));
  EXPECT_FALSE(is_uuid("de305d54_75b4-431b-adb2-eb6b9e546014"));
}

TEST(Signing, SigningInputIsBase64UrlOfCanonicalJson) {
  EXPECT_EQ(signing_input(protocol_header(), protocol_claims()),
            base64url_encode(kProtocolHeader) + "." + base64url_encode(kProtocolPayload));
}

TEST(Signing, SignedTokenVerifiesOverTheSigningInput) {
  testing::SoftwareSigner signer;
  const std::string jws = sign_passport(protocol_header(), protocol_claims(), signer);
  const std::string input = signing_input(protocol_header(), protocol_claims());
  ASSERT_EQ(jws.compare(0, input.size() + 1, input + "."), 0);
  const auto signature = base64url_decode(std::string_view(jws).substr(input.size() + 1));
  ASSERT_TRUE(signature);
  ASSERT_EQ(signature->size(), 64u);
  Es256Signature raw{};
  std::copy(signature->begin(), signature->end(), raw.begin());
  EXPECT_TRUE(verify_es256_digest(signer.key(), sha256(input), raw));
  raw[10] ^= 0x01;
  EXPECT_FALSE(verify_es256_digest(signer.key(), sha256(input), raw));
}

TEST(Signing, InvalidClaimsAreRefusedBeforeSigning) {
  CountingSigner signer;
  ShakenClaims claims = protocol_claims();
  claims.attest = "D";
  EXPECT_THROW(sign_passport(protocol_header(), claims, signer), Error);
  claims = protocol_claims();
  claims.orig_tn.clear();
  claims.orig_uri = "sip:\xFF@example.net";
  EXPECT_THROW(sign_passport(protocol_header(), claims, signer), Error);
  EXPECT_EQ(signer.calls, 0);
  EXPECT_NO_THROW(sign_passport(protocol_header(), protocol_claims(), signer));
  EXPECT_EQ(signer.calls, 1);
}

TEST(Signing, HeaderMustBeShakenEs256WithX5u) {
  CountingSigner signer;
  PassportHeader header = protocol_header();
  header.x5u.clear();
  EXPECT_THROW(sign_passport(header, protocol_claims(), signer), Error);
  header = protocol_header();
  header.x5u = "https://cr.example.net/a>b";
  EXPECT_THROW(sign_passport(header, protocol_claims(), signer), Error);
  header = protocol_header();
  header.alg = "RS256";
  EXPECT_THROW(sign_passport(header, protocol_claims(), signer), Error);
  header = protocol_header();
  header.ppt.clear();
  EXPECT_THROW(sign_passport(header, protocol_claims(), signer), Error);
  EXPECT_EQ(signer.calls, 0);
}

TEST(Signing, ComposeIdentityHeader) {
  EXPECT_EQ(compose_identity_header("h.p.s", "https://cr.example.net/sp.pem"),
            "h.p.s;info=<https://cr.example.net/sp.pem>;alg=ES256;ppt=shaken");
  EXPECT_THROW(compose_identity_header("h.p.s", ""), Error);
  EXPECT_THROW(compose_identity_header("h.p.s", "https://x/ y"), Error);
}

}  // namespace
}  // namespace stir
