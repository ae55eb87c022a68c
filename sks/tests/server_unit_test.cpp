// Unit tests of the server room with no token and no running server: the
// key ring over software keys (KeyRing's resolver hook), the signing
// request from body to Identity header, the verification request's
// parsing, and the per-client rate limiter. Tests against a real token and
// a running server are server_test.cpp, hardening_test.cpp and the others.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sks/server/api_error.h"
#include "sks/server/audit_log.h"
#include "sks/server/key_ring.h"
#include "sks/server/rate_limiter.h"
#include "sks/server/signing_api.h"
#include "sks/server/verification_api.h"
#include "software_signer.h"
#include "stir/error.h"
#include "stir/verify.h"

namespace sks::testing {
namespace {

using std::chrono::steady_clock;

constexpr std::int64_t kNow = 1796251082;
constexpr std::int64_t kSkew = 60;
constexpr const char* kOrigid = "de305d54-75b4-431b-adb2-eb6b9e546014";

// Two profiles on one software key, and one whose key is not active:
// "east" for sbc1 (A and B, a default origid), "open" the default profile
// (A, B, C, no origid), "parked" for sbc9 with no key.
class KeyRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SigningProfile east;
    east.name = "east";
    east.key_label = "shaken-east";
    east.x5u = "https://cr.example.net/east.pem";
    east.origid = kOrigid;
    east.attest = {"A", "B"};
    east.clients = {"sbc1.example.net"};
    SigningProfile open = east;
    open.name = "open";
    open.origid = "";
    open.attest = {"A", "B", "C"};
    open.clients = {};
    SigningProfile parked = east;
    parked.name = "parked";
    parked.key_label = "";
    parked.clients = {"sbc9.example.net"};
    config_.profiles = {east, open, parked};
    config_.server.default_profile = "open";
  }

  std::shared_ptr<const server::KeyRing> build(EVP_PKEY* public_key_of = nullptr) {
    return server::KeyRing::build(config_, [&](const SigningProfile& p) {
      ++resolved_[p.key_label + " " + p.x5u];
      auto key = std::make_shared<server::SigningKey>();
      key->label = p.key_label;
      key->x5u = p.x5u;
      key->signer = signer_;
      EVP_PKEY* pub = public_key_of != nullptr ? public_key_of : signer_->key();
      EVP_PKEY_up_ref(pub);
      key->public_key.reset(pub);
      return std::shared_ptr<const server::SigningKey>(std::move(key));
    });
  }

  // A signed request, or the answer the one error table gives its refusal.
  struct Outcome {
    server::SigningResult signed_;
    std::optional<server::ApiAnswer> error;
    const server::SigningResult* operator->() const { return &signed_; }
  };

  Outcome sign(const std::string& body, const std::vector<std::string>& names) {
    if (!ring_) ring_ = build();
    try {
      return {server::sign_request(body, names, *ring_, kNow, kSkew), std::nullopt};
    } catch (const stir::Error& e) {
      return {{}, server::api_answer(e)};
    }
  }

  static std::string error_of(const Outcome& outcome) {
    if (!outcome.error) return "no error: " + outcome->response_body;
    return std::to_string(outcome.error->status) + " " + outcome.error->body;
  }

  Config config_;
  std::shared_ptr<const stir::testing::SoftwareSigner> signer_ =
      std::make_shared<stir::testing::SoftwareSigner>();
  std::map<std::string, int> resolved_;
  std::shared_ptr<const server::KeyRing> ring_;
};

