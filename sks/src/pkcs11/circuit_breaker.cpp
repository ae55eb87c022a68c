#include "sks/pkcs11/circuit_breaker.h"

#include "stir/error.h"
#include "stir/metrics_text.h"

namespace sks::p11 {

void CircuitBreaker::check() const {
  if (allow()) return;
  throw stir::Error(stir::ErrorCode::kUnavailable, "token unavailable: " + reason());
}

void CircuitBreaker::trip(const std::string& reason) {
  {
    std::lock_guard lock(mutex_);
    if (open_.load()) return;
    reason_ = reason;
    open_.store(true, std::memory_order_release);
    trips_.fetch_add(1);
  }
  changed_.notify_all();
}

void CircuitBreaker::close() {
  {
    std::lock_guard lock(mutex_);
    reason_.clear();
    open_.store(false, std::memory_order_release);
  }
  changed_.notify_all();
}

std::string CircuitBreaker::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

void CircuitBreaker::wait_open(const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return open_.load() || stop.load(); });
}

void CircuitBreaker::wait_for_stop(const std::atomic<bool>& stop,
                                   std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return stop.load(); });
}

void CircuitBreaker::notify() {
  { std::lock_guard lock(mutex_); }  // a waiter between its check and its wait sees the change
  changed_.notify_all();
}

std::string CircuitBreaker::render_metrics() const {
  return stir::metric_family("sks_token_breaker_open", "gauge",
                             "1 while the token is down and requests get 503.",
                             {{"", allow() ? "0" : "1"}}) +
         stir::metric_family("sks_token_breaker_trips_total", "counter",
                             "Times the token was found down.",
                             {{"", std::to_string(trips_.load())}}) +
         stir::metric_family(
             "sks_token_reconnects_total", "counter",
             "Reconnects to the token (finalize, initialize, login, handles), by result.",
             {{"{result=\"ok\"}", std::to_string(reconnects_.load())},
              {"{result=\"failed\"}", std::to_string(reconnect_failures_.load())}}) +
         stir::metric_family("sks_token_retries_total", "counter",
                             "Signatures retried once on a fresh session.",
                             {{"", std::to_string(retries_.load())}});
}

}  // namespace sks::p11
