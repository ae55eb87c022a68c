#include "stir/passport.h"

#include <algorithm>

#include "stir/base64url.h"
#include "stir/error.h"
#include "stir/openssl.h"

namespace stir {
namespace {

constexpr std::size_t kMaxTnDigits = 15;  // E.164

bool is_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void require(bool ok, const std::string& message) {
  if (!ok) throw Error(ErrorCode::kInvalidArgument, message);
}

void validate_x5u(std::string_view x5u) {
  require(!x5u.empty(), "x5u must be set");
  for (const char c : x5u) {
    const auto u = static_cast<unsigned char>(c);
    require(u > 0x20 && u != 0x7F && c != '<' && c != '>' && c != '"',
            "x5u must not contain whitespace, control characters, '<', '>' or '\"'");
  }
}

}  // namespace

std::string canonical_json(const nlohmann::json& value) {
  // nlohmann::json keeps objects in a std::map<std::string, ...>: byte order,
  // which for UTF-8 is code-point order. dump() with no indent emits no
  // whitespace and never escapes '/'; ensure_ascii=false keeps UTF-8 as is.
  try {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::type_error& e) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("JSON string is not valid UTF-8 (") + e.what() + ")");
  }
}

nlohmann::json header_to_json(const PassportHeader& header) {
  nlohmann::json j = nlohmann::json::object();
  if (!header.alg.empty()) j["alg"] = header.alg;
  if (!header.ppt.empty()) j["ppt"] = header.ppt;
  if (!header.typ.empty()) j["typ"] = header.typ;
  if (!header.x5u.empty()) j["x5u"] = header.x5u;
  return j;
}

nlohmann::json claims_to_json(const ShakenClaims& claims) {
  nlohmann::json j = nlohmann::json::object();
  if (!claims.attest.empty()) j["attest"] = claims.attest;
  nlohmann::json dest = nlohmann::json::object();
  if (!claims.dest_tn.empty()) dest["tn"] = claims.dest_tn;
  if (!claims.dest_uri.empty()) dest["uri"] = claims.dest_uri;
  if (!dest.empty()) j["dest"] = std::move(dest);
  j["iat"] = claims.iat;
  nlohmann::json orig = nlohmann::json::object();
  if (!claims.orig_tn.empty()) orig["tn"] = claims.orig_tn;
  if (!claims.orig_uri.empty()) orig["uri"] = claims.orig_uri;
  if (!orig.empty()) j["orig"] = std::move(orig);
  if (!claims.origid.empty()) j["origid"] = claims.origid;
  return j;
}

std::string canonical_header_json(const PassportHeader& header) {
  return canonical_json(header_to_json(header));
}

std::string canonical_claims_json(const ShakenClaims& claims) {
  return canonical_json(claims_to_json(claims));
}

bool is_canonical_tn(std::string_view tn) noexcept {
  return !tn.empty() && tn.size() <= kMaxTnDigits &&
         std::all_of(tn.begin(), tn.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_uuid(std::string_view text) noexcept {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position ? text[i] != '-' : !is_hex(text[i])) return false;
  }
  return true;
}

void validate_claims(const ShakenClaims& claims) {
  require(claims.attest == "A" || claims.attest == "B" || claims.attest == "C",
          "attest must be A, B or C");
  require(claims.orig_tn.empty() != claims.orig_uri.empty(),
          "orig must hold exactly one non-empty tn or uri");
  require(claims.orig_tn.empty() || is_canonical_tn(claims.orig_tn),
          "orig.tn is not a canonical TN");
  require(!claims.dest_tn.empty() || !claims.dest_uri.empty(),
          "dest must hold at least one tn or uri");
  for (std::size_t i = 0; i < claims.dest_tn.size(); ++i) {
    require(is_canonical_tn(claims.dest_tn[i]),
            "dest.tn[" + std::to_string(i) + "] is not a canonical TN");
  }
  for (std::size_t i = 0; i < claims.dest_uri.size(); ++i) {
    require(!claims.dest_uri[i].empty(), "dest.uri[" + std::to_string(i) + "] is empty");
  }
  require(claims.iat > 0, "iat must be a positive NumericDate");
  require(is_uuid(claims.origid), "origid must be a UUID");
}

std::string signing_input(const PassportHeader& header, const ShakenClaims& claims) {
  return base64url_encode(canonical_header_json(header)) + "." +
         base64url_encode(canonical_claims_json(claims));
}

std::string sign_passport(const PassportHeader& header, const ShakenClaims& claims,
                          const DigestSigner& signer) {
  require(header.alg == "ES256", "alg must be ES256");
  require(header.ppt == "shaken", "ppt must be shaken");
  require(header.typ == "passport", "typ must be passport");
  validate_x5u(header.x5u);
  validate_claims(claims);
  std::string jws = signing_input(header, claims);
  const Es256Signature signature = signer.sign_digest(sha256(jws));
  jws += '.';
  jws += base64url_encode(signature);
  return jws;
}

std::string compose_identity_header(std::string_view jws, std::string_view x5u) {
  validate_x5u(x5u);
  std::string out;
  out.reserve(jws.size() + x5u.size() + 32);
  out.append(jws).append(";info=<").append(x5u).append(">;alg=ES256;ppt=shaken");
  return out;
}

}  // namespace stir
