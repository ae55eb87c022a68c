// The sks configuration reader (sks::load_config) on any file content.
#include <cstdint>

#include "fuzz_util.h"
#include "sks/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  stir::fuzz::load_config_text(stir::fuzz::as_text(data, size), "sks.toml",
                               [](const std::string& path) { return sks::load_config(path); });
  return 0;
}
