// The tn-cr configuration reader (tn_cr::load_config) on any file content.
#include <cstdint>

#include "fuzz_util.h"
#include "tn_cr/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  stir::fuzz::load_config_text(stir::fuzz::as_text(data, size), "tn-cr.toml",
                               [](const std::string& path) { return tn_cr::load_config(path); });
  return 0;
}
