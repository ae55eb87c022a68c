// The server's metrics, rendered in the Prometheus text format at /metrics.
//
//   sks_requests_total{route,code,outcome}   requests by route, HTTP code
//                                            and outcome ("ok" or messageId)
//   sks_sign_duration_seconds                histogram: claims to Identity
//                                            header, token signature included
//   sks_session_wait_seconds                 histogram: waiting for a session
//   sks_pkcs11_errors_total{function,ckr}    PKCS#11 failures by CKR name
//   sks_keyring_reloads_total{result}        key ring reloads
//   sks_connections_accepted_total           TCP connections served
//   sks_connections_rejected_total           closed at once: over max_connections
//   sks_connections_open                     gauge
//   sks_worker_busy_rejections_total         503 POL5003: a worker queue full
//   sks_worker_queue_length                  gauge: waiting for a signing worker
//
// Threads: every member is safe to call from any thread. Counters with
// labels sit behind one mutex (a few tens of ns per request); histograms
// are lock-free.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "stir/http/server.h"
#include "stir/verifier/metrics.h"

namespace sks::server {

class Histogram {
 public:
  // Upper bounds in seconds; +Inf is implied.
  static constexpr std::array<double, 12> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
  void observe(std::chrono::nanoseconds duration) noexcept;
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

class Metrics {
 public:
  void count_request(const std::string& route, int code, const std::string& outcome);
  void count_pkcs11_error(const std::string& function, const std::string& ckr);
  void count_reload(bool ok);
  Histogram& sign_duration() noexcept { return sign_duration_; }
  Histogram& session_wait() noexcept { return session_wait_; }

  std::string render() const;
  // The HTTP layer's connection and worker counters.
  static std::string render_connections(const stir::http::Stats& stats);
  // The verification role's counters (cache, fetches, verstat, reasons).
  static std::string render_verification(const stir::vs::MetricsSnapshot& snapshot);

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, int, std::string>, std::uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> pkcs11_errors_;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
  Histogram sign_duration_;
  Histogram session_wait_;
};

}  // namespace sks::server
