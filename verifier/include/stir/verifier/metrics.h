// Counters of the verification service, for a Prometheus endpoint or logs.
//
// VerifierMetrics is a set of atomic counters updated on the request path
// (relaxed increments, no locks); snapshot() copies them into a plain value
// that a renderer can walk. Counters only go up.
// Threads: every member function is safe from any thread.
// Errors: none; nothing here throws except std::bad_alloc in snapshot().
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stir::vs {

struct MetricsSnapshot {
  // Verifications by verstat ("TN-Validation-Passed", "TN-Validation-Failed",
  // "No-TN-Validation"); every verstat is present, zero or not.
  std::map<std::string, std::uint64_t> verifications_by_verstat;
  // Failures by SIP reason code (403, 436, 437, 438); every code is present.
  std::map<int, std::uint64_t> verifications_by_reasoncode;
  // Failures by ATIS case ("E3" ... "E19"); only cases seen.
  std::map<std::string, std::uint64_t> verifications_by_case;
  // Failures reported without a reason under once_per_day_reason_policy.
  std::uint64_t reasons_suppressed = 0;

  // Certificate cache: hits (a live entry, failures included), misses (this
  // request fetched), shared (waited for another request's fetch).
  std::uint64_t cert_cache_hits = 0;
  std::uint64_t cert_cache_misses = 0;
  std::uint64_t cert_cache_shared = 0;
  std::uint64_t crl_cache_hits = 0;
  std::uint64_t crl_cache_misses = 0;
  // Chain verdicts reused from the certificate cache vs. computed.
  std::uint64_t chain_verdict_hits = 0;
  std::uint64_t chain_verdict_misses = 0;

  // Fetches (x5u and CRL), failed ones, and their latency as a histogram.
  std::uint64_t fetches = 0;
  std::uint64_t fetch_failures = 0;
  std::vector<double> fetch_latency_bounds_s;        // upper bounds; +Inf is implied
  std::vector<std::uint64_t> fetch_latency_buckets;  // cumulative, one per bound, then +Inf
  double fetch_latency_sum_s = 0;
  // Cache files that could not be written or read back.
  std::uint64_t cache_persist_errors = 0;
};

class VerifierMetrics {
 public:
  static constexpr std::array<double, 9> kLatencyBoundsS = {0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5,  1.0,   2.5,  5.0};

  // `verstat_index`: 0 passed, 1 failed, 2 no validation. `reasoncode` 0
  // when none; `error_case` 3..19 or 0.
  void record_verification(int verstat_index, int reasoncode, int error_case) noexcept;
  void record_reason_suppressed() noexcept { reasons_suppressed_.fetch_add(1, kRelaxed); }
  void record_cert_lookup(int source) noexcept;  // 0 hit, 1 miss, 2 shared
  void record_crl_lookup(bool hit) noexcept;
  void record_chain_verdict(bool reused) noexcept;
  void record_fetch(std::chrono::steady_clock::duration latency, bool ok) noexcept;
  void record_persist_error() noexcept { persist_errors_.fetch_add(1, kRelaxed); }

  MetricsSnapshot snapshot() const;

 private:
  static constexpr std::memory_order kRelaxed = std::memory_order_relaxed;
  using Counter = std::atomic<std::uint64_t>;

  std::array<Counter, 3> verstat_{};
  std::array<Counter, 4> reason_{};  // 403, 436, 437, 438
  std::array<Counter, 20> case_{};   // index = E-number
  Counter reasons_suppressed_{0};
  std::array<Counter, 3> cert_lookup_{};
  Counter crl_hits_{0}, crl_misses_{0};
  Counter verdict_hits_{0}, verdict_misses_{0};
  Counter fetches_{0}, fetch_failures_{0};
  std::array<Counter, kLatencyBoundsS.size() + 1> latency_buckets_{};  // not cumulative
  Counter latency_sum_us_{0};
  Counter persist_errors_{0};
};

}  // namespace stir::vs
