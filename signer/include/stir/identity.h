// Parsing of a SIP Identity header value (RFC 8224 section 4.1):
//   <header>.<payload>.<sig>;info=<https://...>;alg=ES256;ppt=shaken
//
// Tolerant where peers differ (parameter order, case of parameter names,
// quoted values, extra generic parameters, whitespace around ';' and '='),
// strict where a crash or ambiguity could follow: the token must be exactly
// three '.'-separated base64url segments with a non-empty signature, `info`
// must be <...>, a parameter may not repeat, the value is at most 16 KiB.
// Only the value is parsed, not an "Identity:" header name.
//
// Threads: a pure function; safe from any thread.
// Errors: never throws on any input except std::bad_alloc; a failure is an
// IdentityParse without header and with a readable error text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stir {

// Larger values are refused unread: real ones are well under 1 KiB.
inline constexpr std::size_t kMaxIdentityHeaderSize = 16 * 1024;

struct IdentityHeader {
  std::string jws;  // as received
  std::string header_b64, payload_b64, signature_b64;
  bool compact_form = false;        // "..sig" detached form (header/payload empty)
  std::optional<std::string> info;  // without the angle brackets
  std::optional<std::string> alg;   // unquoted
  std::optional<std::string> ppt;   // unquoted
  // Any other parameter, name lower-cased, value unquoted ("" when no '=').
  std::vector<std::pair<std::string, std::string>> other_params;
};

struct IdentityParse {
  std::optional<IdentityHeader> header;
  std::string error;
  // The failure is a malformed or repeated `info` parameter, which SIP
  // answers with 436 Bad Identity Info rather than 438.
  bool info_error = false;
};

IdentityParse parse_identity_header(std::string_view value);

// Splits a compact JWS into its three segments with the same token rules as
// the Identity header (three base64url segments, non-empty signature).
// Returns false and sets `error` on failure. Never throws except bad_alloc.
bool split_compact_jws(std::string_view jws, IdentityHeader& out, std::string& error);

}  // namespace stir
