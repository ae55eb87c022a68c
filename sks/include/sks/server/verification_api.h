// POST /stir/v1/verification (ATIS-1000082), apart from HTTP itself: the
// body read into a VerificationRequest, every refusal an ApiError from the
// one table (api_error.h), then the STI-VS verdict.
//
//   missing body                      SVC4000
//   body not JSON                     SVC4006
//   missing or empty parameter        SVC4001 naming it ("from.tn")
//   parameter of the wrong type       SVC4005 naming it, with why
//
// A failed validation is not an error: 200 with verstat and reason.
// Threads: safe from any thread (the Verifier is). Errors: request problems
// come back as ApiError; nothing throws except std::bad_alloc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sks/server/api_error.h"
#include "stir/verifier/verifier.h"

namespace sks::server {

// The request in `body`, or the ApiError it gets (never both).
struct ParsedVerification {
  std::optional<stir::vs::VerificationRequest> request;
  std::optional<ApiError> error;
};
ParsedVerification parse_verification_body(std::string_view body);

struct VerificationOutcome {
  std::optional<ApiError> error;
  std::string response_body;  // {"verificationResponse":{...}} without error
  std::string outcome;        // "ok" or the error case ("E18"), for the access log
};

// Parses `body` and verifies it.
VerificationOutcome verify_request(std::string_view body, stir::vs::Verifier& verifier);

}  // namespace sks::server