TEST_F(KeyRingTest, ResolvesEachKeyOnceAndPicksTheProfileByClientNameOrTheDefault) {
  const auto ring = build();
  EXPECT_EQ(resolved_,
            (std::map<std::string, int>{{"shaken-east https://cr.example.net/east.pem", 1}}));
  ASSERT_NE(ring->profile_for({"sbc1.example.net"}), nullptr);
  EXPECT_EQ(ring->profile_for({"sbc1.example.net"})->name, "east");
  // The second name is the one a profile lists: that profile, named by it.
  EXPECT_EQ(ring->profile_for({"other.example.net", "sbc1.example.net"})->name, "east");
  EXPECT_EQ(*ring->client_identity({"other.example.net", "sbc1.example.net"}), "sbc1.example.net");
  EXPECT_EQ(ring->profile_for({"unlisted.example.net"})->name, "open");
  EXPECT_EQ(ring->profile_for({"sbc9.example.net"})->key, nullptr);
  // Both profiles on one key share its entry.
  EXPECT_EQ(ring->profiles()[0].key, ring->profiles()[1].key);
}

TEST_F(KeyRingTest, WithoutADefaultProfileAnUnlistedClientHasNone) {
  config_.server.default_profile = "";
  const auto ring = build();
  EXPECT_EQ(ring->profile_for({"unlisted.example.net"}), nullptr);
  EXPECT_EQ(ring->profile_for({}), nullptr);
}

TEST_F(KeyRingTest, SelfTestPassesForTheRightPublicKeyAndNamesAKeyThatDoesNot) {
  EXPECT_NO_THROW(build()->self_test());
  stir::testing::SoftwareSigner other;
  try {
    build(other.key())->self_test();
    FAIL() << "a key whose public half does not match passed the self-test";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kCrypto);
    EXPECT_EQ(std::string(e.what()),
              "key 'shaken-east' signed a self-test that does not verify with its public key");
  }
}

// The one self-test (p11::self_test) names the key whose signer fails and
// keeps the signer's code: what /readyz and a failed reload report.
TEST_F(KeyRingTest, SelfTestNamesTheKeyWhoseSignerFailsWithTheSignersCode) {
  struct Refusing final : stir::DigestSigner {
    stir::Es256Signature sign_digest(const stir::Sha256Digest&) const override {
      throw stir::Error(stir::ErrorCode::kUnavailable, "token unavailable: pulled");
    }
  };
  const auto ring = server::KeyRing::build(config_, [](const SigningProfile& p) {
    auto key = std::make_shared<server::SigningKey>();
    key->label = p.key_label;
    key->x5u = p.x5u;
    key->signer = std::make_shared<Refusing>();
    return std::shared_ptr<const server::SigningKey>(std::move(key));
  });
  try {
    ring->self_test();
    FAIL() << "a key whose signer fails passed the self-test";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kUnavailable);
    EXPECT_EQ(std::string(e.what()), "key 'shaken-east': token unavailable: pulled");
  }
}

TEST_F(KeyRingTest, ASigningRequestBecomesAnIdentityHeaderThatVerifiesWithTheProfilesKey) {
  const auto result = sign(
      R"({"signingRequest":{"attest":"B","orig":{"tn":"12155550121"},"dest":{"tn":["12155550131"]},"iat":1796251080}})",
      {"sbc1.example.net"});
  ASSERT_FALSE(result.error) << error_of(result);
  ASSERT_NE(result->profile, nullptr);
  EXPECT_EQ(result->profile->name, "east");
  const auto response = nlohmann::json::parse(result->response_body);
  const std::string identity = response.at("signingResponse").at("identity");
  EXPECT_NE(identity.find(";info=<https://cr.example.net/east.pem>"), std::string::npos)
      << identity;
  stir::VerifyOptions options;
  options.now = kNow;
  const stir::VerifyResult verdict = stir::verify_identity(identity, signer_->key(), options);
  ASSERT_TRUE(verdict.valid) << verdict.detail;
  ASSERT_TRUE(verdict.passport);
  EXPECT_EQ(verdict.passport->claims.attest, "B");
  EXPECT_EQ(verdict.passport->claims.origid, kOrigid);  // the profile's default
  EXPECT_EQ(verdict.passport->claims.iat, 1796251080);
}

