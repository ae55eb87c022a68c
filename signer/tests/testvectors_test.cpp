// Public vectors from tests/vectors (see its README): tokens and
// keys nobody on this project wrote.
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "stir/base64url.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verify.h"

#ifndef STIR_TESTVECTORS_DIR
#define STIR_TESTVECTORS_DIR ""
#endif

namespace stir {
namespace {

using nlohmann::json;

constexpr std::string_view kYetiToken =
    "eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jdXJsLmhheH"
    "guc2UvY2EvY2FjZXJ0LnBlbSJ9."
    "eyJhdHRlc3QiOiJDIiwiZGVzdCI6eyJ0biI6WyIiXX0sImlhdCI6MTYwMjA1NTc0Miwib3JpZyI6eyJ0biI6IiJ9LCJvcm"
    "lnaWQiOiJjOTlkOWU3Zi1kMWIzLTRjOTItYjMzMy1lNWU1ZWZmMDNhZjEifQ."
    "lj2311mNk23vinNsceeWNvVtElsuvEVCHO_hpT8eUOkPiy01PD85pFxKfPcVb0BolCZOlXsBsncXt3lNvcsW7w";
constexpr std::string_view kYetiX5u = "https://curl.haxx.se/ca/cacert.pem";

// RFC 8225 Appendix A, as printed in the vectors' README.
constexpr std::string_view kRfc8225Header =
    R"({"alg":"ES256","typ":"passport","x5u":"https://cert.example.org/passport.cer"})";
constexpr std::string_view kRfc8225HeaderB64 =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3Bhc3Nwb3"
    "J0LmNlciJ9";
constexpr std::string_view kRfc8225Payload =
    R"({"dest":{"uri":["sip:alice@example.com"]},"iat":1471375418,"orig":{"tn":"12155551212"}})";
constexpr std::string_view kRfc8225PayloadB64 =
    "eyJkZXN0Ijp7InVyaSI6WyJzaXA6YWxpY2VAZXhhbXBsZS5jb20iXX0sImlhdCI6MTQ3MTM3NTQxOCwib3JpZyI6eyJ0bi"
    "I6IjEyMTU1NTUxMjEyIn19";

class TestVectors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = STIR_TESTVECTORS_DIR;
    ASSERT_FALSE(dir_.empty())
        << "STIR_TESTVECTORS_DIR is not set: the build must point it at tests/vectors";
    ASSERT_TRUE(std::filesystem::is_directory(dir_)) << "test vector directory missing: " << dir_;
  }

  std::string path(const std::string& relative) const { return (dir_ / relative).string(); }

  std::string read(const std::string& relative) const {
    std::ifstream in(path(relative), std::ios::binary);
    EXPECT_TRUE(in) << "cannot open test vector " << path(relative);
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

  // The line after `label` in a libstirshaken text dump.
  std::string line_after(const std::string& relative, std::string_view label) const {
    const std::vector<std::string> all = lines(relative);
    for (std::size_t i = 0; i + 1 < all.size(); ++i) {
      if (all[i] == label) return all[i + 1];
    }
    ADD_FAILURE() << "no line after \"" << label << "\" in " << relative;
    return "";
  }

  static VerifyOptions lax() {
    VerifyOptions options;
    options.require_shaken_claims = false;
    return options;
  }

  // Checks the raw ES256 signature of a compact JWS by itself, no claim checks.
  static bool signature_valid(std::string_view jws, EVP_PKEY* key) {
    const std::size_t dot = jws.rfind('.');
    const auto sig = base64url_decode(jws.substr(dot + 1));
    if (!sig || sig->size() != 64) return false;
    Es256Signature raw{};
    std::copy(sig->begin(), sig->end(), raw.begin());
    return verify_es256_digest(key, sha256(jws.substr(0, dot)), raw);
  }

  std::filesystem::path dir_;
};

void expect_reason(const VerifyResult& result, SipReason reason) {
  EXPECT_FALSE(result.valid);
  EXPECT_EQ(result.reason, reason) << result.detail;
}

TEST_F(TestVectors, LibstirshakenTokensOneAndTwoAreValidShaken) {
  const EvpPkeyPtr key = load_public_key_file(path("libstirshaken/sp.pub"));
  const std::vector<std::string> tokens = lines("libstirshaken/tokens.txt");
  ASSERT_EQ(tokens.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i + 1);
    const VerifyResult result = verify_passport(tokens[i], key.get());
    ASSERT_TRUE(result.valid) << result.detail;
    ASSERT_TRUE(result.passport);
    const ShakenClaims& claims = result.passport->claims;
    EXPECT_EQ(claims.attest, "B");
    EXPECT_EQ(claims.iat, 1616442523);
    EXPECT_EQ(claims.orig_tn, "01256500600");
    EXPECT_EQ(claims.dest_tn, std::vector<std::string>{"01256700800"});
    EXPECT_EQ(result.passport->header.x5u, "https://shaken.signalwire.cloud/sp.pem");
    // As an Identity header too.
    const std::string identity = compose_identity_header(tokens[i], result.passport->header.x5u);
    EXPECT_TRUE(verify_identity(identity, key.get()).valid);
  }
  EXPECT_NE(tokens[0], tokens[1]);
}

