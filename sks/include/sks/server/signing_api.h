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
// - `dest` takes {"tn":[...]} with canonical TNs, at most kMaxDestTns of
//   them; `orig` {"tn":"..."}.
// - The body is refused when it nests deeper than stir::kMaxJsonDepth
//   (SVC4006) or repeats a member within one object (SVC4005 naming the
//   member), anywhere in it and before any rule above: the verifier
//   refuses repeated members too.
//
// Threads: stateless functions; safe from any thread. Errors: a request the
// service refuses throws stir::RequestError (answered by the one table,
// api_error.h); a token failure throws stir::Error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sks/server/key_ring.h"
#include "stir/passport.h"
#include "stir/request_error.h"

namespace sks::server {

// The most destination TNs one request may carry (SVC4005 'dest' beyond).
// It keeps every Identity header under 8 KiB, whatever the profile's x5u:
// each 15-digit TN adds 18 bytes to the payload ("...", comma), 24 after
// base64url; with 100 TNs, a 2048-byte x5u (the verifiers' URL limit, in
// the JWS header and again in info=) and the fixed members the header is
// at most 7,541 bytes, half of the 16 KiB our verifier and common SIP
// stacks accept (README "Security").
inline constexpr std::size_t kMaxDestTns = 100;

// Whether an Accept header value allows an application/json response.
bool accepts_json(std::string_view accept);

// Content-Length present, Content-Type application/json, Accept allowing
// JSON, else throws stir::RequestError. nullptr means the header is absent.
void check_json_headers(bool has_content_length, const std::string* content_type,
                        const std::string* accept);

struct SigningResult {
  std::string response_body;         // {"signingResponse":{"identity":"..."}}
  const Profile* profile = nullptr;  // the profile used
  // The claims as signed and the JWS signing input
  // (BASE64URL(header) "." BASE64URL(payload)), for the audit record.
  stir::ShakenClaims claims;
  std::string signing_input;
};

// The claims of a signing request body (non-empty), with the profile's
// origid and `now` where the body leaves them out: the rules above, each
// refusal a stir::RequestError. Read from the parser's events, without a
// tree of the body.
stir::ShakenClaims read_signing_request(std::string_view body, const Profile& profile,
                                        std::int64_t now, std::int64_t max_iat_skew_s);

// Parses and checks the body, applies the profile's policy and signs with the
// profile's key. `now` is the server clock (seconds since 1970).
SigningResult sign_request(std::string_view body, const std::vector<std::string>& client_names,
                           const KeyRing& ring, std::int64_t now, std::int64_t max_iat_skew_s);

}  // namespace sks::server
