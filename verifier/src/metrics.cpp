#include "stir/verifier/metrics.h"

namespace stir::vs {
namespace {

constexpr std::array<int, 4> kReasonCodes = {403, 436, 437, 438};
constexpr std::array<const char*, 3> kVerstats = {"TN-Validation-Passed", "TN-Validation-Failed",
                                                  "No-TN-Validation"};

}  // namespace

void VerifierMetrics::record_verification(int verstat_index, int reasoncode,
                                          int error_case) noexcept {
  if (verstat_index >= 0 && verstat_index < 3) verstat_[verstat_index].fetch_add(1, kRelaxed);
  for (std::size_t i = 0; i < kReasonCodes.size(); ++i) {
    if (kReasonCodes[i] == reasoncode) reason_[i].fetch_add(1, kRelaxed);
  }
  if (error_case > 0 && error_case < static_cast<int>(case_.size())) {
    case_[static_cast<std::size_t>(error_case)].fetch_add(1, kRelaxed);
  }
}

void VerifierMetrics::record_cert_lookup(int source) noexcept {
  if (source >= 0 && source < 3)
    cert_lookup_[static_cast<std::size_t>(source)].fetch_add(1, kRelaxed);
}

void VerifierMetrics::record_crl_lookup(bool hit) noexcept {
  (hit ? crl_hits_ : crl_misses_).fetch_add(1, kRelaxed);
}

void VerifierMetrics::record_chain_verdict(bool reused) noexcept {
  (reused ? verdict_hits_ : verdict_misses_).fetch_add(1, kRelaxed);
}

void VerifierMetrics::record_fetch(std::chrono::steady_clock::duration latency, bool ok) noexcept {
  fetches_.fetch_add(1, kRelaxed);
  if (!ok) fetch_failures_.fetch_add(1, kRelaxed);
  const double seconds = std::chrono::duration<double>(latency).count();
  std::size_t bucket = 0;
  while (bucket < kLatencyBoundsS.size() && seconds > kLatencyBoundsS[bucket]) ++bucket;
  latency_buckets_[bucket].fetch_add(1, kRelaxed);
  latency_sum_us_.fetch_add(
      static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(latency).count()),
      kRelaxed);
}

MetricsSnapshot VerifierMetrics::snapshot() const {
  MetricsSnapshot s;
  for (std::size_t i = 0; i < kVerstats.size(); ++i) {
    s.verifications_by_verstat[kVerstats[i]] = verstat_[i].load(kRelaxed);
  }
  for (std::size_t i = 0; i < kReasonCodes.size(); ++i) {
    s.verifications_by_reasoncode[kReasonCodes[i]] = reason_[i].load(kRelaxed);
  }
  for (std::size_t i = 0; i < case_.size(); ++i) {
    const std::uint64_t n = case_[i].load(kRelaxed);
    if (n > 0) s.verifications_by_case[std::string("E").append(std::to_string(i))] = n;
  }
  s.reasons_suppressed = reasons_suppressed_.load(kRelaxed);
  s.cert_cache_hits = cert_lookup_[0].load(kRelaxed);
  s.cert_cache_misses = cert_lookup_[1].load(kRelaxed);
  s.cert_cache_shared = cert_lookup_[2].load(kRelaxed);
  s.crl_cache_hits = crl_hits_.load(kRelaxed);
  s.crl_cache_misses = crl_misses_.load(kRelaxed);
  s.chain_verdict_hits = verdict_hits_.load(kRelaxed);
  s.chain_verdict_misses = verdict_misses_.load(kRelaxed);
  s.fetches = fetches_.load(kRelaxed);
  s.fetch_failures = fetch_failures_.load(kRelaxed);
  s.fetch_latency_bounds_s.assign(kLatencyBoundsS.begin(), kLatencyBoundsS.end());
  std::uint64_t cumulative = 0;
  for (const Counter& bucket : latency_buckets_) {
    cumulative += bucket.load(kRelaxed);
    s.fetch_latency_buckets.push_back(cumulative);
  }
  s.fetch_latency_sum_s = static_cast<double>(latency_sum_us_.load(kRelaxed)) / 1e6;
  s.cache_persist_errors = persist_errors_.load(kRelaxed);
  return s;
}

}  // namespace stir::vs
