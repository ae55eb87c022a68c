// The body of POST /stir/v1/verification (PROTOCOL.md section 3), read into
// a VerificationRequest, or the reason it cannot be one. Which HTTP answer
// a reason gets (SVC4001, SVC4005) is the service's, in its one error table
// (sks/include/sks/server/api_error.h).
//
//   {"verificationRequest":{"from":{"tn":"..."},"to":{"tn":["..."]},
//    "time":1632413071,"identity":"<Identity header value>"}}
//
// Unknown members are ignored. identity, from.tn and to.tn are mandatory
// (missing or empty: kMissing naming the parameter); a wrong type is
// kInvalid. to.tn may be an array of strings or, tolerated, one string.
// time is optional; when present it must be an integer (kInvalid).
//
// Threads: pure functions. Errors: never throw except std::bad_alloc.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "stir/verifier/verifier.h"

namespace stir::vs {

struct RequestProblem {
  enum class Kind { kMissing, kInvalid };
  Kind kind = Kind::kMissing;
  std::string parameter;  // "from.tn"
  std::string why;        // kInvalid: "not a string"
};

struct ParsedVerificationRequest {
  std::optional<VerificationRequest> request;  // set on success
  std::optional<RequestProblem> error;         // set on failure
};

ParsedVerificationRequest parse_verification_request(const nlohmann::json& body);

}  // namespace stir::vs
