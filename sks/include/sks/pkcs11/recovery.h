// Brings a token back without a restart: a thread that waits for the
// pool's circuit breaker to open, then reconnects (close the sessions,
// C_Finalize, C_Initialize, find the token, log in, open the sessions,
// look every key handle up again, sign and verify a test digest with each
// key) and closes the breaker once that all worked. A failed try is
// retried after a back-off (100 ms doubling to `max_backoff`).
//
// Ownership: borrows the token, its pool and key store (all must outlive
// it); owns its thread, which the destructor stops and joins.
// Threads: the reconnect holds SessionPool::exclusive(), so it starts only
// after every lease has come back; while the breaker is open no new
// signature takes one. Errors: none escape; failures are logged to stderr
// and counted (sks_token_reconnects_total{result="failed"}).
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "sks/pkcs11/key_store.h"

namespace sks::p11 {

class TokenRecovery {
 public:
  TokenRecovery(Token& token, SessionPool& pool, KeyStore& keys,
                std::chrono::milliseconds max_backoff = std::chrono::seconds(2));
  ~TokenRecovery();
  TokenRecovery(const TokenRecovery&) = delete;
  TokenRecovery& operator=(const TokenRecovery&) = delete;

  // One reconnect now (the thread's step; tests may call it directly).
  // Throws stir::Error when the token is not back.
  void reconnect();

 private:
  void run();

  Token& token_;
  SessionPool& pool_;
  KeyStore& keys_;
  const std::chrono::milliseconds max_backoff_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sks::p11
