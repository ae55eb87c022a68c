// POST /stir/v1/signing (ATIS-1000082), apart from HTTP itself: the header
// rules every JSON route shares, and the request-to-Identity-header logic.
//
// Policies (PROTOCOL.md section 3 leaves them to the service):
// - The signing profile follows from the client's certificate identity (CN
//   or a DNS subjectAltName); with none listed, server.default_profile.
//   There is no other selector: a client cannot pick another profile.
// - `iat` absent means now; more than max_iat_skew_s (60 s) from now is
//   SVC4005.
// - `origid` absent means the profile's configured origid; a profile without
//   one makes origid mandatory (SVC4001).
// - Unknown members are ignored (Oracle SBC sends "ppt" in signingRequest).
// - `dest` takes {"tn":[...]} with canonical TNs; `orig` {"tn":"..."}.
//
// Threads: stateless functions; safe from any thread. Errors: request
// problems come back as ApiError; a token failure throws stir::Error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sks/server/api_error.h"
#include "sks/server/key_ring.h"

namespace sks::server {

// Whether an Accept header value allows an application/json response.
bool accepts_json(std::string_view accept);

// Content-Length present, Content-Type application/json, Accept allowing
// JSON. nullptr means the header is absent.
std::optional<ApiError> check_json_headers(bool has_content_length, const std::string* content_type,
                                           const std::string* accept);

struct SigningResult {
  std::optional<ApiError> error;
  std::string response_body;         // {"signingResponse":{"identity":"..."}} on success
  const Profile* profile = nullptr;  // the profile used, when one was found
};

// Parses and checks the body, applies the profile's policy and signs with the
// profile's key. `now` is the server clock (seconds since 1970).
SigningResult sign_request(std::string_view body, const std::vector<std::string>& client_names,
                           const KeyRing& ring, std::int64_t now, std::int64_t max_iat_skew_s);

}  // namespace sks::server
