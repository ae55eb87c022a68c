// Verification of a PASSporT, alone or inside a SIP Identity header value,
// against a public key the caller has already chosen (fetching and trusting
// the x5u certificate is not done here).
//
// The result says which SIP response a verifier owes its peer (RFC 8224
// section 6.2.2, ATIS-1000074): 403, 436, 437 or 438, with a detail text.
// Checks run in a fixed order and the first failure is returned; see
// verify_identity below.
//
// Threads: pure functions; safe from any thread. The EVP_PKEY is only read.
// Errors: never throws on any input except std::bad_alloc; hostile tokens,
// unknown keys and OpenSSL failures all become a VerifyResult.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "stir/passport.h"

namespace stir {

enum class SipReason : int {
  kNone = 0,
  kStaleDate = 403,
  kBadIdentityInfo = 436,
  kUnsupportedCredential = 437,
  kInvalidIdentityHeader = 438,
};

// "Stale Date", "Bad Identity Info", "Unsupported Credential",
// "Invalid Identity Header"; "" for kNone.
std::string_view sip_reason_text(SipReason reason) noexcept;

struct VerifyOptions {
  std::optional<std::int64_t> now;    // verifier clock; nullopt = no freshness check
  std::int64_t max_age_seconds = 60;  // iat older than now - max_age -> 403
  std::int64_t max_future_seconds =
      60;                             // iat newer than now + this -> 403 (future iat is stale too)
  bool require_shaken_claims = true;  // SHAKEN claim rules (validate_claims) -> 438 on failure
};

// The decoded token. `header`/`claims` are the typed view (a dest.uri or
// orig.uri lands in the *_uri members); the JSON objects are as received.
struct ParsedPassport {
  PassportHeader header;
  ShakenClaims claims;
  nlohmann::json header_json, payload_json;
};

struct VerifyResult {
  bool valid = false;
  SipReason reason = SipReason::kNone;
  std::string detail;  // why, e.g. "signature does not verify"
  // Present once the signature has verified, so also for a claim-rule or
  // freshness failure; never holds unauthenticated data.
  std::optional<ParsedPassport> passport;
};

// Parses the Identity header value and returns the first failure of:
//  parse error -> 438 (a malformed or repeated info -> 436); compact form
//  -> 438; ppt parameter present and != shaken -> 438; alg parameter present
//  and != ES256 -> 437; info missing -> 436; header not a JSON object ->
//  438; header lacks alg/ppt/typ/x5u -> 436; x5u != info -> 436; typ !=
//  passport -> 437; alg != ES256 -> 437; header ppt != shaken -> 438;
//  payload not a JSON object, a member repeated, or a claim missing or of
//  the wrong type (attest string, orig object with a tn or uri string, dest
//  object with tn/uri arrays of strings, iat integer, origid string) ->
//  438; signature (SHA-256 over the received "h.p" bytes, never
//  re-serialised; exactly 64 bytes r||s) -> 438; SHAKEN claim rules when
//  require_shaken_claims -> 438; freshness when `now` is set -> 403.
// A `public_key` that is null or not EC P-256 gives 437.
VerifyResult verify_identity(std::string_view identity_value, EVP_PKEY* public_key,
                             const VerifyOptions& options = {});

// Same for a bare compact JWS "h.p.s": no Identity parameters, so the
// parameter and info checks are skipped.
// The parsing rules verify_passport applies, for other verifiers (the STI-VS
// runs its checks in its own order) so the rules live in one place:
// one base64url segment as a JSON object, refusing repeated members at any
// level (nlohmann keeps the last, and a signer and a verifier must not read
// different claims); nullopt with `error` ("<what> is not a JSON object").
std::optional<nlohmann::json> decode_json_segment(std::string_view b64, std::string_view what,
                                                  std::string& error);
// Presence and JSON types of the SHAKEN claims (the E14 rules); "" or the
// problem. The value rules (validate_claims) are separate.
std::string read_passport_claims(const nlohmann::json& payload, ShakenClaims& claims);

VerifyResult verify_passport(std::string_view jws, EVP_PKEY* public_key,
                             const VerifyOptions& options = {});

}  // namespace stir
