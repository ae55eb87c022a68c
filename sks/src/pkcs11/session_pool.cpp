#include "sks/pkcs11/session_pool.h"

#include <thread>
#include <utility>

namespace sks::p11 {

SessionPool::SessionPool(Token& token, std::size_t size)
    : token_(token), size_(size != 0 ? size : std::max(1u, std::thread::hardware_concurrency())) {
  idle_.reserve(size_);
  try {
    for (std::size_t i = 0; i < size_; ++i) idle_.push_back(token_.open_session());
  } catch (...) {
    for (CK_SESSION_HANDLE s : idle_) token_.close_session(s);
    throw;
  }
}

SessionPool::~SessionPool() {
  for (CK_SESSION_HANDLE s : idle_) {
    if (s != CK_INVALID_HANDLE) token_.close_session(s);
  }
}

SessionPool::Lease SessionPool::take_locked(std::unique_lock<std::mutex>& lock) {
  CK_SESSION_HANDLE session = idle_.back();
  idle_.pop_back();
  if (session != CK_INVALID_HANDLE) return Lease(this, session);
  // Reopen outside the lock: C_OpenSession can be slow on a network HSM.
  lock.unlock();
  try {
    session = token_.open_session();
  } catch (...) {
    give_back(CK_INVALID_HANDLE);
    throw;
  }
  return Lease(this, session);
}

SessionPool::Lease SessionPool::acquire() {
  if (!wait_observer_) {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !idle_.empty(); });
    return take_locked(lock);
  }
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty(); });
  wait_observer_(std::chrono::steady_clock::now() - start);
  return take_locked(lock);
}

std::optional<SessionPool::Lease> SessionPool::try_acquire_for(std::chrono::nanoseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!available_.wait_for(lock, timeout, [this] { return !idle_.empty(); })) return std::nullopt;
  return take_locked(lock);
}

void SessionPool::give_back(CK_SESSION_HANDLE session) noexcept {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(session);
  }
  available_.notify_one();
}

SessionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      session_(std::exchange(other.session_, CK_INVALID_HANDLE)) {}

SessionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->give_back(session_);
}

void SessionPool::Lease::replace() {
  pool_->token_.close_session(session_);
  session_ = CK_INVALID_HANDLE;  // if reopening throws, the pool reopens it later
  session_ = pool_->token_.open_session();
  pool_->replaced_.fetch_add(1);
}

}  // namespace sks::p11
