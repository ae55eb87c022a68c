#include "sks/pkcs11/recovery.h"

#include <algorithm>
#include <cstdio>

#include "stir/error.h"

namespace sks::p11 {

TokenRecovery::TokenRecovery(Token& token, SessionPool& pool, KeyStore& keys,
                             std::chrono::milliseconds max_backoff)
    : token_(token), pool_(pool), keys_(keys), max_backoff_(max_backoff) {
  thread_ = std::thread([this] { run(); });
}

TokenRecovery::~TokenRecovery() {
  stop_.store(true);
  pool_.breaker().notify();
  thread_.join();
}

void TokenRecovery::reconnect() {
  auto exclusive = pool_.exclusive();
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

}  // namespace sks::p11
