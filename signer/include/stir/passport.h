// PASSporT (RFC 8225) with the SHAKEN extension (RFC 8588): canonical JSON,
// the SHAKEN claim rules and signing through a DigestSigner.
//
// Canonical form (PROTOCOL.md section 1): members sorted by code point at
// every level, no whitespace, '/' not escaped, non-ASCII as raw UTF-8, `iat`
// a JSON integer. In the typed structs an empty string or empty array means
// "absent": the member is left out of the JSON (so a PassportHeader with an
// empty ppt serialises like RFC 8225's plain header).
//
// Threads: pure functions on values; safe from any thread. sign_passport is
// as thread-safe as the DigestSigner it is given.
// Errors: stir::Error. kInvalidArgument for claims or header values that
// break a rule (the message names the claim, e.g. "dest.tn[0] is not a
// canonical TN") and for strings that are not valid UTF-8 (JSON cannot carry
// them; we refuse rather than substitute U+FFFD). Signer failures propagate.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "stir/digest_signer.h"

namespace stir {

struct PassportHeader {
  std::string alg = "ES256";
  std::string ppt = "shaken";
  std::string typ = "passport";
  std::string x5u;
};

struct ShakenClaims {
  std::string attest;                // "A" | "B" | "C"
  std::string orig_tn;               // canonical TN (or empty when orig_uri is used)
  std::string orig_uri;              // alternative to orig_tn
  std::vector<std::string> dest_tn;  // canonical TNs
  std::vector<std::string> dest_uri;
  std::int64_t iat = 0;
  std::string origid;  // RFC 4122 UUID
};

// Canonical serialisation of any JSON value. Throws Error(kInvalidArgument)
// when a string in it is not valid UTF-8.
std::string canonical_json(const nlohmann::json& value);

// Appends `text` as canonical_json writes a JSON string (printable ASCII
// as it is). Throws Error(kInvalidArgument) when it is not valid UTF-8.
void append_canonical_json_string(std::string& out, std::string_view text);

// The JSON objects the typed structs stand for (empty members left out).
nlohmann::json header_to_json(const PassportHeader& header);
nlohmann::json claims_to_json(const ShakenClaims& claims);

// canonical_json(header_to_json(header)) and canonical_json(claims_to_json(
// claims)), byte for byte, written directly (no tree).
std::string canonical_header_json(const PassportHeader& header);
std::string canonical_claims_json(const ShakenClaims& claims);

// Digits only, 1 to 15 of them (E.164), no '+', no separators.
bool is_canonical_tn(std::string_view tn) noexcept;
// 8-4-4-4-12 hexadecimal digits, either case.
bool is_uuid(std::string_view text) noexcept;

// Throws Error(kInvalidArgument, "<claim> ...") for the first broken rule:
// attest A/B/C; exactly one of orig_tn/orig_uri; orig_tn canonical; at least
// one dest entry; each dest tn canonical and each dest uri non-empty; iat > 0;
// origid a UUID.
void validate_claims(const ShakenClaims& claims);

// BASE64URL(canonical header) "." BASE64URL(canonical claims). No validation.
std::string signing_input(const PassportHeader& header, const ShakenClaims& claims);

// Validates the header (alg ES256, ppt shaken, typ passport, a usable x5u)
// and the claims, canonicalises, hashes (SHA-256) and signs through `signer`.
// Returns the compact JWS "header.payload.signature".
std::string sign_passport(const PassportHeader& header, const ShakenClaims& claims,
                          const DigestSigner& signer);

// "<jws>;info=<x5u>;alg=ES256;ppt=shaken". Throws Error(kInvalidArgument)
// when x5u is empty or holds characters that would break the header
// (whitespace, control characters, '<', '>', '"').
std::string compose_identity_header(std::string_view jws, std::string_view x5u);

}  // namespace stir
