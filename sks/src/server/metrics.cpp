#include "sks/server/metrics.h"

#include <cstdio>

namespace sks::server {

namespace {
std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  return buffer;
}
}  // namespace

void Histogram::observe(std::chrono::nanoseconds duration) noexcept {
  const double seconds = std::chrono::duration<double>(duration).count();
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(duration.count()), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += name + "_bucket{le=\"" + number(kBounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + number(static_cast<double>(sum_ns_.load()) / 1e9) + "\n";
  out += name + "_count " + std::to_string(count_.load()) + "\n";
}

void Metrics::count_request(const std::string& route, int code, const std::string& outcome) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, code, outcome}];
}

void Metrics::count_pkcs11_error(const std::string& function, const std::string& ckr) {
  std::lock_guard lock(mutex_);
  ++pkcs11_errors_[{function, ckr}];
}

void Metrics::count_reload(bool ok) {
  std::lock_guard lock(mutex_);
  ++(ok ? reloads_ok_ : reloads_failed_);
}

std::string Metrics::render() const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    out +=
        "# HELP sks_requests_total HTTP requests by route, status code and outcome.\n"
        "# TYPE sks_requests_total counter\n";
    for (const auto& [key, value] : requests_) {
      const auto& [route, code, outcome] = key;
      out += "sks_requests_total{route=\"" + route + "\",code=\"" + std::to_string(code) +
             "\",outcome=\"" + outcome + "\"} " + std::to_string(value) + "\n";
    }
    out +=
        "# HELP sks_pkcs11_errors_total PKCS#11 failures by function and CKR name.\n"
        "# TYPE sks_pkcs11_errors_total counter\n";
    for (const auto& [key, value] : pkcs11_errors_) {
      out += "sks_pkcs11_errors_total{function=\"" + key.first + "\",ckr=\"" + key.second + "\"} " +
             std::to_string(value) + "\n";
    }
    out +=
        "# HELP sks_keyring_reloads_total Key ring reloads by result.\n"
        "# TYPE sks_keyring_reloads_total counter\n"
        "sks_keyring_reloads_total{result=\"ok\"} " +
        std::to_string(reloads_ok_) +
        "\n"
        "sks_keyring_reloads_total{result=\"failed\"} " +
        std::to_string(reloads_failed_) + "\n";
  }
  sign_duration_.render(out, "sks_sign_duration_seconds",
                        "Time from parsed claims to Identity header, token signature included.");
  session_wait_.render(out, "sks_session_wait_seconds",
                       "Time spent waiting for a free PKCS#11 session.");
  return out;
}

std::string Metrics::render_connections(const stir::http::Stats& stats) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, std::uint64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + std::to_string(value) + "\n";
  };
  metric("sks_connections_accepted_total", "counter", "TCP connections accepted and served.",
         stats.accepted_connections);
  metric("sks_connections_rejected_total", "counter",
         "TCP connections closed at once: over server.max_connections.",
         stats.rejected_connections);
  metric("sks_connections_open", "gauge", "Open connections.", stats.open_connections);
  metric("sks_worker_busy_rejections_total", "counter",
         "Requests answered 503 POL5003: a worker queue was full.", stats.busy_rejections);
  metric("sks_worker_queue_length", "gauge", "Requests waiting for a signing worker.",
         stats.worker_queue_length);
  metric("sks_connections_pending", "gauge", "Connections that have not finished the handshake.",
         stats.pending_connections);
  metric("sks_connections_evicted_total", "counter",
         "Unfinished connections closed for a newer one: over a per-address or pending cap.",
         stats.evicted_connections);
  metric("sks_tls_resumptions_refused_total", "counter",
         "Resumed TLS sessions closed: the client certificate is no longer valid.",
         stats.refused_resumptions);
  return out;
}

std::string Metrics::render_verification(const stir::vs::MetricsSnapshot& m) {
  std::string out =
      "# HELP sks_verifications_total Verifications by verstat.\n"
      "# TYPE sks_verifications_total counter\n";
  for (const auto& [verstat, count] : m.verifications_by_verstat) {
    out += "sks_verifications_total{verstat=\"" + verstat + "\"} " + std::to_string(count) + "\n";
  }
  out +=
      "# HELP sks_verification_reasons_total Failed verifications by SIP reason code.\n"
      "# TYPE sks_verification_reasons_total counter\n";
  for (const auto& [code, count] : m.verifications_by_reasoncode) {
    out += "sks_verification_reasons_total{reasoncode=\"" + std::to_string(code) + "\"} " +
           std::to_string(count) + "\n";
  }
  out +=
      "# HELP sks_x5u_cache_total Certificate cache lookups by result.\n"
      "# TYPE sks_x5u_cache_total counter\n"
      "sks_x5u_cache_total{result=\"hit\"} " +
      std::to_string(m.cert_cache_hits) + "\n" + "sks_x5u_cache_total{result=\"miss\"} " +
      std::to_string(m.cert_cache_misses) + "\n" + "sks_x5u_cache_total{result=\"shared\"} " +
      std::to_string(m.cert_cache_shared) + "\n" +
      "# HELP sks_x5u_fetches_total x5u and CRL fetches by result.\n"
      "# TYPE sks_x5u_fetches_total counter\n"
      "sks_x5u_fetches_total{result=\"ok\"} " +
      std::to_string(m.fetches - m.fetch_failures) + "\n" +
      "sks_x5u_fetches_total{result=\"failed\"} " + std::to_string(m.fetch_failures) + "\n" +
      "# HELP sks_x5u_fetch_duration_seconds x5u fetch latency.\n"
      "# TYPE sks_x5u_fetch_duration_seconds histogram\n";
  for (std::size_t i = 0; i < m.fetch_latency_bounds_s.size(); ++i) {
    out += "sks_x5u_fetch_duration_seconds_bucket{le=\"" + number(m.fetch_latency_bounds_s[i]) +
           "\"} " + std::to_string(m.fetch_latency_buckets[i]) + "\n";
  }
  const std::uint64_t total = m.fetch_latency_buckets.empty() ? 0 : m.fetch_latency_buckets.back();
  out += "sks_x5u_fetch_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(total) + "\n" +
         "sks_x5u_fetch_duration_seconds_sum " + number(m.fetch_latency_sum_s) + "\n" +
         "sks_x5u_fetch_duration_seconds_count " + std::to_string(total) + "\n";
  return out;
}

}  // namespace sks::server
