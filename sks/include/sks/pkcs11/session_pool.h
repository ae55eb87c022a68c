// A fixed number of sessions on one token, leased exclusively: a PKCS#11
// session runs one operation at a time, so two threads never share one.
//
// Ownership: the pool borrows the Token (which must outlive it) and owns its
// sessions; a Lease borrows one session and gives it back on destruction.
// Every Lease must be gone before the pool is destroyed.
// Threads: acquire() may be called from any thread; it blocks while all
// sessions are leased. A Lease itself is used by one thread.
// Errors: stir::Error from C_OpenSession when a session must be (re)opened.
//
// Reconnecting (recovery.h): every lease holds the pool's gate shared;
// exclusive() waits for every lease to come back and keeps new ones out,
// so the module can be finalised and initialised again while no thread
// is inside it. Sessions opened in place of lost ones are "fresh" until
// their first signature, which the signature check then verifies.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "sks/pkcs11/circuit_breaker.h"
#include "sks/pkcs11/token.h"

namespace sks::p11 {

class SessionPool {
 public:
  class Lease {
   public:
    ~Lease();
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    // Exclusive by design: a copy would let two threads share a session.
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    CK_SESSION_HANDLE handle() const noexcept { return session_; }
    // The session is lost (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED):
    // open a fresh one in its place (the lost handle is not closed).
    void replace();
    // Closes the session (a device fault, a bad signature); replace() or
    // the pool opens a fresh one when next needed.
    void discard() noexcept;
    // Opened after an error and not yet used for a signature.
    bool fresh() const noexcept { return fresh_; }
    void mark_used() noexcept { fresh_ = false; }

   private:
    friend class SessionPool;
    Lease(SessionPool* pool, CK_SESSION_HANDLE session, bool fresh,
          std::shared_lock<std::shared_timed_mutex> gate)
        : pool_(pool), session_(session), fresh_(fresh), gate_(std::move(gate)) {}
    SessionPool* pool_;
    CK_SESSION_HANDLE session_;
    bool fresh_;
    std::shared_lock<std::shared_timed_mutex> gate_;
  };

  // Opens `size` sessions now, so a broken token fails at start-up, not on
  // the first request. size 0 means one per CPU core.
  SessionPool(Token& token, std::size_t size);
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  // Blocks until a session is free.
  Lease acquire();
  // Waits at most `timeout`; nullopt when every session stayed leased (the
  // signing path: a lease held by a call that never returns must not hold
  // the next request's thread for good).
  std::optional<Lease> try_acquire_for(std::chrono::nanoseconds timeout);

  // Called with the time each acquire() waited for a session (metrics). Set
  // it before the pool is shared between threads; it must be thread-safe.
  void set_wait_observer(std::function<void(std::chrono::nanoseconds)> observer) {
    wait_observer_ = std::move(observer);
  }

  // Held while the module is reconnected: no lease is out, none is given.
  std::unique_lock<std::shared_timed_mutex> exclusive() {
    return std::unique_lock<std::shared_timed_mutex>(gate_);
  }
  // The same, waiting at most `timeout` (owns_lock() false then): a lease
  // held by a call that never returns must not stop the recovery for good.
  std::unique_lock<std::shared_timed_mutex> try_exclusive_for(std::chrono::nanoseconds timeout) {
    return std::unique_lock<std::shared_timed_mutex>(gate_, timeout);
  }
  // Held by users of the token outside a lease (the anchor session).
  std::shared_lock<std::shared_timed_mutex> shared() {
    return std::shared_lock<std::shared_timed_mutex>(gate_);
  }
  std::shared_lock<std::shared_timed_mutex> try_shared_for(std::chrono::nanoseconds timeout) {
    return std::shared_lock<std::shared_timed_mutex>(gate_, timeout);
  }
  // With exclusive() held: closes every session (errors ignored; after a
  // device reset they are gone anyway)...
  void close_all() noexcept;
  // ... and, once the token is back, opens them all again, fresh.
  void reopen_all();

  // The token's circuit breaker (circuit_breaker.h).
  CircuitBreaker& breaker() noexcept { return breaker_; }

  std::size_t size() const noexcept { return size_; }
  // Sessions replaced after being lost, since start.
  std::uint64_t replaced() const noexcept { return replaced_.load(); }
  Token& token() const noexcept { return token_; }

  // Why the token cannot sign now, or empty: the breaker is open, the
  // anchor session is lost (C_GetSessionInfo; a token found down or
  // faulty trips the breaker) or the token is not logged in. For /readyz.
  // Bounded: waits for the gate and the module at most the call timeout.
  std::string readiness();

 private:
  struct Idle {
    CK_SESSION_HANDLE session;  // CK_INVALID_HANDLE: reopen before use
    bool fresh;
  };
  Lease take_locked(std::unique_lock<std::mutex>& lock,
                    std::shared_lock<std::shared_timed_mutex> gate);
  void give_back(CK_SESSION_HANDLE session, bool fresh) noexcept;

  Token& token_;
  const std::size_t size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::shared_timed_mutex gate_;  // taken before mutex_, never after
  std::vector<Idle> idle_;
  CircuitBreaker breaker_;
  std::atomic<std::uint64_t> replaced_{0};
  std::function<void(std::chrono::nanoseconds)> wait_observer_;
};

}  // namespace sks::p11
