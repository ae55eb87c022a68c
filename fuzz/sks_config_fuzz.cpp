// The sks configuration reader (sks::load_config) on any file content. Its
// contract: a Config, or stir::Error(kConfig); any other exception escapes
// and libFuzzer reports it.
#include <cstdint>

#include "fuzz_util.h"
#include "sks/config.h"
#include "stir/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const stir::fuzz::ScratchDir dir;
  const std::string path = dir.write("sks.toml", stir::fuzz::as_text(data, size));
  try {
    (void)sks::load_config(path);
  } catch (const stir::Error& e) {
    if (e.code() != stir::ErrorCode::kConfig) stir::fuzz::property_failed("error is not kConfig");
  }
  return 0;
}
