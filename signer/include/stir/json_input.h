// JSON from a peer, parsed only as far as it is harmless: the tree is built
// from nlohmann's parser events by our own builder, which stops at the
// first value nested deeper than a limit or member repeated in one object
// (no recursion, no tree deeper than the limit). Deep nesting would
// otherwise make every recursive walk of the tree (dump, comparison, copy)
// a stack overflow; a repeated member is read as its last value by
// nlohmann and as its first by other parsers, so a signer and a verifier
// could read different claims.
//
// Threads: free functions, no shared state. Errors: none thrown (except
// std::bad_alloc); a refusal is a JsonInput with `problem` set.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace stir {

// The deepest nesting any JSON body from a peer may have: objects and
// arrays counted together, the outermost one is depth 1. The deepest
// legitimate body (a signingRequest's dest.tn) is depth 4.
inline constexpr std::size_t kMaxJsonDepth = 32;

// Whether a peer's JSON keeps these rules, and if not, the first it broke.
// Also what a reader of its own over the parser's events reports
// (sks's signing request), so every reader refuses with the same words.
struct JsonProblem {
  enum class Problem { kNone, kSyntax, kTooDeep, kDuplicate };
  Problem problem = Problem::kNone;
  std::string member;                     // kDuplicate: the repeated member's name
  std::size_t max_depth = kMaxJsonDepth;  // the limit it was parsed with
  // A short English reason for problem (empty for kNone).
  std::string why() const;
};

struct JsonInput : JsonProblem {
  nlohmann::json value;  // discarded unless problem is kNone
};

// Parses `text` when it is valid JSON, at most `max_depth` deep and without
// a member repeated within one object.
JsonInput parse_json_input(std::string_view text, std::size_t max_depth = kMaxJsonDepth);

}  // namespace stir
