// The Identity header parser (stir/identity.h): never throws, never reads
// out of bounds, and whatever it accepts satisfies its documented rules.
#include <cstdint>

#include "fuzz_util.h"
#include "stir/identity.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value = stir::fuzz::as_text(data, size);
  const stir::IdentityParse parsed = stir::parse_identity_header(value);
  if (parsed.header) {
    if (size > stir::kMaxIdentityHeaderSize) stir::fuzz::property_failed("oversized value parsed");
    if (parsed.header->signature_b64.empty()) stir::fuzz::property_failed("empty signature");
  } else if (parsed.error.empty()) {
    stir::fuzz::property_failed("failure without an error text");
  }
  stir::IdentityHeader header;
  std::string error;
  stir::split_compact_jws(value, header, error);
  return 0;
}
