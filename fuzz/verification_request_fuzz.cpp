// The verification endpoint's body reader (sks/server/verification_api.h) on
// any bytes, as POST /stir/v1/verification runs it: parse, then either a
// request or one stir::RequestError answered by the table, and an error body that serialises.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "sks/server/api_error.h"
#include "sks/server/verification_api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    const stir::vs::VerificationRequest request = sks::server::parse_verification_body(body);
    if (request.identity.empty() || request.from_tn.empty() || request.to_tns.empty()) {
      stir::fuzz::property_failed("a mandatory parameter is empty");
    }
  } catch (const stir::RequestError& e) {
    (void)sks::server::api_answer(e);
  }
  return 0;
}
