// A fixed number of sessions on one token, leased exclusively: a PKCS#11
// session runs one operation at a time, so two threads never share one.
//
// Ownership: the pool borrows the Token (which must outlive it) and owns its
// sessions; a Lease borrows one session and gives it back on destruction.
// Every Lease must be gone before the pool is destroyed.
// Threads: acquire() may be called from any thread; it blocks while all
// sessions are leased. A Lease itself is used by one thread.
// Errors: stir::Error from C_OpenSession when a session must be (re)opened.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

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
    // close what is left of it and open a fresh one in its place.
    void replace();

   private:
    friend class SessionPool;
    Lease(SessionPool* pool, CK_SESSION_HANDLE session) : pool_(pool), session_(session) {}
    SessionPool* pool_;
    CK_SESSION_HANDLE session_;
  };

  // Opens `size` sessions now, so a broken token fails at start-up, not on
  // the first request. size 0 means one per CPU core.
  SessionPool(Token& token, std::size_t size);
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  // Blocks until a session is free.
  Lease acquire();
  // Waits at most `timeout`; nullopt when every session stayed leased.
  std::optional<Lease> try_acquire_for(std::chrono::nanoseconds timeout);

  // Called with the time each acquire() waited for a session (metrics). Set
  // it before the pool is shared between threads; it must be thread-safe.
  void set_wait_observer(std::function<void(std::chrono::nanoseconds)> observer) {
    wait_observer_ = std::move(observer);
  }

  std::size_t size() const noexcept { return size_; }
  // Sessions replaced after being lost, since start.
  std::uint64_t replaced() const noexcept { return replaced_.load(); }
  Token& token() const noexcept { return token_; }

 private:
  Lease take_locked(std::unique_lock<std::mutex>& lock);
  void give_back(CK_SESSION_HANDLE session) noexcept;

  Token& token_;
  const std::size_t size_;
  std::mutex mutex_;
  std::condition_variable available_;
  // Idle sessions; CK_INVALID_HANDLE marks a slot whose session must be reopened.
  std::vector<CK_SESSION_HANDLE> idle_;
  std::atomic<std::uint64_t> replaced_{0};
  std::function<void(std::chrono::nanoseconds)> wait_observer_;
};

}  // namespace sks::p11
