#include "sks/server/verification_api.h"

#include <nlohmann/json.hpp>

#include "stir/json_input.h"
#include "stir/verifier/request.h"

namespace sks::server {

ParsedVerification parse_verification_body(std::string_view body) {
  ParsedVerification out;
  if (body.empty()) {
    out.error = ApiError::missing_body();
    return out;
  }
  const stir::JsonInput input = stir::parse_json_input(body);
  if (input.problem == stir::JsonInput::Problem::kDuplicate) {
    out.error = ApiError::invalid_value(input.member, "member appears more than once");
    return out;
  }
  if (input.problem != stir::JsonInput::Problem::kNone) {
    out.error = ApiError::parse_failure(input.why());
    return out;
  }
  auto parsed = stir::vs::parse_verification_request(input.value);
  if (parsed.error) {
    const auto& problem = *parsed.error;
    out.error = problem.kind == stir::vs::RequestProblem::Kind::kMissing
                    ? ApiError::missing_parameter(problem.parameter)
                    : ApiError::invalid_value(problem.parameter, problem.why);
    return out;
  }
  out.request = std::move(parsed.request);
  return out;
}

VerificationOutcome verify_request(std::string_view body, stir::vs::Verifier& verifier) {
  VerificationOutcome out;
  auto parsed = parse_verification_body(body);
  if (parsed.error) {
    out.error = std::move(parsed.error);
    return out;
  }
  const auto result = verifier.verify(*parsed.request);
  out.response_body = stir::vs::to_verification_response(result).dump();
  out.outcome = result.passed() ? "ok" : result.error_case_id();
  return out;
}

}  // namespace sks::server
