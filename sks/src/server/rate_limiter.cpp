#include "sks/server/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace sks::server {

namespace {
// A Prometheus label value: backslash, quote and newline escaped.
std::string label_value(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}
}  // namespace

RateLimiter::RateLimiter(const RateLimitConfig& config)
    : per_s_(static_cast<double>(config.per_client_per_s)),
      burst_(static_cast<double>(config.burst > 0 ? config.burst : config.per_client_per_s)) {}

std::optional<std::int64_t> RateLimiter::admit(const std::string& client, Clock::time_point now) {
  if (!enabled()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto [it, added] = buckets_.try_emplace(client);
  Bucket& bucket = it->second;
  if (added) {
    bucket.tokens = burst_;  // a new client starts with a full bucket
  } else {
    const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
    bucket.tokens = std::min(burst_, bucket.tokens + std::max(0.0, elapsed) * per_s_);
  }
  bucket.updated = now;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return std::nullopt;
  }
  ++bucket.refused;
  const double wait_s = (1.0 - bucket.tokens) / per_s_;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_s)));
}

std::string RateLimiter::render_metrics() const {
  std::string out =
      "# HELP sks_rate_limit_per_client_per_s Configured signings per second per client (0: "
      "off).\n"
      "# TYPE sks_rate_limit_per_client_per_s gauge\n"
      "sks_rate_limit_per_client_per_s " +
      std::to_string(static_cast<std::int64_t>(per_s_)) +
      "\n"
      "# HELP sks_rate_limited_total Signing requests refused with 429: client over its rate "
      "limit.\n"
      "# TYPE sks_rate_limited_total counter\n";
  std::map<std::string, std::uint64_t> refused;  // sorted, so the text is stable
  {
    std::lock_guard lock(mutex_);
    for (const auto& [client, bucket] : buckets_) {
      if (bucket.refused > 0) refused.emplace(client, bucket.refused);
    }
  }
  for (const auto& [client, count] : refused) {
    out += "sks_rate_limited_total{client=\"" + label_value(client) + "\"} " +
           std::to_string(count) + "\n";
  }
  return out;
}

}  // namespace sks::server
