#include "sks/server/api_error.h"

#include <nlohmann/json.hpp>

namespace sks::server {

std::string ApiError::body() const {
  nlohmann::json exception = {{"messageId", message_id}, {"text", text}};
  if (!variables.empty()) exception["variables"] = variables;
  const char* kind = is_policy() ? "policyException" : "serviceException";
  // Variables echo request bytes (Accept, path) that need not be UTF-8: they
  // become U+FFFD, since a throw here would escape httplib's error handler.
  return nlohmann::json{{"requestError", {{kind, exception}}}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiError ApiError::missing_body() { return {"SVC4000", 400, "Missing request body", {}}; }

ApiError ApiError::missing_parameter(const std::string& name) {
  return {"SVC4001", 400, "Missing mandatory parameter '%1'", {name}};
}

ApiError ApiError::not_acceptable(const std::string& accept) {
  return {"SVC4002", 406, "Requested response body type '%1' is not supported", {accept}};
}

ApiError ApiError::not_found(const std::string& path) {
  return {"SVC4003", 404, "Resource '%1' not found", {path}};
}

ApiError ApiError::unsupported_media_type() {
  return {"SVC4004", 415, "Unsupported request body type, expected '%1'", {"application/json"}};
}

ApiError ApiError::invalid_value(const std::string& name, const std::string& why) {
  return {"SVC4005", 400, "Invalid '%1' parameter value: %2", {name, why}};
}

ApiError ApiError::parse_failure(const std::string& why) {
  return {"SVC4006", 400, "Failed to parse message body: %1", {why}};
}

ApiError ApiError::missing_content_length() {
  return {"SVC4007", 411, "Missing Content-Length header", {}};
}

ApiError ApiError::forbidden(const std::string& why) {
  return {"POL4003", 403, "Not permitted: %1", {why}};
}

ApiError ApiError::too_many_requests(const std::string& why) {
  return {"POL4029", 429, "Too many requests: %1", {why}};
}

ApiError ApiError::method_not_allowed(const std::string& method) {
  return {"POL4050", 405, "Method not allowed: '%1'", {method}};
}

ApiError ApiError::internal() {
  return {"POL5000", 500, "Internal server error, please try again later", {}};
}

ApiError ApiError::unavailable() {
  return {"POL5003", 503, "Service temporarily unavailable, please try again later", {}};
}

}  // namespace sks::server
