// The HTTP rules of the certificate repository as pure functions, without
// sockets or files, so each rule is tested on its own: which request target
// names which chain, the ETag, HTTP dates and conditional requests.
//
// Request targets are judged on their raw bytes, never on a decoded or
// normalised path: a target either is exactly `path_prefix + name` in a
// small alphabet or it names nothing. Nothing a client writes can reach a
// file other than a valid name directly inside the repository folder.
//
// Threads: no state; safe to call concurrently. Errors: none thrown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tn_cr::http_rules {

// Longer request targets are refused before anything else is looked at.
inline constexpr std::size_t kMaxTargetLength = 256;

enum class TargetVerdict {
  kName,        // the target names a chain: `TargetResult::name`
  kBadRequest,  // 400: encoded bytes, dot segments, "//", "\", controls, non-ASCII, too long
  kNotFound,    // 404: well-formed, but not `path_prefix` followed by a valid name
};

struct TargetResult {
  TargetVerdict verdict = TargetVerdict::kNotFound;
  std::string name;  // set for kName only
};

// Maps the raw request target to a chain name. `path_prefix` starts and ends
// with '/' (see is_valid_path_prefix). Allowed bytes are [A-Za-z0-9._/-];
// any other byte ('%', '?', '#', '\', NUL, space, non-ASCII...), "..", "//"
// or a target not starting with '/' is kBadRequest.
TargetResult resolve_target(std::string_view target, std::string_view path_prefix);

// "/" or "/segment/.../": starts and ends with '/', at most 128 bytes of
// [A-Za-z0-9_-/.], no empty, "." or ".." segment.
bool is_valid_path_prefix(std::string_view prefix) noexcept;

// A strong entity tag: the quoted hex SHA-256 of the content.
std::string make_etag(std::string_view content);

// IMF-fixdate (RFC 9110 section 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::int64_t unix_seconds);

// Parses an IMF-fixdate; nullopt for anything else (obsolete formats
// included), which makes a conditional request unconditional.
std::optional<std::int64_t> parse_http_date(std::string_view text);

// If-None-Match (RFC 9110 section 13.1.2): "*" or a comma-separated list of
// entity tags, compared weakly (a W/ prefix is ignored) with `etag`.
bool if_none_match_matches(std::string_view header, std::string_view etag);

// Whether a GET or HEAD gets 304 Not Modified. If-None-Match wins when
// present; If-Modified-Since counts only without it.
bool not_modified(std::string_view if_none_match, std::string_view if_modified_since,
                  std::string_view etag, std::int64_t last_modified);

}  // namespace tn_cr::http_rules
