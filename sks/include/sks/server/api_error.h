// ATIS-1000082 error responses: the one place where a failure of the HTTP
// API becomes an HTTP status and a requestError body (PROTOCOL.md section 3).
//
//   SVC4000 400 missing request body
//   SVC4001 400 missing mandatory parameter '%1'
//   SVC4002 406 requested response body type '%1' not supported
//   SVC4003 404 resource not found
//   SVC4004 415 unsupported request body type, expected '%1'
//   SVC4005 400 invalid '%1' parameter value: %2
//   SVC4006 400 failed to parse message body: %1
//   SVC4007 411 missing Content-Length
//   POL4003 403 client not permitted (ours: mutual TLS identity or attestation
//               level outside the client's signing profile)
//   POL4029 429 too many requests (ours: the client is over its rate limit;
//               sent with Retry-After)
//   POL4050 405 method not allowed
//   POL5000 500 internal error, try again later
//   POL5003 503 service unavailable, try again later (ours: token down)
//
// Value type; no threads, no failures.
#pragma once

#include <string>
#include <vector>

namespace sks::server {

struct ApiError {
  std::string message_id;              // "SVC4001"
  int http_status = 500;               // from the table above
  std::string text;                    // with %1, %2 placeholders
  std::vector<std::string> variables;  // values for the placeholders

  bool is_policy() const { return message_id.rfind("POL", 0) == 0; }
  // {"requestError":{"serviceException"|"policyException":{...}}}
  std::string body() const;

  static ApiError missing_body();
  static ApiError missing_parameter(const std::string& name);
  static ApiError not_acceptable(const std::string& accept);
  static ApiError not_found(const std::string& path);
  static ApiError unsupported_media_type();
  static ApiError invalid_value(const std::string& name, const std::string& why);
  static ApiError parse_failure(const std::string& why);
  static ApiError missing_content_length();
  static ApiError forbidden(const std::string& why);
  static ApiError too_many_requests(const std::string& why);
  static ApiError method_not_allowed(const std::string& method);
  static ApiError internal();
  static ApiError unavailable();
};

}  // namespace sks::server
