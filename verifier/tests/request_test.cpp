// The verification request body and the response shapes of PROTOCOL.md
// section 3.
#include "stir/verifier/request.h"

#include <gtest/gtest.h>

#include "stir/verifier/reason_policy.h"

namespace stir::vs {
namespace {

using nlohmann::json;

using Problem = stir::RequestError::Problem;

// The refusal of `body` (a kNotFound error naming "(none)" when it parses).
stir::RequestError error_of(const std::string& body) {
  try {
    (void)parse_verification_request(json::parse(body));
  } catch (const stir::RequestError& e) {
    return e;
  }
  ADD_FAILURE() << "no error: " << body;
  return stir::RequestError::not_found("(none)");
}

TEST(VerificationRequestBody, ReadsTheAtisShape) {
  const VerificationRequest parsed = parse_verification_request(json::parse(
      R"({"verificationRequest":{"from":{"tn":"12355551212"},"to":{"tn":["12155551212"]},)"
      R"("time":1632413071,"identity":"abc;info=<https://x/y>","extra":true}})"));
  EXPECT_EQ(parsed.from_tn, "12355551212");
  EXPECT_EQ(parsed.to_tns, std::vector<std::string>{"12155551212"});
  EXPECT_EQ(parsed.time, 1632413071);
  EXPECT_EQ(parsed.identity, "abc;info=<https://x/y>");
  EXPECT_FALSE(parsed.now);
}

TEST(VerificationRequestBody, ToAsOneStringAndNoTime) {
  const VerificationRequest parsed = parse_verification_request(
      json::parse(R"({"verificationRequest":{"from":{"tn":"1"},"to":{"tn":"2"},"identity":"x"}})"));
  EXPECT_EQ(parsed.to_tns, std::vector<std::string>{"2"});
  EXPECT_FALSE(parsed.time);
}

TEST(VerificationRequestBody, MissingOrEmptyIdentityIsMissing) {
  const stir::RequestError e =
      error_of(R"({"verificationRequest":{"from":{"tn":"1"},"to":{"tn":["2"]}}})");
  EXPECT_EQ(e.problem(), Problem::kMissingParameter);
  EXPECT_EQ(e.subject(), "identity");
  const stir::RequestError empty =
      error_of(R"({"verificationRequest":{"from":{"tn":"1"},"to":{"tn":["2"]},)"
               R"("identity":""}})");
  EXPECT_EQ(empty.problem(), Problem::kMissingParameter);
  EXPECT_EQ(empty.subject(), "identity");
}

TEST(VerificationRequestBody, OtherMissingAndInvalidParameters) {
  EXPECT_EQ(error_of(R"({})").subject(), "verificationRequest");
  EXPECT_EQ(error_of(R"({"verificationRequest":{"identity":"x","to":{"tn":["2"]}}})").subject(),
            "from");
  EXPECT_EQ(
      error_of(R"({"verificationRequest":{"identity":"x","from":{},"to":{"tn":["2"]}}})").subject(),
      "from.tn");
  EXPECT_EQ(error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"}}})").subject(),
            "to");
  EXPECT_EQ(error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":[]}}})")
                .problem(),
            Problem::kMissingParameter);
  const stir::RequestError bad_time =
      error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":["2"]},)"
               R"("time":"now"}})");
  EXPECT_EQ(bad_time.problem(), Problem::kInvalidValue);
  EXPECT_EQ(bad_time.subject(), "time");
  EXPECT_EQ(bad_time.why(), "not an integer");
  EXPECT_EQ(
      error_of(R"({"verificationRequest":{"identity":5,"from":{"tn":"1"},"to":{"tn":["2"]}}})")
          .problem(),
      Problem::kInvalidValue);
  EXPECT_EQ(
      error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":[2]}}})")
          .problem(),
      Problem::kInvalidValue);
  EXPECT_EQ(error_of(R"([1,2])").problem(), Problem::kInvalidValue);
}

TEST(VerificationResponse, FailureAndSuccessShapes) {
  VerificationResult failed;
  failed.verstat = kVerstatFailed;
  failed.reasoncode = 438;
  failed.reasontext = "Invalid Identity Header";
  failed.reasondesc = "Signature validation failed";
  failed.detail = "internal";
  failed.error_case = 18;
  EXPECT_EQ(to_verification_response(failed),
            json::parse(R"({"verificationResponse":{"reasoncode":438,)"
                        R"("reasontext":"Invalid Identity Header",)"
                        R"("reasondesc":"Signature validation failed",)"
                        R"("verstat":"TN-Validation-Failed"}})"));
  EXPECT_EQ(failed.error_case_id(), "E18");
  VerificationResult passed;
  passed.verstat = kVerstatPassed;
  EXPECT_EQ(to_verification_response(passed).dump(),
            R"({"verificationResponse":{"verstat":"TN-Validation-Passed"}})");
  EXPECT_EQ(passed.error_case_id(), "");
}

TEST(ReasonOnce, LruIsBounded) {
  ReasonOncePolicy policy(2, 100);
  EXPECT_TRUE(policy.allow("a", 0));
  EXPECT_FALSE(policy.allow("a", 99));
  EXPECT_TRUE(policy.allow("a", 100));
  EXPECT_TRUE(policy.allow("b", 100));
  EXPECT_TRUE(policy.allow("c", 100));  // forgets "a"
  EXPECT_EQ(policy.size(), 2u);
  EXPECT_TRUE(policy.allow("a", 101));
  EXPECT_FALSE(policy.allow("c", 101));
}

}  // namespace
}  // namespace stir::vs
