#include "stir/verifier/config.h"

#include "stir/error.h"

namespace stir::vs {
namespace {

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw Error(ErrorCode::kConfig, "verifier." + field + ": " + why);
}

}  // namespace

void validate_config(const VerifierConfig& c) {
  if (c.trust_anchors_dir.empty() && c.trust_anchor_files.empty()) {
    bad("trust_anchors_dir", "no trust anchor configured (STI-PA roots)");
  }
  if (c.allowed_ports.empty()) bad("allowed_ports", "must name at least one port");
  for (std::uint16_t port : c.allowed_ports) {
    if (port == 0) bad("allowed_ports", "0 is not a port");
  }
  if (c.connect_timeout_ms <= 0) bad("connect_timeout_ms", "must be > 0");
  if (c.total_timeout_ms <= 0) bad("total_timeout_ms", "must be > 0");
  if (c.max_body_bytes < 512) bad("max_body_bytes", "must be at least 512");
  if (c.max_crl_bytes < 512) bad("max_crl_bytes", "must be at least 512");
  if (c.crl_refresh_s <= 0) bad("crl_refresh_s", "must be > 0");
  if (c.max_iat_age_s < 0) bad("max_iat_age_s", "must be >= 0");
  if (c.max_iat_future_s < 0) bad("max_iat_future_s", "must be >= 0");
  if (c.max_request_time_skew_s < 0) bad("max_request_time_skew_s", "must be >= 0");
  if (c.min_cache_s < 0) bad("min_cache_s", "must be >= 0");
  if (c.failure_cache_s < 0) bad("failure_cache_s", "must be >= 0");
  if (c.max_cache_entries == 0) bad("max_cache_entries", "must be > 0");
  if (c.reason_policy_max_tns == 0) bad("reason_policy_max_tns", "must be > 0");
  for (const std::string& spc : c.allowed_spcs) {
    if (spc.empty()) bad("allowed_spcs", "holds an empty SPC");
  }
}

}  // namespace stir::vs
