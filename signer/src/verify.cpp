#include "stir/verify.h"

#include <algorithm>
#include <limits>
#include <set>
#include <vector>

#include "stir/base64url.h"
#include "stir/error.h"
#include "stir/identity.h"
#include "stir/json_input.h"
#include "stir/openssl.h"

namespace stir {
namespace {

using nlohmann::json;

VerifyResult fail(SipReason reason, std::string detail) {
  VerifyResult result;
  result.reason = reason;
  result.detail = std::move(detail);
  return result;
}

VerifyResult invalid(std::string detail) {
  return fail(SipReason::kInvalidIdentityHeader, std::move(detail));
}

bool string_equals(const json& object, const char* key, std::string_view expected) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() && it->get_ref<const std::string&>() == expected;
}

// Reads a string array member into `out`; false when it is anything else.
bool read_string_array(const json& value, std::vector<std::string>& out) {
  if (!value.is_array()) return false;
  for (const json& item : value) {
    if (!item.is_string()) return false;
    out.push_back(item.get<std::string>());
  }
  return true;
}

}  // namespace

// Decodes one segment and parses it as a JSON object, depth-limited and
// with repeated members refused (stir/json_input.h): nlohmann keeps the last
// of repeated members, and a signer and a verifier must not read different
// claims.
std::optional<json> decode_json_segment(std::string_view b64, std::string_view what,
                                        std::string& error) {
  const std::optional<std::string> text = base64url_decode(b64);
  if (!text) {
    error = std::string(what) + " is not valid base64url";
    return std::nullopt;
  }
  JsonInput parsed = parse_json_input(*text);
  if (parsed.problem == JsonInput::Problem::kDuplicate) {
    error = std::string(what) + " repeats member \"" + parsed.member + "\"";
    return std::nullopt;
  }
  if (parsed.problem == JsonInput::Problem::kTooDeep) {
    error = std::string(what) + " is " + parsed.why();
    return std::nullopt;
  }
  if (parsed.problem != JsonInput::Problem::kNone || !parsed.value.is_object()) {
    error = std::string(what) + " is not a JSON object";
    return std::nullopt;
  }
  return std::move(parsed.value);
}

// Type and presence checks of the claims (E14); the SHAKEN value rules come
// after the signature. Returns "" on success, else the detail.
std::string read_passport_claims(const json& payload, ShakenClaims& claims) {
  const auto attest = payload.find("attest");
  if (attest == payload.end()) return "attest claim missing";
  if (!attest->is_string()) return "attest is not a string";
  claims.attest = attest->get<std::string>();

  const auto orig = payload.find("orig");
  if (orig == payload.end()) return "orig claim missing";
  if (!orig->is_object()) return "orig is not a JSON object";
  const auto orig_tn = orig->find("tn");
  const auto orig_uri = orig->find("uri");
  if (orig_tn == orig->end() && orig_uri == orig->end()) return "orig has neither tn nor uri";
  if (orig_tn != orig->end()) {
    if (!orig_tn->is_string()) return "orig.tn is not a string";
    claims.orig_tn = orig_tn->get<std::string>();
  }
  if (orig_uri != orig->end()) {
    if (!orig_uri->is_string()) return "orig.uri is not a string";
    claims.orig_uri = orig_uri->get<std::string>();
  }

  const auto dest = payload.find("dest");
  if (dest == payload.end()) return "dest claim missing";
  if (!dest->is_object()) return "dest is not a JSON object";
  const auto dest_tn = dest->find("tn");
  const auto dest_uri = dest->find("uri");
  if (dest_tn == dest->end() && dest_uri == dest->end()) return "dest has neither tn nor uri";
  if (dest_tn != dest->end() && !read_string_array(*dest_tn, claims.dest_tn)) {
    return "dest.tn is not an array of strings";
  }
  if (dest_uri != dest->end() && !read_string_array(*dest_uri, claims.dest_uri)) {
    return "dest.uri is not an array of strings";
  }

  const auto iat = payload.find("iat");
  if (iat == payload.end()) return "iat claim missing";
  // A float or string iat is old-style and not a NumericDate integer.
  if (!iat->is_number_integer()) return "iat is not a JSON integer";
  if (iat->is_number_unsigned() &&
      iat->get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return "iat is out of range";
  }
  claims.iat = iat->get<std::int64_t>();

  const auto origid = payload.find("origid");
  if (origid == payload.end()) return "origid claim missing";
  if (!origid->is_string()) return "origid is not a string";
  claims.origid = origid->get<std::string>();
  return "";
}

namespace {

// Signed differences without overflow: iat comes from the token and may be
// any int64.
std::string freshness_problem(std::int64_t iat, const VerifyOptions& options) {
  const std::int64_t now = *options.now;
  const auto max_age =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, options.max_age_seconds));
  const auto max_future =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, options.max_future_seconds));
  if (iat < now) {
    const std::uint64_t age = static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(iat);
    if (age > max_age) {
      return "iat is " + std::to_string(age) + " s older than the verifier clock (limit " +
             std::to_string(max_age) + " s)";
    }
  } else {
    const std::uint64_t ahead = static_cast<std::uint64_t>(iat) - static_cast<std::uint64_t>(now);
    if (ahead > max_future) {
      return "iat is " + std::to_string(ahead) + " s ahead of the verifier clock (limit " +
             std::to_string(max_future) + " s)";
    }
  }
  return "";
}

