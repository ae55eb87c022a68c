// A loaded PKCS#11 module (dlopen + C_GetFunctionList + C_Initialize), and
// the one door every call into it goes through (call()).
//
// Ownership: owns the library handle; the destructor calls C_Finalize and
// dlclose. Move-only: two owners would finalise the module twice.
// Threads: initialised with CKF_OS_LOCKING_OK, so the module may be called
// from any thread (SoftHSM turns its locking off with NULL init args).
// Errors: stir::Error (kNotFound when the file cannot be loaded, kPkcs11
// naming the C_ function otherwise, kUnavailable from call() below).
//
// Calls (CallPolicy): call() records every call in flight with its start,
// so a watchdog (watchdog.h) can see one that does not return: the module
// has no timeout of its own, and a network HSM's client library can wait
// forever. With `serial`, one call at a time is inside the module and a
// caller waits at most `timeout` for its turn (then kUnavailable, the call
// not made). That is what p11-kit-client.so needs (Debian 12's 0.24.1, and
// upstream still): its RPC client sends every thread's request over one
// socket and lets whichever thread holds the read lock read the next reply
// header; a header for another thread is left in the socket state
// (read_code) for its owner, and the others wait on a condition variable
// until it changes. When the connection breaks after a reply's header but
// before its body (p11-kit-remote writes them with separate write(2)s, so
// a killed server does this now and then), the owner fails and returns
// without clearing read_code or signalling; every other thread with a
// request in flight then waits in that condition variable forever, inside
// C_Sign, holding its session. With one request in flight at a time a
// reader only ever reads its own reply, so a break fails every call with
// CKR_DEVICE_ERROR instead. The server side runs one connection's calls
// one after another anyway, so serial calls cost no throughput there.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "sks/pkcs11/pkcs11.h"

namespace sks::p11 {

struct CallPolicy {
  // One call at a time (see above).
  bool serial = false;
  // How long a caller waits for its turn when serial; also the bound after
  // which the watchdog counts a call in flight as a dead token.
  std::chrono::milliseconds timeout{5000};

  // serial for p11-kit's RPC client (file name p11-kit-client.so), whose
  // connection cannot carry concurrent calls safely; parallel otherwise.
  static CallPolicy for_module(const std::string& path);
};

// The oldest call in flight (call()).
struct CallInFlight {
  std::string function;
  std::chrono::steady_clock::duration age{};
  std::size_t in_flight = 0;  // calls in flight now, this one included
};

class Module {
 public:
  // Loads the module at `path`. The environment the module reads (for
  // example SOFTHSM2_CONF) must be set before this call.
  explicit Module(const std::string& path);
  Module(const std::string& path, CallPolicy policy);
  ~Module();

  Module(Module&& other) noexcept;
  Module& operator=(Module&&) = delete;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // C_Finalize, then C_Initialize again: what a token that was pulled or
  // reset needs before it answers again. Every session and login of the
  // process is gone afterwards; the caller makes sure no other thread is
  // inside the module (SessionPool::exclusive()). The function table stays
  // valid. Throws stir::Error naming C_Initialize.
  void reinitialize() const;

  // Runs `c` (one C_ function of api(), named `function`) as a call in
  // flight: waits for its turn when serial (kUnavailable after
  // policy().timeout), and is seen by oldest_call() until it returns.
  // Never nest: `c` must not call call() again.
  template <class Call>
  CK_RV call(const char* function, Call&& c) const {
    const Scope scope(*this, function);
    return std::forward<Call>(c)();
  }

  // The oldest call in flight, or nullopt when none is.
  std::optional<CallInFlight> oldest_call() const;
  const CallPolicy& policy() const noexcept { return policy_; }

  // The module's function table; valid for this object's lifetime. Call
  // its functions through call().
  CK_FUNCTION_LIST* api() const noexcept { return api_; }
  const std::string& path() const noexcept { return path_; }

 private:
  struct Calls;
  class Scope {
   public:
    Scope(const Module& module, const char* function);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Calls& calls_;
    std::uint64_t id_ = 0;
    bool serial_ = false;
  };

  std::string path_;
  CallPolicy policy_;
  std::unique_ptr<Calls> calls_;
  void* library_ = nullptr;
  CK_FUNCTION_LIST* api_ = nullptr;
  bool finalize_ = false;  // false when someone else initialised it first
};

}  // namespace sks::p11
