// A request a service refuses: a stir::Error that also says which rule the
// request broke and about what (a parameter, a header, a path), so that the
// service answers it with the right protocol error. Thrown by whatever
// reads a request (sks's signing and verification routes, the verifier's
// request parser); the one table that turns it, and every other
// stir::Error, into an HTTP status, an ATIS-1000082 error body and a log
// outcome is sks/src/server/api_error.cpp.
//
// In stir_base, not the PASSporT library: it is the error road of every
// service that reads requests (sks, the verifier); none needs PASSporT for it.
//
// Value type; header-only; no threads. what() is for logs: "missing
// mandatory parameter 'attest'".
#pragma once

#include <string>
#include <utility>

#include "stir/error.h"

namespace stir {

class RequestError : public Error {
 public:
  enum class Problem {
    kMissingBody,           // no body
    kMissingParameter,      // subject: the parameter ("orig", "to.tn")
    kNotAcceptable,         // subject: the Accept value
    kNotFound,              // subject: the path
    kUnsupportedMediaType,  // subject: the media type expected
    kInvalidValue,          // subject: the parameter; why
    kParseFailure,          // why
    kBodyTooLarge,          // why
    kHeaderTooLarge,        // why
    kMissingContentLength,  //
    kForbidden,             // why
    kTooManyRequests,       // why; retry_after_s
    kMethodNotAllowed,      // subject: the method
    kUnavailable,           // the resource cannot be served now (no active key)
  };

  RequestError(Problem problem, std::string subject, std::string why, int retry_after_s = 0)
      : Error(code_of(problem), message_of(problem, subject, why)),
        problem_(problem),
        subject_(std::move(subject)),
        why_(std::move(why)),
        retry_after_s_(retry_after_s) {}

  // The named refusals, each with what its table row needs.
  static RequestError missing_body() { return {Problem::kMissingBody, "", "missing request body"}; }
  static RequestError missing_parameter(std::string name) {
    return {Problem::kMissingParameter, std::move(name), ""};
  }
  static RequestError not_acceptable(std::string accept) {
    return {Problem::kNotAcceptable, std::move(accept), "response type not acceptable"};
  }
  static RequestError not_found(std::string path) {
    return {Problem::kNotFound, std::move(path), "not found"};
  }
  static RequestError unsupported_media_type(std::string expected) {
    return {Problem::kUnsupportedMediaType, std::move(expected), "expected media type"};
  }
  static RequestError invalid_value(std::string name, std::string why) {
    return {Problem::kInvalidValue, std::move(name), std::move(why)};
  }
  static RequestError parse_failure(std::string why) {
    return {Problem::kParseFailure, "", std::move(why)};
  }
  static RequestError missing_content_length() {
    return {Problem::kMissingContentLength, "", "missing Content-Length"};
  }
  static RequestError forbidden(std::string why) {
    return {Problem::kForbidden, "", std::move(why)};
  }
  static RequestError too_many_requests(std::string why, int retry_after_s) {
    return {Problem::kTooManyRequests, "", std::move(why), retry_after_s};
  }
  static RequestError method_not_allowed(std::string method) {
    return {Problem::kMethodNotAllowed, std::move(method), "method not allowed"};
  }

  Problem problem() const noexcept { return problem_; }
  const std::string& subject() const noexcept { return subject_; }
  const std::string& why() const noexcept { return why_; }
  int retry_after_s() const noexcept { return retry_after_s_; }  // 0: no Retry-After

 private:
  static ErrorCode code_of(Problem problem) {
    switch (problem) {
      case Problem::kNotFound:
        return ErrorCode::kNotFound;
      case Problem::kForbidden:
        return ErrorCode::kPermission;
      case Problem::kTooManyRequests:
      case Problem::kUnavailable:
        return ErrorCode::kUnavailable;
      case Problem::kParseFailure:
      case Problem::kBodyTooLarge:
      case Problem::kHeaderTooLarge:
        return ErrorCode::kMalformed;
      default:
        return ErrorCode::kInvalidArgument;
    }
  }
  static std::string message_of(Problem problem, const std::string& subject,
                                const std::string& why) {
    switch (problem) {
      case Problem::kMissingParameter:
        return "missing mandatory parameter '" + subject + "'";
      case Problem::kInvalidValue:
        return "invalid '" + subject + "': " + why;
      default:
        if (subject.empty()) return why;
        return why.empty() ? subject : subject + ": " + why;
    }
  }

  Problem problem_;
  std::string subject_;
  std::string why_;
  int retry_after_s_;
};

}  // namespace stir
