#include "sks/pkcs11/session_pool.h"

#include <thread>
#include <utility>

namespace sks::p11 {

SessionPool::SessionPool(Token& token, std::size_t size)
    : token_(token), size_(size != 0 ? size : std::max(1u, std::thread::hardware_concurrency())) {
  idle_.reserve(size_);
  try {
    for (std::size_t i = 0; i < size_; ++i) idle_.push_back({token_.open_session(), false});
  } catch (...) {
    for (const Idle& s : idle_) token_.close_session(s.session);
    throw;
  }
}

SessionPool::~SessionPool() {
  for (const Idle& s : idle_) {
    if (s.session != CK_INVALID_HANDLE) token_.close_session(s.session);
  }
}

SessionPool::Lease SessionPool::take_locked(std::unique_lock<std::mutex>& lock,
                                            std::shared_lock<std::shared_timed_mutex> gate) {
  Idle idle = idle_.back();
  idle_.pop_back();
  if (idle.session != CK_INVALID_HANDLE)
    return Lease(this, idle.session, idle.fresh, std::move(gate));
  // Reopen outside the lock: C_OpenSession can be slow on a network HSM.
  lock.unlock();
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  try {
    session = token_.open_session();
  } catch (...) {
    give_back(CK_INVALID_HANDLE, true);
    throw;
  }
  return Lease(this, session, true, std::move(gate));
}

SessionPool::Lease SessionPool::acquire() {
  std::shared_lock gate(gate_);
  if (!wait_observer_) {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !idle_.empty(); });
    return take_locked(lock, std::move(gate));
  }
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty(); });
  wait_observer_(std::chrono::steady_clock::now() - start);
  return take_locked(lock, std::move(gate));
}

std::optional<SessionPool::Lease> SessionPool::try_acquire_for(std::chrono::nanoseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::shared_lock gate(gate_, deadline);
  if (!gate.owns_lock()) return std::nullopt;
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  if (!available_.wait_until(lock, deadline, [this] { return !idle_.empty(); })) {
    return std::nullopt;
  }
  if (wait_observer_) wait_observer_(std::chrono::steady_clock::now() - start);
  return take_locked(lock, std::move(gate));
}

void SessionPool::give_back(CK_SESSION_HANDLE session, bool fresh) noexcept {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back({session, fresh});
  }
  available_.notify_one();
}

void SessionPool::close_all() noexcept {
  std::lock_guard lock(mutex_);
  for (Idle& s : idle_) {
    if (s.session != CK_INVALID_HANDLE) token_.close_session(s.session);
    s = {CK_INVALID_HANDLE, true};
  }
}

void SessionPool::reopen_all() {
  std::lock_guard lock(mutex_);
  for (Idle& s : idle_) {
    if (s.session == CK_INVALID_HANDLE) s = {token_.open_session(), true};
  }
}

SessionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      session_(std::exchange(other.session_, CK_INVALID_HANDLE)),
      fresh_(other.fresh_),
      gate_(std::move(other.gate_)) {}

SessionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->give_back(session_, fresh_);
}

void SessionPool::Lease::replace() {
  // Never C_CloseSession a lost handle: the module may already have given
  // the same number to another thread's new session.
  session_ = CK_INVALID_HANDLE;  // if reopening throws, the pool reopens it later
  fresh_ = true;
  session_ = pool_->token_.open_session();
  pool_->replaced_.fetch_add(1);
}

void SessionPool::Lease::discard() noexcept {
  if (session_ != CK_INVALID_HANDLE) pool_->token_.close_session(session_);
  session_ = CK_INVALID_HANDLE;
  fresh_ = true;
}

std::string SessionPool::readiness() {
  if (!breaker().allow()) return "token unavailable: " + breaker().reason();
  CK_SESSION_INFO info{};
  CK_RV rv = CKR_OK;
  const Module& module = token().module();
  try {
    // No reconnect while the anchor session is used; bounded, as every
    // wait on the token (a reconnect stuck in the module holds the gate).
    const auto gate = try_shared_for(module.policy().timeout);
    if (!gate.owns_lock()) return "token reconnecting";
    const Token& t = token();
    rv = module.call("C_GetSessionInfo",
                     [&] { return t.api()->C_GetSessionInfo(t.anchor_session(), &info); });
  } catch (const stir::Error& e) {
    return e.what();  // the module busy with a call that does not return
  }
  if (is_token_down(rv) || is_device_fault(rv)) breaker().trip("C_GetSessionInfo " + ckr_name(rv));
  if (rv != CKR_OK) return "token session: " + ckr_name(rv);
  if (info.state != CKS_RW_USER_FUNCTIONS && info.state != CKS_RO_USER_FUNCTIONS) {
    return "token is not logged in";
  }
  return {};
}

}  // namespace sks::p11
