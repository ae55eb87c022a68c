#include "sks/server/verification_api.h"

#include <nlohmann/json.hpp>

#include "stir/json_input.h"
#include "stir/verifier/request.h"

namespace sks::server {

using stir::RequestError;

stir::vs::VerificationRequest parse_verification_body(std::string_view body) {
  if (body.empty()) throw RequestError::missing_body();
  const stir::JsonInput input = stir::parse_json_input(body);
  if (input.problem == stir::JsonInput::Problem::kDuplicate) {
    throw RequestError::invalid_value(input.member, "member appears more than once");
  }
  if (input.problem != stir::JsonInput::Problem::kNone) {
    throw RequestError::parse_failure(input.why());
  }
  return stir::vs::parse_verification_request(input.value);
}

VerificationOutcome verify_request(std::string_view body, stir::vs::Verifier& verifier) {
  const auto result = verifier.verify(parse_verification_body(body));
  return {stir::vs::to_verification_response(result).dump(),
          result.passed() ? "ok" : result.error_case_id()};
}

}  // namespace sks::server
