// The verification endpoint's body reader (sks/server/verification_api.h) on
// any bytes, as POST /stir/v1/verification runs it: parse, then either a
// request or one ApiError from the table, and an error body that serialises.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "sks/server/verification_api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const sks::server::ParsedVerification parsed = sks::server::parse_verification_body(body);
  if (parsed.request.has_value() == parsed.error.has_value()) {
    stir::fuzz::property_failed("exactly one of request and error must be set");
  }
  if (parsed.error) {
    (void)parsed.error->body();
  } else if (parsed.request->identity.empty() || parsed.request->from_tn.empty() ||
             parsed.request->to_tns.empty()) {
    stir::fuzz::property_failed("a mandatory parameter is empty");
  }
  return 0;
}
