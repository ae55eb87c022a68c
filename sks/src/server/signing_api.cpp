#include "sks/server/signing_api.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "stir/json_input.h"
#include "stir/passport.h"

namespace sks::server {

using stir::RequestError;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The media type of a header value, lower-cased, without parameters.
std::string media_type(std::string_view value) {
  return lower(trim(value.substr(0, value.find(';'))));
}

// `text` as a JSON string, as nlohmann's dump() writes it: printable ASCII
// other than '"' and '\\' (an Identity header, always) as it is.
void append_json_string(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
  });
  if (!plain) {
    out += nlohmann::json(std::string(text)).dump();
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

}  // namespace

bool accepts_json(std::string_view accept) {
  std::size_t start = 0;
  while (start <= accept.size()) {
    const std::size_t end = std::min(accept.find(',', start), accept.size());
    const std::string_view item = accept.substr(start, end - start);
    const std::string type = media_type(item);
    if (type == "application/json" || type == "application/*" || type == "*/*") {
      // q=0 means "not acceptable" (RFC 9110 section 12.4.2).
      const std::string params = lower(item.substr(std::min(item.find(';'), item.size())));
      const auto q = params.find("q=");
      if (q == std::string::npos) return true;
      const std::string value(trim(std::string_view(params).substr(q + 2)));
      if (value.empty() || std::strtod(value.c_str(), nullptr) > 0.0) return true;
    }
    start = end + 1;
  }
  return false;
}

void check_json_headers(bool has_content_length, const std::string* content_type,
                        const std::string* accept) {
  if (!has_content_length) throw RequestError::missing_content_length();
  if (content_type == nullptr || media_type(*content_type) != "application/json") {
    throw RequestError::unsupported_media_type("application/json");
  }
  if (accept != nullptr && !trim(*accept).empty() && !accepts_json(*accept)) {
    throw RequestError::not_acceptable(*accept);
  }
}

namespace {

using nlohmann::json;

void read_claims(const json& request, const Profile& profile, std::int64_t now,
                 std::int64_t max_skew, stir::ShakenClaims& claims) {
  const auto member = [&](const char* name) -> const json* {
    const auto it = request.find(name);
    return it == request.end() || it->is_null() ? nullptr : &*it;
  };

  const json* attest = member("attest");
  if (attest == nullptr) throw RequestError::missing_parameter("attest");
  if (!attest->is_string() || (*attest != "A" && *attest != "B" && *attest != "C")) {
    throw RequestError::invalid_value("attest", "must be \"A\", \"B\" or \"C\"");
  }
  claims.attest = attest->get<std::string>();

  const json* orig = member("orig");
  if (orig == nullptr) throw RequestError::missing_parameter("orig");
  if (!orig->is_object() || !orig->contains("tn") || !(*orig)["tn"].is_string()) {
    throw RequestError::invalid_value("orig", "must be {\"tn\":\"<canonical TN>\"}");
  }
  claims.orig_tn = (*orig)["tn"].get<std::string>();
  if (!stir::is_canonical_tn(claims.orig_tn)) {
    throw RequestError::invalid_value("orig", "orig.tn must be digits only, country code included");
  }

  const json* dest = member("dest");
  if (dest == nullptr) throw RequestError::missing_parameter("dest");
  if (!dest->is_object() || !dest->contains("tn") || !(*dest)["tn"].is_array() ||
      (*dest)["tn"].empty()) {
    throw RequestError::invalid_value("dest", "must be {\"tn\":[\"<canonical TN>\", ...]}");
  }
  if ((*dest)["tn"].size() > kMaxDestTns) {
    throw RequestError::invalid_value(
        "dest", "more than " + std::to_string(kMaxDestTns) + " dest.tn entries");
  }
  for (const auto& tn : (*dest)["tn"]) {
    if (!tn.is_string() || !stir::is_canonical_tn(tn.get_ref<const std::string&>())) {
      throw RequestError::invalid_value("dest", "dest.tn entries must be digits only");
    }
    claims.dest_tn.push_back(tn.get<std::string>());
  }

  if (const json* iat = member("iat")) {
    if (!iat->is_number_integer()) {
      throw RequestError::invalid_value("iat", "must be an integer NumericDate");
    }
    claims.iat = iat->get<std::int64_t>();
    if (claims.iat > now + max_skew || claims.iat < now - max_skew) {
      throw RequestError::invalid_value(
          "iat", "more than " + std::to_string(max_skew) + " s from the server's clock");
    }
  } else {
    claims.iat = now;
  }

  if (const json* origid = member("origid")) {
    if (!origid->is_string() || !stir::is_uuid(origid->get_ref<const std::string&>())) {
      throw RequestError::invalid_value("origid", "must be a UUID");
    }
    claims.origid = origid->get<std::string>();
  } else if (!profile.origid.empty()) {
    claims.origid = profile.origid;
  } else {
    throw RequestError::missing_parameter("origid");
  }
}

}  // namespace

SigningResult sign_request(std::string_view body, const std::vector<std::string>& client_names,
                           const KeyRing& ring, std::int64_t now, std::int64_t max_iat_skew_s) {
  SigningResult result;
  // Authorisation before anything else: an unknown client learns nothing.
  result.profile = ring.profile_for(client_names);
  if (result.profile == nullptr) {
    throw RequestError::forbidden(client_names.empty() ? std::string("no client identity")
                                                       : "client '" + client_names.front() +
                                                             "' has no signing profile");
  }
  if (body.empty()) throw RequestError::missing_body();
  stir::JsonInput parsed = stir::parse_json_input(body);
  if (parsed.problem == stir::JsonInput::Problem::kDuplicate) {
    throw RequestError::invalid_value(parsed.member, "member appears more than once");
  }
  if (parsed.problem != stir::JsonInput::Problem::kNone) {
    throw RequestError::parse_failure(parsed.why());
  }
  const json& document = parsed.value;
  if (!document.is_object() || !document.contains("signingRequest")) {
    throw RequestError::missing_parameter("signingRequest");
  }
  const json& request = document["signingRequest"];
  if (!request.is_object()) {
    throw RequestError::invalid_value("signingRequest", "must be an object");
  }
  stir::ShakenClaims claims;
  read_claims(request, *result.profile, now, max_iat_skew_s, claims);
  if (!result.profile->attest.contains(claims.attest)) {
    throw RequestError::forbidden("attestation level '" + claims.attest +
                                  "' is not permitted for profile '" + result.profile->name + "'");
  }
  if (!result.profile->key) {  // its key was compromised; no new one is active yet
    throw RequestError(RequestError::Problem::kUnavailable, result.profile->name, "no active key");
  }
  const SigningKey& key = *result.profile->key;
  stir::PassportHeader header;
  header.x5u = key.x5u;
  const std::string jws = stir::sign_passport(header, claims, *key.signer);
  // The one answer shape around the escaped identity: the same bytes as
  // dumping the whole object, without building its tree for every request.
  const std::string identity = stir::compose_identity_header(jws, key.x5u);
  result.response_body.reserve(identity.size() + 48);
  result.response_body = R"({"signingResponse":{"identity":)";
  append_json_string(result.response_body, identity);
  result.response_body += "}}";
  // What the audit record needs, as signed (no parsing it back).
  result.signing_input.assign(jws, 0, jws.rfind('.'));
  result.claims = std::move(claims);
  return result;
}

}  // namespace sks::server