TEST_F(KeyRingTest, RequestProblemsAreTheirAtisErrors) {
  const std::vector<std::string> sbc1{"sbc1.example.net"};
  const std::string svc4001 =
      R"(400 {"requestError":{"serviceException":{"messageId":"SVC4001","text":"Missing mandatory parameter '%1'","variables":["%s"]}}})";
  auto missing = [&](const std::string& name) {
    std::string text = svc4001;
    return text.replace(text.find("%s"), 2, name);
  };
  EXPECT_EQ(
      error_of(sign("", sbc1)),
      R"(400 {"requestError":{"serviceException":{"messageId":"SVC4000","text":"Missing request body"}}})");
  EXPECT_EQ(error_of(sign("{}", sbc1)), missing("signingRequest"));
  EXPECT_EQ(error_of(sign(R"({"signingRequest":{"orig":{"tn":"1"},"dest":{"tn":["2"]}}})", sbc1)),
            missing("attest"));
  EXPECT_EQ(error_of(sign(R"({"signingRequest":{"attest":"A","dest":{"tn":["2"]}}})", sbc1)),
            missing("orig"));
  // The default profile has no origid: a request must bring one.
  EXPECT_EQ(
      error_of(sign(R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]}}})",
                    {"unlisted.example.net"})),
      missing("origid"));
  const auto duplicate = sign(R"({"signingRequest":{"attest":"A","attest":"B"}})", sbc1);
  ASSERT_TRUE(duplicate.error);
  EXPECT_EQ(duplicate.error->message_id, "SVC4005");
  EXPECT_NE(duplicate.error->body.find(R"("variables":["attest")"), std::string::npos);
  const auto broken = sign(R"({"signingRequest":)", sbc1);
  ASSERT_TRUE(broken.error);
  EXPECT_EQ(broken.error->message_id, "SVC4006");
  const auto stale = sign(
      R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"iat":1796250000}})",
      sbc1);
  ASSERT_TRUE(stale.error);
  EXPECT_EQ(stale.error->message_id, "SVC4005");
  EXPECT_NE(stale.error->body.find(R"("variables":["iat")"), std::string::npos);
}

