#include "stir/verifier/request.h"

#include <algorithm>
#include <limits>

namespace stir::vs {
namespace {

using stir::RequestError;

using nlohmann::json;

[[noreturn]] void missing(const std::string& name) { throw RequestError::missing_parameter(name); }

[[noreturn]] void invalid(const std::string& name, const std::string& why) {
  throw RequestError::invalid_value(name, why);
}

}  // namespace

VerificationRequest parse_verification_request(const json& body) {
  if (!body.is_object()) invalid("verificationRequest", "body is not a JSON object");
  const auto root = body.find("verificationRequest");
  if (root == body.end() || root->is_null()) missing("verificationRequest");
  if (!root->is_object()) invalid("verificationRequest", "not a JSON object");

  VerificationRequest request;
  const auto identity = root->find("identity");
  if (identity == root->end() || identity->is_null()) missing("identity");
  if (!identity->is_string()) invalid("identity", "not a string");
  request.identity = identity->get<std::string>();
  if (request.identity.empty()) missing("identity");

  const auto from = root->find("from");
  if (from == root->end() || from->is_null()) missing("from");
  if (!from->is_object()) invalid("from", "not a JSON object");
  const auto from_tn = from->find("tn");
  if (from_tn == from->end() || from_tn->is_null()) missing("from.tn");
  if (!from_tn->is_string()) invalid("from.tn", "not a string");
  request.from_tn = from_tn->get<std::string>();
  if (request.from_tn.empty()) missing("from.tn");

  const auto to = root->find("to");
  if (to == root->end() || to->is_null()) missing("to");
  if (!to->is_object()) invalid("to", "not a JSON object");
  const auto to_tn = to->find("tn");
  if (to_tn == to->end() || to_tn->is_null()) missing("to.tn");
  if (to_tn->is_string()) {
    request.to_tns.push_back(to_tn->get<std::string>());
  } else if (to_tn->is_array()) {
    for (const json& tn : *to_tn) {
      if (!tn.is_string()) invalid("to.tn", "not an array of strings");
      request.to_tns.push_back(tn.get<std::string>());
    }
  } else {
    invalid("to.tn", "not an array of strings");
  }
  // An empty number is no number: "" (or [""]) is missing, as from.tn is.
  if (request.to_tns.empty() || std::any_of(request.to_tns.begin(), request.to_tns.end(),
                                            [](const std::string& tn) { return tn.empty(); })) {
    missing("to.tn");
  }

  if (const auto time = root->find("time"); time != root->end() && !time->is_null()) {
    if (!time->is_number_integer()) invalid("time", "not an integer");
    if (time->is_number_unsigned() &&
        time->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      invalid("time", "out of range");
    }
    request.time = time->get<std::int64_t>();
  }
  return request;
}

}  // namespace stir::vs
