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
// Every failure of a route reaches HTTP by this one road: it is a
// stir::Error (a stir::RequestError for a request the service refuses,
// stir/request_error.h), and api_answer() gives its status, body, log
// outcome (the message id) and Retry-After from the one table in
// api_error.cpp. A stir::Error that is not a RequestError is POL5003 with
// Retry-After when its code is kUnavailable (the token is down, a queue is
// full), else POL5000; so is any other exception.
//
// Value types and a stateless function; no threads, no failures.
#pragma once

#include <string>

#include "stir/error.h"
#include "stir/request_error.h"

namespace sks::server {

// What a failure is answered with.
struct ApiAnswer {
  int status = 500;
  std::string message_id;  // "SVC4001": the access log's outcome too
  std::string body;        // {"requestError":{"serviceException"|"policyException":{...}}}
  int retry_after_s = 0;   // 0: no Retry-After header
};

ApiAnswer api_answer(const stir::Error& error);

}  // namespace sks::server
