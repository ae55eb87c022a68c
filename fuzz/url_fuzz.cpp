// The x5u URL parser (stir/verifier/url.h) and the checks run on its result.
#include <cstdint>

#include "fuzz_util.h"
#include "stir/verifier/url.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string error;
  const auto url = stir::vs::parse_https_url(stir::fuzz::as_text(data, size), error);
  if (!url) {
    if (error.empty()) stir::fuzz::property_failed("refused without a reason");
    return 0;
  }
  if (url->path.empty() || url->path.front() != '/') stir::fuzz::property_failed("path without /");
  if (url->host.empty()) stir::fuzz::property_failed("empty host");
  if (url->host.find_first_of("@?#\\ ") != std::string::npos) {
    stir::fuzz::property_failed("host with a forbidden byte");
  }
  (void)url->host_header();
  (void)stir::vs::check_port(*url, {443, 8443});
  (void)stir::vs::classify_ip_literal(url->host);
  return 0;
}
