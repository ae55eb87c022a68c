// POST /stir/v1/verification (ATIS-1000082), apart from HTTP itself: the
// body read into a VerificationRequest, every refusal a stir::RequestError
// answered by the one table (api_error.h), then the STI-VS verdict.
//
//   missing body                      SVC4000
//   body not JSON                     SVC4006
//   missing or empty parameter        SVC4001 naming it ("from.tn")
//   parameter of the wrong type       SVC4005 naming it, with why
//
// A failed validation is not an error: 200 with verstat and reason.
// Threads: safe from any thread (the Verifier is). Errors: request problems
// throw stir::RequestError; nothing else throws except std::bad_alloc.
#pragma once

#include <string>
#include <string_view>

#include "stir/request_error.h"
#include "stir/verifier/verifier.h"

namespace sks::server {

// The request in `body`; throws the stir::RequestError it gets.
stir::vs::VerificationRequest parse_verification_body(std::string_view body);

struct VerificationOutcome {
  std::string response_body;  // {"verificationResponse":{...}}
  std::string outcome;        // "ok" or the error case ("E18"), for the access log
};

// Parses `body` and verifies it.
VerificationOutcome verify_request(std::string_view body, stir::vs::Verifier& verifier);

}  // namespace sks::server