VerifyResult verify_token(const IdentityHeader& token, const std::optional<std::string>& info,
                          bool check_info, EVP_PKEY* public_key, const VerifyOptions& options) {
  std::string error;
  std::optional<json> header = decode_json_segment(token.header_b64, "PASSporT header", error);
  if (!header) return invalid(error);
  for (const char* member : {"alg", "ppt", "typ", "x5u"}) {
    if (!header->contains(member)) {
      return fail(SipReason::kBadIdentityInfo, std::string("PASSporT header lacks ") + member);
    }
  }
  const json& x5u = *header->find("x5u");
  if (!x5u.is_string()) return fail(SipReason::kBadIdentityInfo, "x5u is not a string");
  if (check_info && (!info || x5u.get_ref<const std::string&>() != *info)) {
    return fail(SipReason::kBadIdentityInfo, "x5u differs from the info parameter");
  }
  if (!string_equals(*header, "typ", "passport")) {
    return fail(SipReason::kUnsupportedCredential, "typ is not passport");
  }
  if (!string_equals(*header, "alg", "ES256")) {
    return fail(SipReason::kUnsupportedCredential, "alg is not ES256");
  }
  if (!string_equals(*header, "ppt", "shaken")) return invalid("header ppt is not shaken");

  std::optional<json> payload = decode_json_segment(token.payload_b64, "PASSporT payload", error);
  if (!payload) return invalid(error);
  ShakenClaims claims;
  if (std::string problem = read_passport_claims(*payload, claims); !problem.empty()) {
    return invalid(problem);
  }

  if (!is_p256_key(public_key)) {
    return fail(SipReason::kUnsupportedCredential, "verification key is not EC P-256");
  }
  const std::optional<std::string> signature = base64url_decode(token.signature_b64);
  if (!signature) return invalid("signature is not valid base64url");
  if (signature->size() != std::tuple_size_v<Es256Signature>) {
    return invalid("signature is " + std::to_string(signature->size()) +
                   " bytes, ES256 needs 64 (raw r||s, not DER)");
  }
  Es256Signature raw{};
  std::copy(signature->begin(), signature->end(), raw.begin());
  // The received bytes, never a re-serialisation: real tokens are not canonical.
  const std::string signed_part = token.header_b64 + "." + token.payload_b64;
  if (!verify_es256_digest(public_key, sha256(signed_part), raw)) {
    return invalid("signature does not verify");
  }

  VerifyResult result;
  ParsedPassport& passport = result.passport.emplace();
  passport.header.alg = "ES256";
  passport.header.ppt = "shaken";
  passport.header.typ = "passport";
  passport.header.x5u = x5u.get<std::string>();
  passport.claims = std::move(claims);
  passport.header_json = std::move(*header);
  passport.payload_json = std::move(*payload);

  if (options.require_shaken_claims) {
    try {
      validate_claims(passport.claims);
    } catch (const Error& e) {
      result.reason = SipReason::kInvalidIdentityHeader;
      result.detail = e.what();
      return result;
    }
  }
  if (options.now) {
    if (std::string problem = freshness_problem(passport.claims.iat, options); !problem.empty()) {
      result.reason = SipReason::kStaleDate;
      result.detail = std::move(problem);
      return result;
    }
  }
  result.valid = true;
  return result;
}

}  // namespace

std::string_view sip_reason_text(SipReason reason) noexcept {
  switch (reason) {
    case SipReason::kNone:
      return "";
    case SipReason::kStaleDate:
      return "Stale Date";
    case SipReason::kBadIdentityInfo:
      return "Bad Identity Info";
    case SipReason::kUnsupportedCredential:
      return "Unsupported Credential";
    case SipReason::kInvalidIdentityHeader:
      return "Invalid Identity Header";
  }
  return "";
}

VerifyResult verify_identity(std::string_view identity_value, EVP_PKEY* public_key,
                             const VerifyOptions& options) {
  IdentityParse parsed = parse_identity_header(identity_value);
  if (!parsed.header) {
    return fail(parsed.info_error ? SipReason::kBadIdentityInfo : SipReason::kInvalidIdentityHeader,
                "Identity header: " + parsed.error);
  }
  const IdentityHeader& identity = *parsed.header;
  if (identity.compact_form) return invalid("compact form is not allowed in SHAKEN");
  if (identity.ppt && *identity.ppt != "shaken") return invalid("ppt parameter is not shaken");
  if (identity.alg && *identity.alg != "ES256") {
    return fail(SipReason::kUnsupportedCredential, "alg parameter is not ES256");
  }
  if (!identity.info) return fail(SipReason::kBadIdentityInfo, "info parameter missing");
  try {
    return verify_token(identity, identity.info, /*check_info=*/true, public_key, options);
  } catch (const Error& e) {
    // Only an OpenSSL failure inside SHA-256 can get here; not the token's fault
    // but still no valid token.
    return invalid(std::string("verification failed: ") + e.what());
  }
}

VerifyResult verify_passport(std::string_view jws, EVP_PKEY* public_key,
                             const VerifyOptions& options) {
  if (jws.size() > kMaxIdentityHeaderSize) return invalid("token too long");
  IdentityHeader token;
  std::string error;
  if (!split_compact_jws(jws, token, error)) return invalid(error);
  if (token.compact_form) return invalid("compact form is not allowed in SHAKEN");
  try {
    return verify_token(token, std::nullopt, /*check_info=*/false, public_key, options);
  } catch (const Error& e) {
    return invalid(std::string("verification failed: ") + e.what());
  }
}

}  // namespace stir