TEST_F(TestVectors, LibstirshakenTokenThreeFailsClaimRulesOnly) {
  const EvpPkeyPtr key = load_public_key_file(path("libstirshaken/sp.pub"));
  const std::vector<std::string> tokens = lines("libstirshaken/tokens.txt");
  ASSERT_EQ(tokens.size(), 3u);
  const VerifyResult strict = verify_passport(tokens[2], key.get());
  expect_reason(strict, SipReason::kInvalidIdentityHeader);
  EXPECT_NE(strict.detail.find("orig.tn"), std::string::npos) << strict.detail;
  EXPECT_TRUE(verify_passport(tokens[2], key.get(), lax()).valid);
  EXPECT_TRUE(signature_valid(tokens[2], key.get()));
}

TEST_F(TestVectors, LibstirshakenStringifiedClaimsAre438) {
  const EvpPkeyPtr key = load_public_key_file(path("libstirshaken/sp.pub"));
  const std::string file = "libstirshaken/passport-stringified-claims.txt";
  const std::string jws = line_after(file, "PASSporT signed is:");
  const std::string identity = line_after(file, "SIP Identity Header with PASSporT is:");
  ASSERT_FALSE(jws.empty());
  ASSERT_FALSE(identity.empty());
  EXPECT_TRUE(signature_valid(jws, key.get()));
  EXPECT_TRUE(signature_valid(identity.substr(0, identity.find(';')), key.get()));
  for (const VerifyOptions& options : {VerifyOptions{}, lax()}) {
    const VerifyResult bare = verify_passport(jws, key.get(), options);
    expect_reason(bare, SipReason::kInvalidIdentityHeader);
    EXPECT_NE(bare.detail.find("is not a JSON object"), std::string::npos) << bare.detail;
    expect_reason(verify_identity(identity, key.get(), options), SipReason::kInvalidIdentityHeader);
  }
}

TEST_F(TestVectors, LibstirshakenCertificateKeyVerifies) {
  const EvpPkeyPtr from_cert = public_key_from_certificate_file(path("libstirshaken/sp.pem"));
  const EvpPkeyPtr from_pem = load_public_key_file(path("libstirshaken/sp.pem"));
  const EvpPkeyPtr pub = load_public_key_file(path("libstirshaken/sp.pub"));
  EXPECT_EQ(EVP_PKEY_eq(from_cert.get(), pub.get()), 1);
  EXPECT_EQ(EVP_PKEY_eq(from_pem.get(), pub.get()), 1);
  const std::vector<std::string> tokens = lines("libstirshaken/tokens.txt");
  ASSERT_FALSE(tokens.empty());
  const VerifyResult result = verify_passport(tokens[0], from_cert.get());
  EXPECT_TRUE(result.valid) << result.detail;
  // The CA's key did not sign it.
  const EvpPkeyPtr ca = public_key_from_certificate_file(path("libstirshaken/ca.pem"));
  expect_reason(verify_passport(tokens[0], ca.get()), SipReason::kInvalidIdentityHeader);
}

TEST_F(TestVectors, YetiTokenVerifiesButHasEmptyTns) {
  const EvpPkeyPtr key = load_public_key_file(path("yeti/test.pub"));
  const VerifyResult lax_result = verify_passport(kYetiToken, key.get(), lax());
  ASSERT_TRUE(lax_result.valid) << lax_result.detail;
  EXPECT_EQ(lax_result.passport->claims.attest, "C");
  expect_reason(verify_passport(kYetiToken, key.get()), SipReason::kInvalidIdentityHeader);
  const EvpPkeyPtr cert_key = public_key_from_certificate_file(path("yeti/test.pem"));
  EXPECT_EQ(EVP_PKEY_eq(cert_key.get(), key.get()), 1);
}

