// The token as the service uses it: module loaded, token found, user logged
// in once, session pool open, key store ready. One per process.
//
// Ownership: owns all four parts and destroys them in the right order (keys
// and sessions before the token's anchor session, the module last).
// Threads: open() sets the module environment, so call it before starting
// threads; afterwards every part is safe to use concurrently.
// Errors: stir::Error; a wrong PIN is kPinIncorrect after exactly one
// C_Login, never retried.
#pragma once

#include <memory>

#include "sks/config.h"
#include "sks/pkcs11/key_store.h"
#include "sks/pkcs11/module.h"
#include "sks/pkcs11/recovery.h"
#include "sks/pkcs11/session_pool.h"
#include "sks/pkcs11/token.h"

namespace sks {

class Hsm {
 public:
  static std::unique_ptr<Hsm> open(const TokenConfig& config);

  p11::Module& module() noexcept { return module_; }
  p11::Token& token() noexcept { return token_; }
  p11::SessionPool& pool() noexcept { return pool_; }
  p11::KeyStore& keys() noexcept { return keys_; }

  // Starts the thread that reconnects the token when the circuit breaker
  // opens (p11::TokenRecovery) and the watchdog of calls that do not
  // return (p11::TokenWatchdog: the breaker opens after call_timeout_ms,
  // `on_wedged` runs once a call has been in the module for wedged_exit_s);
  // for long-lived processes (`sks serve`).
  void start_recovery(p11::TokenWatchdog::Wedged on_wedged = {});

  // Before the end of a long-lived process: stops the recovery and the
  // watchdog, waiting at most `timeout` for the recovery's current try.
  // False when a call into the module is still in flight (or the recovery
  // is stuck in one): then destroying this object, or anything with a
  // thread inside the module, would wait for that call, perhaps forever;
  // the process must end without (stir::exit_at_once).
  bool quiesce(std::chrono::milliseconds timeout);

 private:
  Hsm(const TokenConfig& config, const Secret& pin);

  const TokenConfig config_;
  p11::Module module_;
  p11::Token token_;
  p11::SessionPool pool_;
  p11::KeyStore keys_;
  std::unique_ptr<p11::TokenRecovery> recovery_;  // last: stopped first
  std::unique_ptr<p11::TokenWatchdog> watchdog_;
};

}  // namespace sks
