#include "stir/verifier/config.h"

#include "stir/error.h"

namespace stir::vs {
namespace {

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw Error(ErrorCode::kConfig, "verifier." + field + ": " + why);
}

}  // namespace

std::span<const VerifierLimit> verifier_limits() {
  static const VerifierLimit kLimits[] = {
      {"max_crl_bytes", &VerifierConfig::max_crl_bytes, 1024, 64 << 20},
      {"crl_refresh_s", &VerifierConfig::crl_refresh_s, 60, 7 * 86400},
      {"connect_timeout_ms", &VerifierConfig::connect_timeout_ms, 10, 60000},
      {"total_timeout_ms", &VerifierConfig::total_timeout_ms, 10, 120000},
      {"max_body_bytes", &VerifierConfig::max_body_bytes, 1024, 1 << 20},
      {"max_iat_age_s", &VerifierConfig::max_iat_age_s, 1, 86400},
      {"max_iat_future_s", &VerifierConfig::max_iat_future_s, 0, 86400},
      {"max_request_time_skew_s", &VerifierConfig::max_request_time_skew_s, 1, 86400},
      {"min_cache_s", &VerifierConfig::min_cache_s, 86400, 30 * 86400},
      {"failure_cache_s", &VerifierConfig::failure_cache_s, 0, 3600},
      {"max_fetches_in_flight", &VerifierConfig::max_fetches_in_flight, 1, 1024},
      {"max_fetches_per_host", &VerifierConfig::max_fetches_per_host, 1, 1024},
      {"max_cache_entries", &VerifierConfig::max_cache_entries, 1, 10000000},
      {"reason_policy_max_tns", &VerifierConfig::reason_policy_max_tns, 1, 100000000},
  };
  return kLimits;
}

void validate_config(const VerifierConfig& c) {
  if (c.trust_anchors_dir.empty() && c.trust_anchor_files.empty()) {
    bad("trust_anchors_dir", "no trust anchor configured (STI-PA roots)");
  }
  if (c.allowed_ports.empty()) bad("allowed_ports", "must name at least one port");
  for (std::uint16_t port : c.allowed_ports) {
    if (port == 0) bad("allowed_ports", "0 is not a port");
  }
  for (const VerifierLimit& limit : verifier_limits()) {
    if (!limit.within(c)) bad(limit.key, limit.bounds());
  }
  for (const std::string& spc : c.allowed_spcs) {
    if (spc.empty()) bad("allowed_spcs", "holds an empty SPC");
  }
}

}  // namespace stir::vs
