#include "sks/pkcs11/recovery.h"

#include <algorithm>
#include <cstdio>

#include "stir/error.h"

namespace sks::p11 {

namespace {
long long millis(std::chrono::steady_clock::duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}
}  // namespace

TokenRecovery::TokenRecovery(Token& token, SessionPool& pool, KeyStore& keys,
                             std::chrono::milliseconds max_backoff)
    : token_(token), pool_(pool), keys_(keys), max_backoff_(max_backoff) {
  thread_ = std::thread([this] {
    run();
    std::lock_guard lock(done_mutex_);
    done_ = true;
    done_changed_.notify_all();
  });
}

TokenRecovery::~TokenRecovery() {
  stop_.store(true);
  pool_.breaker().notify();
  thread_.join();
}

bool TokenRecovery::stop_for(std::chrono::milliseconds timeout) {
  stop_.store(true);
  pool_.breaker().notify();
  std::unique_lock lock(done_mutex_);
  return done_changed_.wait_for(lock, timeout, [this] { return done_; });
}

void TokenRecovery::reconnect() {
  const Module& module = token_.module();
  auto exclusive = pool_.try_exclusive_for(module.policy().timeout);
  if (!exclusive.owns_lock()) {
    const auto oldest = module.oldest_call();
    throw stir::Error(stir::ErrorCode::kUnavailable,
                      "a token session was still in use after " +
                          std::to_string(module.policy().timeout.count()) + " ms" +
                          (oldest ? " (" + oldest->function + " has not returned for " +
                                        std::to_string(millis(oldest->age)) + " ms)"
                                  : std::string()));
  }
  pool_.close_all();
  token_.reconnect();
  pool_.reopen_all();
  keys_.reconnected(token_.anchor_session());
}

void TokenRecovery::run() {
  CircuitBreaker& breaker = pool_.breaker();
  for (;;) {
    breaker.wait_open(stop_);
    if (stop_.load()) return;
    std::fprintf(stderr, "token down (%s): reconnecting\n", breaker.reason().c_str());
    std::chrono::milliseconds backoff(100);
    while (!stop_.load()) {
      try {
        reconnect();
        breaker.count_reconnect(true);
        breaker.close();
        std::fprintf(stderr, "token back: reconnected, logged in, key handles resolved\n");
        break;
      } catch (const std::exception& e) {
        breaker.count_reconnect(false);
        std::fprintf(stderr, "token reconnect failed, next try in %lld ms: %s\n",
                     static_cast<long long>(backoff.count()), e.what());
      }
      breaker.wait_for_stop(stop_, backoff);
      backoff = std::min(backoff * 2, max_backoff_);
    }
  }
}

TokenWatchdog::TokenWatchdog(const Module& module, CircuitBreaker& breaker,
                             std::chrono::milliseconds wedged_after, Wedged on_wedged,
                             std::chrono::milliseconds period)
    : module_(module),
      breaker_(breaker),
      wedged_after_(wedged_after),
      on_wedged_(std::move(on_wedged)),
      period_(period) {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, period_, [this] { return stop_.load(); })) {
      lock.unlock();
      check();
      lock.lock();
    }
  });
}

TokenWatchdog::~TokenWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  thread_.join();
}

void TokenWatchdog::check() {
  const auto oldest = module_.oldest_call();
  if (!oldest || oldest->age < module_.policy().timeout) {
    wedged_reported_ = false;
    return;
  }
  // Opening an open breaker changes nothing (the first reason stays).
  breaker_.trip(oldest->function + " has not returned for " + std::to_string(millis(oldest->age)) +
                " ms");
  if (oldest->age >= wedged_after_ && !wedged_reported_) {
    wedged_reported_ = true;
    if (on_wedged_) on_wedged_(*oldest);
  }
}

}  // namespace sks::p11
