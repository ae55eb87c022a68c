// The verification-request reader (stir/verifier/request.h) on any JSON body,
// as the verification endpoint runs it: parse, then read or answer an error.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "stir/verifier/request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json body = nlohmann::json::parse(data, data + size, nullptr, false);
  if (body.is_discarded()) return 0;
  const stir::vs::ParsedVerificationRequest parsed = stir::vs::parse_verification_request(body);
  if (parsed.request.has_value() == parsed.error.has_value()) {
    stir::fuzz::property_failed("exactly one of request and error must be set");
  }
  if (parsed.error) {
    (void)stir::vs::to_request_error(*parsed.error)
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else if (parsed.request->identity.empty() || parsed.request->from_tn.empty() ||
             parsed.request->to_tns.empty()) {
    stir::fuzz::property_failed("a mandatory parameter is empty");
  }
  return 0;
}