// The request is read from the parser's events, members in any order:
// each rule still refuses with its own words, in the order the rules are
// listed (attest, orig, dest, iat, origid), and a refusal of the JSON
// itself comes first wherever in the body it is.
TEST_F(KeyRingTest, TheRequestIsReadInAnyMemberOrderAndEachRuleRefusesWithItsOwnWords) {
  const auto ring = build();
  const server::Profile& east = *ring->profile_for({"sbc1.example.net"});
  const server::Profile& open = *ring->profile_for({"unlisted.example.net"});
  const auto refusal = [&](const std::string& body, const server::Profile& profile) {
    try {
      const stir::ShakenClaims claims = server::read_signing_request(body, profile, kNow, kSkew);
      return "read: " + claims.attest + " " + claims.orig_tn + " " + claims.dest_tn.front();
    } catch (const stir::RequestError& e) {
      return std::string(e.what());
    }
  };
  std::string hundred_and_one =
      R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":[)";
  for (int i = 0; i < 101; ++i) hundred_and_one += i == 0 ? "\"2\"" : ",\"x\"";
  hundred_and_one += "]}}}";
  const std::vector<std::pair<std::string, std::string>> cases = {
      // Members in reverse order, unknown ones (an object holding "tn" too) ignored.
      {R"({"x":{"signingRequest":1},"signingRequest":{"ppt":"shaken","dest":{"tn":["12155550131"],"uri":[]},"orig":{"x":{"tn":5},"tn":"12155550121"},"attest":"B"}})",
       "read: B 12155550121 12155550131"},
      {R"([{"signingRequest":{}}])", "missing mandatory parameter 'signingRequest'"},
      {R"({"signingRequest":null})", "invalid 'signingRequest': must be an object"},
      {R"({"signingRequest":{"dest":5,"orig":5,"attest":null}})",
       "missing mandatory parameter 'attest'"},
      {R"({"signingRequest":{"dest":5,"orig":5,"attest":"D"}})",
       R"(invalid 'attest': must be "A", "B" or "C")"},
      {R"({"signingRequest":{"dest":5,"orig":{"tn":null},"attest":"A"}})",
       R"(invalid 'orig': must be {"tn":"<canonical TN>"})"},
      {R"({"signingRequest":{"dest":5,"orig":{"tn":"+1"},"attest":"A"}})",
       "invalid 'orig': orig.tn must be digits only, country code included"},
      {R"({"signingRequest":{"iat":"x","dest":{"tn":[]},"orig":{"tn":"1"},"attest":"A"}})",
       R"(invalid 'dest': must be {"tn":["<canonical TN>", ...]})"},
      {hundred_and_one, "invalid 'dest': more than 100 dest.tn entries"},
      {R"({"signingRequest":{"dest":{"tn":["2",["3"]]},"orig":{"tn":"1"},"attest":"A"}})",
       "invalid 'dest': dest.tn entries must be digits only"},
      {R"({"signingRequest":{"origid":7,"iat":1.0,"dest":{"tn":["2"]},"orig":{"tn":"1"},"attest":"A"}})",
       "invalid 'iat': must be an integer NumericDate"},
      {R"({"signingRequest":{"iat":18446744073709551615,"dest":{"tn":["2"]},"orig":{"tn":"1"},"attest":"A"}})",
       "invalid 'iat': more than 60 s from the server's clock"},
      {R"({"signingRequest":{"origid":"x","dest":{"tn":["2"]},"orig":{"tn":"1"},"attest":"A"}})",
       "invalid 'origid': must be a UUID"},
      // The JSON's own rules first, even after a member a rule would refuse.
      {R"({"signingRequest":{"attest":"D","x":{"a":1,"a":2}}})",
       "invalid 'a': member appears more than once"},
      {R"({"signingRequest":{"attest":"D"}} x)", "not valid JSON"},
      {R"({"signingRequest":{"attest":"D","x":)" + std::string(40, '[') + std::string(40, ']') +
           "}}",
       "nested deeper than 32 levels"},
  };
  for (const auto& [body, want] : cases) EXPECT_EQ(refusal(body, east), want) << body;
  // Without a profile origid, the request must bring one.
  EXPECT_EQ(
      refusal(R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]}}})", open),
      "missing mandatory parameter 'origid'");
  const stir::ShakenClaims claims = server::read_signing_request(
      R"({"signingRequest":{"origid":"DE305D54-75B4-431B-ADB2-EB6B9E546014","iat":-0,"dest":{"tn":["2","3"]},"orig":{"tn":"\u0031"},"attest":"C"}})",
      open, 60, kSkew);
  EXPECT_EQ(claims.origid, "DE305D54-75B4-431B-ADB2-EB6B9E546014");
  EXPECT_EQ(claims.iat, 0);
  EXPECT_EQ(claims.orig_tn, "1");
  EXPECT_EQ(claims.dest_tn, (std::vector<std::string>{"2", "3"}));
}

TEST_F(KeyRingTest, PolicyRefusalsAreForbiddenOrUnavailable) {
  const std::string c_request =
      R"({"signingRequest":{"attest":"C","orig":{"tn":"1"},"dest":{"tn":["2"]}}})";
  EXPECT_EQ(
      error_of(sign(c_request, {"sbc1.example.net"})),
      R"(403 {"requestError":{"policyException":{"messageId":"POL4003","text":"Not permitted: %1","variables":["attestation level 'C' is not permitted for profile 'east'"]}}})");
  config_.server.default_profile = "";
  ring_.reset();
  EXPECT_EQ(
      error_of(sign(c_request, {"unlisted.example.net"})),
      R"(403 {"requestError":{"policyException":{"messageId":"POL4003","text":"Not permitted: %1","variables":["client 'unlisted.example.net' has no signing profile"]}}})");
  // A profile whose key is not active signs nothing: 503.
  const auto parked =
      sign(R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]}}})",
           {"sbc9.example.net"});
  ASSERT_TRUE(parked.error);
  EXPECT_EQ(parked.error->status, 503);
  EXPECT_EQ(parked.error->message_id, "POL5003");
}

