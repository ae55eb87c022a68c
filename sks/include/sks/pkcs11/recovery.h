// Brings a token back without a restart, and makes sure a token that does
// not answer at all never hangs the process.
//
// TokenRecovery: a thread that waits for the pool's circuit breaker to
// open, then reconnects (close the sessions, C_Finalize, C_Initialize,
// find the token, log in, open the sessions, look every key handle up
// again, sign and verify a test digest with each key) and closes the
// breaker once that all worked. A failed try is retried after a back-off
// (100 ms doubling to `max_backoff`).
//
// TokenWatchdog: a thread that never calls the module and looks at its
// calls in flight (Module::oldest_call()) every `period`. A call older
// than the module's CallPolicy::timeout counts as a dead token: the
// breaker opens (503 POL5003 with Retry-After at once, /readyz fails) and
// TokenRecovery starts reconnecting as soon as that call has returned. A
// call older than `wedged_after` will not return: a thread is stuck inside
// the module (a network HSM's client waiting for a reply that never
// comes), holding a session the module cannot be finalised under, so
// nothing in the process can bring the token back. `on_wedged` runs once
// then; for `sks serve` it ends the process with exit code 75
// (stir::kExitTokenWedged) so its supervisor starts a fresh one.
//
// Ownership: both borrow the token, its pool and key store (all must
// outlive them) and own their thread, which the destructor stops and joins.
// Threads: the reconnect holds SessionPool::exclusive(), so it starts only
// after every lease has come back; it waits for that at most the call
// timeout, then fails (and is tried again). While the breaker is open no
// new signature takes a lease. Errors: none escape; failures are logged to
// stderr and counted (sks_token_reconnects_total{result="failed"}).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "sks/pkcs11/key_store.h"

namespace sks::p11 {

class TokenRecovery {
 public:
  TokenRecovery(Token& token, SessionPool& pool, KeyStore& keys,
                std::chrono::milliseconds max_backoff = std::chrono::seconds(2));
  // Stops the thread and joins it. When the module may be stuck, call
  // stop_for() first and destroy this only when it returned true.
  ~TokenRecovery();
  TokenRecovery(const TokenRecovery&) = delete;
  TokenRecovery& operator=(const TokenRecovery&) = delete;

  // One reconnect now (the thread's step; tests may call it directly).
  // Throws stir::Error when the token is not back, kUnavailable when a
  // lease stayed out for the call timeout.
  void reconnect();

  // Tells the thread to stop and waits at most `timeout` for it to end;
  // false when it is still inside a call into the module.
  bool stop_for(std::chrono::milliseconds timeout);

 private:
  void run();

  Token& token_;
  SessionPool& pool_;
  KeyStore& keys_;
  const std::chrono::milliseconds max_backoff_;
  std::atomic<bool> stop_{false};
  std::mutex done_mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread thread_;
};

class TokenWatchdog {
 public:
  using Wedged = std::function<void(const CallInFlight& call)>;

  TokenWatchdog(const Module& module, CircuitBreaker& breaker,
                std::chrono::milliseconds wedged_after, Wedged on_wedged,
                std::chrono::milliseconds period = std::chrono::milliseconds(100));
  ~TokenWatchdog();
  TokenWatchdog(const TokenWatchdog&) = delete;
  TokenWatchdog& operator=(const TokenWatchdog&) = delete;

  // One look now (the thread's step).
  void check();

 private:
  const Module& module_;
  CircuitBreaker& breaker_;
  const std::chrono::milliseconds wedged_after_;
  const Wedged on_wedged_;
  const std::chrono::milliseconds period_;
  bool wedged_reported_ = false;  // the thread's only
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace sks::p11