TEST_F(TestVectors, YetiIdentityHeaderVariants) {
  const EvpPkeyPtr key = load_public_key_file(path("yeti/test.pub"));
  const std::string token(kYetiToken);
  const std::string info = ";info=<" + std::string(kYetiX5u) + ">";
  const VerifyResult good =
      verify_identity(token + info + ";alg=ES256;ppt=shaken", key.get(), lax());
  EXPECT_TRUE(good.valid) << good.detail;
  expect_reason(verify_identity(token + info + ";alg=ES25;ppt=shaken", key.get(), lax()),
                SipReason::kUnsupportedCredential);
  expect_reason(verify_identity(token + info + ";alg=ES256;ppt=shake", key.get(), lax()),
                SipReason::kInvalidIdentityHeader);
  expect_reason(verify_identity(token + ";info=<https://curl.haxx.se/ca/other.pem>;alg=ES256",
                                key.get(), lax()),
                SipReason::kBadIdentityInfo);
  const std::string compact = ".." + token.substr(token.rfind('.') + 1);
  expect_reason(verify_identity(compact + info + ";alg=ES256;ppt=shaken", key.get(), lax()),
                SipReason::kInvalidIdentityHeader);
  expect_reason(verify_identity(token, key.get(), lax()), SipReason::kBadIdentityInfo);
}

// Rewrites a JSON object's members (recursively) in a random order.
std::string shuffled_text(const json& value, std::mt19937& rng) {
  if (!value.is_object()) return value.dump();
  std::vector<std::string> keys;
  for (const auto& item : value.items()) keys.push_back(item.key());
  std::shuffle(keys.begin(), keys.end(), rng);
  std::string out = "{";
  for (const std::string& key : keys) {
    if (out.size() > 1) out += " ,\n ";
    out += json(key).dump() + " : " + shuffled_text(value.at(key), rng);
  }
  return out + "}";
}

TEST_F(TestVectors, Rfc8225CanonicalSerialisationOracle) {
  EXPECT_EQ(base64url_encode(canonical_json(json::parse(kRfc8225Header))), kRfc8225HeaderB64);
  EXPECT_EQ(base64url_encode(canonical_json(json::parse(kRfc8225Payload))), kRfc8225PayloadB64);
  std::mt19937 rng(8225);
  for (int i = 0; i < 20; ++i) {
    const std::string header = shuffled_text(json::parse(kRfc8225Header), rng);
    const std::string payload = shuffled_text(json::parse(kRfc8225Payload), rng);
    EXPECT_EQ(base64url_encode(canonical_json(json::parse(header))), kRfc8225HeaderB64) << header;
    EXPECT_EQ(base64url_encode(canonical_json(json::parse(payload))), kRfc8225PayloadB64)
        << payload;
  }
}

TEST_F(TestVectors, Rfc8225OracleThroughTypedStructs) {
  PassportHeader header;
  header.ppt.clear();  // RFC 8225's base PASSporT has no ppt
  header.x5u = "https://cert.example.org/passport.cer";
  EXPECT_EQ(base64url_encode(canonical_header_json(header)), kRfc8225HeaderB64);
  ShakenClaims claims;  // no attest/origid: not SHAKEN, so not validated here
  claims.orig_tn = "12155551212";
  claims.dest_uri = {"sip:alice@example.com"};
  claims.iat = 1471375418;
  EXPECT_EQ(base64url_encode(canonical_claims_json(claims)), kRfc8225PayloadB64);
  EXPECT_EQ(signing_input(header, claims),
            std::string(kRfc8225HeaderB64) + "." + std::string(kRfc8225PayloadB64));
}

TEST_F(TestVectors, Rfc8225PublicKeyMatchesPrivateKey) {
  const EvpPkeyPtr pub = load_public_key_file(path("rfc8225/appendix-a1-public.pem"));
  const std::string private_pem = read("rfc8225/appendix-a1-private.pem");
  BioPtr bio(BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())));
  ASSERT_TRUE(bio);
  EvpPkeyPtr priv(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(priv);
  EXPECT_EQ(EVP_PKEY_eq(pub.get(), priv.get()), 1);
  EXPECT_TRUE(is_p256_key(pub.get()));
}

}  // namespace
}  // namespace stir
