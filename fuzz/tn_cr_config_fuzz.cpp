// The tn-cr configuration reader (tn_cr::load_config) on any file content. Its
// contract: a Config, or stir::Error(kConfig); any other exception escapes
// and libFuzzer reports it.
#include <cstdint>

#include "fuzz_util.h"
#include "stir/error.h"
#include "tn_cr/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const stir::fuzz::ScratchDir dir;
  const std::string path = dir.write("tn-cr.toml", stir::fuzz::as_text(data, size));
  try {
    (void)tn_cr::load_config(path);
  } catch (const stir::Error& e) {
    if (e.code() != stir::ErrorCode::kConfig) stir::fuzz::property_failed("error is not kConfig");
  }
  return 0;
}
