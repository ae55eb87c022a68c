// The body of POST /stir/v1/verification (PROTOCOL.md section 3), read into
// a VerificationRequest, and the ATIS-1000082 service exception for a body
// that cannot be one.
//
//   {"verificationRequest":{"from":{"tn":"..."},"to":{"tn":["..."]},
//    "time":1632413071,"identity":"<Identity header value>"}}
//
// Unknown members are ignored. identity, from.tn and to.tn are mandatory
// (missing or empty: SVC4001 naming the parameter); a wrong type is SVC4005.
// to.tn may be an array of strings or, tolerated, one string. time is
// optional; when present it must be an integer (SVC4005).
//
// Threads: pure functions. Errors: never throw except std::bad_alloc.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "stir/verifier/verifier.h"

namespace stir::vs {

struct ServiceException {
  int http_status = 400;
  std::string message_id;  // "SVC4001"
  std::string text;        // "Missing mandatory parameter '%1'"
  std::vector<std::string> variables;
};

// {"requestError":{"serviceException":{"messageId":...,"text":...,"variables":[...]}}}
nlohmann::json to_request_error(const ServiceException& error);

struct ParsedVerificationRequest {
  std::optional<VerificationRequest> request;  // set on success
  std::optional<ServiceException> error;       // set on failure
};

ParsedVerificationRequest parse_verification_request(const nlohmann::json& body);

}  // namespace stir::vs
