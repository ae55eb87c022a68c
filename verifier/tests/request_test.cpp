// The verification request body and the response shapes of PROTOCOL.md
// section 3.
#include "stir/verifier/request.h"

#include <gtest/gtest.h>

#include "stir/verifier/reason_policy.h"

namespace stir::vs {
namespace {

using nlohmann::json;

using Kind = RequestProblem::Kind;

RequestProblem error_of(const std::string& body) {
  const ParsedVerificationRequest parsed = parse_verification_request(json::parse(body));
  EXPECT_FALSE(parsed.request) << body;
  return parsed.error.value_or(RequestProblem{Kind::kMissing, "(none)", {}});
}

TEST(VerificationRequestBody, ReadsTheAtisShape) {
  const ParsedVerificationRequest parsed = parse_verification_request(json::parse(
      R"({"verificationRequest":{"from":{"tn":"12355551212"},"to":{"tn":["12155551212"]},)"
      R"("time":1632413071,"identity":"abc;info=<https://x/y>","extra":true}})"));
  ASSERT_TRUE(parsed.request);
  EXPECT_FALSE(parsed.error);
  EXPECT_EQ(parsed.request->from_tn, "12355551212");
  EXPECT_EQ(parsed.request->to_tns, std::vector<std::string>{"12155551212"});
  EXPECT_EQ(parsed.request->time, 1632413071);
  EXPECT_EQ(parsed.request->identity, "abc;info=<https://x/y>");
  EXPECT_FALSE(parsed.request->now);
}

TEST(VerificationRequestBody, ToAsOneStringAndNoTime) {
  const ParsedVerificationRequest parsed = parse_verification_request(
      json::parse(R"({"verificationRequest":{"from":{"tn":"1"},"to":{"tn":"2"},"identity":"x"}})"));
  ASSERT_TRUE(parsed.request);
  EXPECT_EQ(parsed.request->to_tns, std::vector<std::string>{"2"});
  EXPECT_FALSE(parsed.request->time);
}

TEST(VerificationRequestBody, MissingOrEmptyIdentityIsMissing) {
  const RequestProblem e =
      error_of(R"({"verificationRequest":{"from":{"tn":"1"},"to":{"tn":["2"]}}})");
  EXPECT_EQ(e.kind, Kind::kMissing);
  EXPECT_EQ(e.parameter, "identity");
  const RequestProblem empty =
      error_of(R"({"verificationRequest":{"from":{"tn":"1"},"to":{"tn":["2"]},)"
               R"("identity":""}})");
  EXPECT_EQ(empty.kind, Kind::kMissing);
  EXPECT_EQ(empty.parameter, "identity");
}

TEST(VerificationRequestBody, OtherMissingAndInvalidParameters) {
  EXPECT_EQ(error_of(R"({})").parameter, "verificationRequest");
  EXPECT_EQ(error_of(R"({"verificationRequest":{"identity":"x","to":{"tn":["2"]}}})").parameter,
            "from");
  EXPECT_EQ(
      error_of(R"({"verificationRequest":{"identity":"x","from":{},"to":{"tn":["2"]}}})").parameter,
      "from.tn");
  EXPECT_EQ(error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"}}})").parameter,
            "to");
  EXPECT_EQ(
      error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":[]}}})").kind,
      Kind::kMissing);
  const RequestProblem bad_time =
      error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":["2"]},)"
               R"("time":"now"}})");
  EXPECT_EQ(bad_time.kind, Kind::kInvalid);
  EXPECT_EQ(bad_time.parameter, "time");
  EXPECT_EQ(bad_time.why, "not an integer");
  EXPECT_EQ(
      error_of(R"({"verificationRequest":{"identity":5,"from":{"tn":"1"},"to":{"tn":["2"]}}})")
          .kind,
      Kind::kInvalid);
  EXPECT_EQ(
      error_of(R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":[2]}}})")
          .kind,
      Kind::kInvalid);
  EXPECT_EQ(error_of(R"([1,2])").kind, Kind::kInvalid);
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