TEST(VerificationApi, EmptyToTnIsSvc4001LikeAMissingOne) {
  const std::string svc4001 =
      R"(400 {"requestError":{"serviceException":{"messageId":"SVC4001","text":"Missing mandatory parameter '%1'","variables":["to.tn"]}}})";
  for (const char* to : {R"("")", R"([""])", R"(["12155550131",""])", R"([])"}) {
    try {
      (void)server::parse_verification_body(
          std::string(
              R"({"verificationRequest":{"identity":"x","from":{"tn":"12155550121"},"to":{"tn":)") +
          to + "}}}");
      ADD_FAILURE() << "accepted: " << to;
    } catch (const stir::Error& e) {
      const server::ApiAnswer answer = server::api_answer(e);
      EXPECT_EQ(std::to_string(answer.status) + " " + answer.body, svc4001) << to;
    }
  }
}

TEST(LogTime, Rfc3339WithMillisecondsInUtcAlsoWithinOneCachedSecond) {
  using std::chrono::milliseconds;
  const std::chrono::system_clock::time_point t{std::chrono::seconds(kNow)};
  EXPECT_EQ(server::rfc3339_millis(t), "2026-12-02T22:38:02.000Z");
  // The same second again (its date and time of day cached), then others.
  EXPECT_EQ(server::rfc3339_millis(t + milliseconds(7)), "2026-12-02T22:38:02.007Z");
  EXPECT_EQ(server::rfc3339_millis(t + milliseconds(999)), "2026-12-02T22:38:02.999Z");
  EXPECT_EQ(server::rfc3339_millis(t + milliseconds(1000)), "2026-12-02T22:38:03.000Z");
  EXPECT_EQ(server::rfc3339_millis(t + milliseconds(120)), "2026-12-02T22:38:02.120Z");
  EXPECT_EQ(server::rfc3339_millis(t + std::chrono::hours(24 * 30) + milliseconds(58)),
            "2027-01-01T22:38:02.058Z");
}

TEST(RateLimiter, TokenBucketAdmitsTheBurstThenTheRateAndSaysHowLongToWait) {
  server::RateLimiter limiter(RateLimitConfig{2, 3});  // 2/s, bucket of 3
  const auto t0 = steady_clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.admit("a", t0), std::nullopt) << i;
  EXPECT_EQ(limiter.admit("a", t0), std::optional<std::int64_t>(1));
  EXPECT_EQ(limiter.admit("b", t0), std::nullopt);  // its own bucket
  EXPECT_EQ(limiter.admit("a", t0 + std::chrono::milliseconds(500)), std::nullopt);
  EXPECT_EQ(limiter.admit("a", t0 + std::chrono::milliseconds(500)),
            std::optional<std::int64_t>(1));
  // A long pause refills to the burst, never beyond.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(limiter.admit("a", t0 + std::chrono::hours(1)), std::nullopt);
  EXPECT_NE(limiter.admit("a", t0 + std::chrono::hours(1)), std::nullopt);
  // A slow rate asks for a longer wait.
  server::RateLimiter slow(RateLimitConfig{1, 1});
  EXPECT_EQ(slow.admit("a", t0), std::nullopt);
  EXPECT_EQ(slow.admit("a", t0), std::optional<std::int64_t>(1));
  EXPECT_EQ(server::RateLimiter(RateLimitConfig{}).admit("a", t0), std::nullopt);  // off
  EXPECT_EQ(
      limiter.render_metrics(),
      "# HELP sks_rate_limit_per_client_per_s Configured signings per second per client (0: "
      "off).\n# TYPE sks_rate_limit_per_client_per_s gauge\n"
      "sks_rate_limit_per_client_per_s 2\n"
      "# HELP sks_rate_limited_total Signing requests refused with 429: client over its rate "
      "limit.\n# TYPE sks_rate_limited_total counter\nsks_rate_limited_total{client=\"a\"} 3\n");
}

}  // namespace
}  // namespace sks::testing
