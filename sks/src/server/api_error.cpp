#include "sks/server/api_error.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "sks/pkcs11/circuit_breaker.h"

namespace sks::server {

namespace {

using Problem = stir::RequestError::Problem;

// One row of the table: the ATIS answer of a failure.
struct Row {
  const char* message_id;
  int status;
  const char* text;  // with %1, %2 placeholders
};

constexpr Row kInternal{"POL5000", 500, "Internal server error, please try again later"};
constexpr Row kUnavailable{"POL5003", 503,
                           "Service temporarily unavailable, please try again later"};

// The table: every refusal, its message id, status and text
// (PROTOCOL.md section 3).
Row row_of(Problem problem) {
  switch (problem) {
    case Problem::kMissingBody:
      return {"SVC4000", 400, "Missing request body"};
    case Problem::kMissingParameter:
      return {"SVC4001", 400, "Missing mandatory parameter '%1'"};
    case Problem::kNotAcceptable:
      return {"SVC4002", 406, "Requested response body type '%1' is not supported"};
    case Problem::kNotFound:
      return {"SVC4003", 404, "Resource '%1' not found"};
    case Problem::kUnsupportedMediaType:
      return {"SVC4004", 415, "Unsupported request body type, expected '%1'"};
    case Problem::kInvalidValue:
      return {"SVC4005", 400, "Invalid '%1' parameter value: %2"};
    case Problem::kParseFailure:
      return {"SVC4006", 400, "Failed to parse message body: %1"};
    case Problem::kBodyTooLarge:
      return {"SVC4006", 413, "Failed to parse message body: %1"};
    case Problem::kHeaderTooLarge:
      return {"SVC4006", 431, "Failed to parse message body: %1"};
    case Problem::kMissingContentLength:
      return {"SVC4007", 411, "Missing Content-Length header"};
    case Problem::kForbidden:
      return {"POL4003", 403, "Not permitted: %1"};
    case Problem::kTooManyRequests:
      return {"POL4029", 429, "Too many requests: %1"};
    case Problem::kMethodNotAllowed:
      return {"POL4050", 405, "Method not allowed: '%1'"};
    case Problem::kUnavailable:
      return kUnavailable;
  }
  return kInternal;
}

// The values of the row's placeholders.
std::vector<std::string> variables_of(const stir::RequestError& e) {
  switch (e.problem()) {
    case Problem::kMissingParameter:
    case Problem::kNotAcceptable:
    case Problem::kNotFound:
    case Problem::kUnsupportedMediaType:
    case Problem::kMethodNotAllowed:
      return {e.subject()};
    case Problem::kInvalidValue:
      return {e.subject(), e.why()};
    case Problem::kParseFailure:
    case Problem::kBodyTooLarge:
    case Problem::kHeaderTooLarge:
    case Problem::kForbidden:
    case Problem::kTooManyRequests:
      return {e.why()};
    case Problem::kMissingBody:
    case Problem::kMissingContentLength:
    case Problem::kUnavailable:
      break;
  }
  return {};
}

std::string body_of(const Row& row, const std::vector<std::string>& variables) {
  nlohmann::json exception = {{"messageId", row.message_id}, {"text", row.text}};
  if (!variables.empty()) exception["variables"] = variables;
  const char* kind = row.message_id[0] == 'P' ? "policyException" : "serviceException";
  // Variables echo request bytes (Accept, path) that need not be UTF-8: they
  // become U+FFFD rather than a throw on the error path itself.
  return nlohmann::json{{"requestError", {{kind, exception}}}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

ApiAnswer api_answer(const stir::Error& error) {
  if (const auto* refused = dynamic_cast<const stir::RequestError*>(&error)) {
    const Row row = row_of(refused->problem());
    return {row.status, row.message_id, body_of(row, variables_of(*refused)),
            refused->retry_after_s()};
  }
  if (error.code() == stir::ErrorCode::kUnavailable) {
    return {kUnavailable.status, kUnavailable.message_id, body_of(kUnavailable, {}),
            p11::CircuitBreaker::kRetryAfterSeconds};
  }
  return {kInternal.status, kInternal.message_id, body_of(kInternal, {}), 0};
}

}  // namespace sks::server
