// The body of POST /stir/v1/verification (PROTOCOL.md section 3), read into
// a VerificationRequest, or a stir::RequestError saying why it cannot be
// one. Which HTTP answer that gets (SVC4001, SVC4005) is the service's, in
// its one error table (sks/include/sks/server/api_error.h).
//
//   {"verificationRequest":{"from":{"tn":"..."},"to":{"tn":["..."]},
//    "time":1632413071,"identity":"<Identity header value>"}}
//
// Unknown members are ignored. identity, from.tn and to.tn are mandatory
// (missing or empty: kMissingParameter naming the parameter); a wrong
// type is kInvalidValue. to.tn may be an array of strings or, tolerated, one string.
// time is optional; when present it must be an integer (kInvalidValue).
//
// Threads: pure functions. Errors: stir::RequestError (kMissingParameter,
// kInvalidValue), and std::bad_alloc.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "stir/request_error.h"
#include "stir/verifier/verifier.h"

namespace stir::vs {

VerificationRequest parse_verification_request(const nlohmann::json& body);

}  // namespace stir::vs
