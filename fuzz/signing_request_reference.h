// The reference sign_request_fuzz checks sks::server::read_signing_request
// against: the signing request read as it was until 2026-12-08, the body
// made a tree by stir::parse_json_input (itself checked by json_input_fuzz)
// and its claims read from the tree. A test oracle only: the service reads
// the parser's events without a tree (signing_api.cpp).
//
// Threads: a pure function. Errors: stir::RequestError, as the service's.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "sks/server/key_ring.h"
#include "sks/server/signing_api.h"
#include "stir/json_input.h"
#include "stir/passport.h"
#include "stir/request_error.h"

namespace stir::fuzz {

inline stir::ShakenClaims reference_signing_request(std::string_view body,
                                                    const sks::server::Profile& profile,
                                                    std::int64_t now, std::int64_t max_skew) {
  using nlohmann::json;
  using stir::RequestError;
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
  const auto member = [&](const char* name) -> const json* {
    const auto it = request.find(name);
    return it == request.end() || it->is_null() ? nullptr : &*it;
  };
  stir::ShakenClaims claims;

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
  if ((*dest)["tn"].size() > sks::server::kMaxDestTns) {
    throw RequestError::invalid_value(
        "dest", "more than " + std::to_string(sks::server::kMaxDestTns) + " dest.tn entries");
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
  return claims;
}

}  // namespace stir::fuzz
