// The token's circuit breaker: closed while the token answers, open from
// the moment it is found down until a reconnect has proved it back.
//
// While open, nothing on the signing path calls the token: requests fail at
// once with stir::Error kUnavailable (HTTP 503 POL5003 with Retry-After), so
// they never pile up behind a dead token, and /readyz fails. TokenRecovery
// (recovery.h) waits for the breaker to open, reconnects, and closes it.
//
// Ownership: one per SessionPool (SessionPool::breaker()).
// Threads: every member is safe to call from any thread; allow() is one
// atomic load. Errors: none, except check() which throws kUnavailable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace sks::p11 {

class CircuitBreaker {
 public:
  // Retry-After (seconds) told to clients while the breaker is open.
  static constexpr int kRetryAfterSeconds = 1;

  bool allow() const noexcept { return !open_.load(std::memory_order_acquire); }
  // Throws stir::Error kUnavailable naming the reason while open.
  void check() const;
  // Opens the breaker (the first reason is kept until it closes).
  void trip(const std::string& reason);
  // Closes it after a successful reconnect.
  void close();
  // Why it is open; empty while closed.
  std::string reason() const;

  // Blocks until the breaker is open or `stop` becomes true (notify()).
  void wait_open(const std::atomic<bool>& stop);
  // Waits at most `timeout` for `stop` (recovery's back-off between tries).
  void wait_for_stop(const std::atomic<bool>& stop, std::chrono::milliseconds timeout);
  void notify();

  // Counters for /metrics.
  void count_retry() noexcept { retries_.fetch_add(1); }
  void count_reconnect(bool ok) noexcept { (ok ? reconnects_ : reconnect_failures_).fetch_add(1); }
  // Prometheus text: state, trips, reconnects, retries.
  std::string render_metrics() const;

 private:
  std::atomic<bool> open_{false};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string reason_;
  std::atomic<std::uint64_t> trips_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> reconnect_failures_{0};
};

}  // namespace sks::p11
