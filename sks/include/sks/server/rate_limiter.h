// Per-client rate limits for the signing route: one token bucket per client
// identity (the client certificate's first name, CN or else the first DNS
// subjectAltName, decoded once per connection by stir::http).
//
// A bucket holds up to `burst` tokens and refills at `per_s` tokens a
// second; a request takes one token or is refused with the time until the
// next token (Retry-After, whole seconds, at least 1). Clients share
// nothing: one client over its limit never slows another.
//
// Buckets live as long as the limiter; identities come from certificates
// our client CA issued, so their number is bounded by that CA.
// Threads: admit() and render_metrics() are safe from any thread (one
// mutex, held for a map lookup and some arithmetic). No failures.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "sks/config.h"

namespace sks::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimiter(const RateLimitConfig& config);

  bool enabled() const noexcept { return per_s_ > 0; }
  // Takes a token for `client`: none when admitted, else the whole seconds
  // to wait before the next request can be admitted.
  std::optional<std::int64_t> admit(const std::string& client,
                                    Clock::time_point now = Clock::now());

  // sks_rate_limited_total{client} and the configured rate, Prometheus text.
  std::string render_metrics() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
    std::uint64_t refused = 0;
  };

  double per_s_;
  double burst_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace sks::server
