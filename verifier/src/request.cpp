#include "stir/verifier/request.h"

#include <algorithm>
#include <limits>

namespace stir::vs {
namespace {

using nlohmann::json;

ParsedVerificationRequest missing(const std::string& name) {
  ParsedVerificationRequest out;
  out.error = RequestProblem{RequestProblem::Kind::kMissing, name, {}};
  return out;
}

ParsedVerificationRequest invalid(const std::string& name, const std::string& why) {
  ParsedVerificationRequest out;
  out.error = RequestProblem{RequestProblem::Kind::kInvalid, name, why};
  return out;
}

}  // namespace

ParsedVerificationRequest parse_verification_request(const json& body) {
  if (!body.is_object()) return invalid("verificationRequest", "body is not a JSON object");
  const auto root = body.find("verificationRequest");
  if (root == body.end() || root->is_null()) return missing("verificationRequest");
  if (!root->is_object()) return invalid("verificationRequest", "not a JSON object");

  VerificationRequest request;
  const auto identity = root->find("identity");
  if (identity == root->end() || identity->is_null()) return missing("identity");
  if (!identity->is_string()) return invalid("identity", "not a string");
  request.identity = identity->get<std::string>();
  if (request.identity.empty()) return missing("identity");

  const auto from = root->find("from");
  if (from == root->end() || from->is_null()) return missing("from");
  if (!from->is_object()) return invalid("from", "not a JSON object");
  const auto from_tn = from->find("tn");
  if (from_tn == from->end() || from_tn->is_null()) return missing("from.tn");
  if (!from_tn->is_string()) return invalid("from.tn", "not a string");
  request.from_tn = from_tn->get<std::string>();
  if (request.from_tn.empty()) return missing("from.tn");

  const auto to = root->find("to");
  if (to == root->end() || to->is_null()) return missing("to");
  if (!to->is_object()) return invalid("to", "not a JSON object");
  const auto to_tn = to->find("tn");
  if (to_tn == to->end() || to_tn->is_null()) return missing("to.tn");
  if (to_tn->is_string()) {
    request.to_tns.push_back(to_tn->get<std::string>());
  } else if (to_tn->is_array()) {
    for (const json& tn : *to_tn) {
      if (!tn.is_string()) return invalid("to.tn", "not an array of strings");
      request.to_tns.push_back(tn.get<std::string>());
    }
  } else {
    return invalid("to.tn", "not an array of strings");
  }
  // An empty number is no number: "" (or [""]) is missing, as from.tn is.
  if (request.to_tns.empty() || std::any_of(request.to_tns.begin(), request.to_tns.end(),
                                            [](const std::string& tn) { return tn.empty(); })) {
    return missing("to.tn");
  }

  if (const auto time = root->find("time"); time != root->end() && !time->is_null()) {
    if (!time->is_number_integer()) return invalid("time", "not an integer");
    if (time->is_number_unsigned() &&
        time->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return invalid("time", "out of range");
    }
    request.time = time->get<std::int64_t>();
  }
  ParsedVerificationRequest out;
  out.request = std::move(request);
  return out;
}

}  // namespace stir::vs
