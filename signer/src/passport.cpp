#include "stir/passport.h"

#include <algorithm>
#include <charconv>
#include <iterator>

#include "stir/base64url.h"
#include "stir/error.h"
#include "stir/openssl.h"

namespace stir {
namespace {

constexpr std::size_t kMaxTnDigits = 15;  // E.164

bool is_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// The message is a literal, made a std::string only when the rule is
// broken: these checks run for every signature, and a std::string made per
// character of the x5u cost 5 thousand instructions a PASSporT (issue 20).
void require(bool ok, const char* message) {
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

void append_canonical_json_string(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
  });
  if (!plain) {
    out += canonical_json(nlohmann::json(std::string(text)));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

namespace {

// Writes one canonical JSON object, members given in code-point order,
// from its '{' to the '}' close() writes.
// The header and the claims are written with it member by member: what
// canonical_json(header_to_json()) and canonical_json(claims_to_json())
// write, without a tree of std::map nodes and strings per PASSporT
// (about 30 thousand instructions a signature, issue 20).
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_ += '{'; }
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  void close() { out_ += '}'; }

  // The member's name and colon, after a comma unless it is the first.
  std::string& name(std::string_view name) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += name;
    out_ += "\":";
    return out_;
  }
  // A string member, left out when empty (the typed structs' "absent").
  void string(std::string_view name, std::string_view value) {
    if (!value.empty()) append_canonical_json_string(this->name(name), value);
  }
  // An array of strings, left out when empty.
  void strings(std::string_view name, const std::vector<std::string>& values) {
    if (values.empty()) return;
    std::string& out = this->name(name);
    char separator = '[';
    for (const auto& value : values) {
      out += separator;
      separator = ',';
      append_canonical_json_string(out, value);
    }
    out += ']';
  }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace

std::string canonical_header_json(const PassportHeader& header) {
  std::string out;
  out.reserve(48 + header.x5u.size());
  ObjectWriter object(out);
  object.string("alg", header.alg);
  object.string("ppt", header.ppt);
  object.string("typ", header.typ);
  object.string("x5u", header.x5u);
  object.close();
  return out;
}

std::string canonical_claims_json(const ShakenClaims& claims) {
  std::string out;
  out.reserve(128 + 18 * claims.dest_tn.size());
  ObjectWriter object(out);
  object.string("attest", claims.attest);
  if (!claims.dest_tn.empty() || !claims.dest_uri.empty()) {
    ObjectWriter dest(object.name("dest"));
    dest.strings("tn", claims.dest_tn);
    dest.strings("uri", claims.dest_uri);
    dest.close();
  }
  char digits[24];
  const auto end = std::to_chars(std::begin(digits), std::end(digits), claims.iat).ptr;
  object.name("iat").append(digits, end);
  if (!claims.orig_tn.empty() || !claims.orig_uri.empty()) {
    ObjectWriter orig(object.name("orig"));
    orig.string("tn", claims.orig_tn);
    orig.string("uri", claims.orig_uri);
    orig.close();
  }
  object.string("origid", claims.origid);
  object.close();
  return out;
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
    if (!is_canonical_tn(claims.dest_tn[i])) {
      throw Error(ErrorCode::kInvalidArgument,
                  "dest.tn[" + std::to_string(i) + "] is not a canonical TN");
    }
  }
  for (std::size_t i = 0; i < claims.dest_uri.size(); ++i) {
    if (claims.dest_uri[i].empty()) {
      throw Error(ErrorCode::kInvalidArgument, "dest.uri[" + std::to_string(i) + "] is empty");
    }
  }
  require(claims.iat > 0, "iat must be a positive NumericDate");
  require(is_uuid(claims.origid), "origid must be a UUID");
}

std::string signing_input(const PassportHeader& header, const ShakenClaims& claims) {
  std::string input = base64url_encode(canonical_header_json(header));
  input += '.';
  input += base64url_encode(canonical_claims_json(claims));
  return input;
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
