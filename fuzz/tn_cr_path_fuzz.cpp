// The TN-CR request-target resolver and conditional-request rules
// (tn_cr/http_rules.h). Input: "<path prefix>\n<target>\n<If-None-Match>\n
// <If-Modified-Since>". A resolved name must never leave the repository.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "tn_cr/http_rules.h"

namespace http_rules = tn_cr::http_rules;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [prefix, rest] = stir::fuzz::split_once(stir::fuzz::as_text(data, size), "\n");
  const auto [target, headers] = stir::fuzz::split_once(rest, "\n");
  const auto [if_none_match, if_modified_since] = stir::fuzz::split_once(headers, "\n");

  for (const std::string_view p : {prefix, std::string_view("/"), std::string_view("/certs/")}) {
    if (!http_rules::is_valid_path_prefix(p)) continue;
    const http_rules::TargetResult result = http_rules::resolve_target(target, p);
    if (result.verdict != http_rules::TargetVerdict::kName) continue;
    const std::string& name = result.name;
    if (name.empty() || name == "." || name == ".." ||
        name.find_first_of("/\\%") != std::string::npos || name.find('\0') != std::string::npos) {
      stir::fuzz::property_failed("resolved name can leave the repository folder");
    }
  }
  if (const auto date = http_rules::parse_http_date(if_modified_since)) {
    (void)http_rules::format_http_date(*date);
  }
  const std::string etag = http_rules::make_etag(target);
  (void)http_rules::if_none_match_matches(if_none_match, etag);
  (void)http_rules::not_modified(if_none_match, if_modified_since, etag, 1796251082);
  return 0;
}
