// A loaded PKCS#11 module (dlopen + C_GetFunctionList + C_Initialize).
//
// Ownership: owns the library handle; the destructor calls C_Finalize and
// dlclose. Move-only: two owners would finalise the module twice.
// Threads: initialised with CKF_OS_LOCKING_OK, so the module may be called
// from any thread (SoftHSM turns its locking off with NULL init args).
// Errors: stir::Error (kNotFound when the file cannot be loaded, kPkcs11
// naming the C_ function otherwise).
#pragma once

#include <string>

#include "sks/pkcs11/pkcs11.h"

namespace sks::p11 {

class Module {
 public:
  // Loads the module at `path`. The environment the module reads (for
  // example SOFTHSM2_CONF) must be set before this call.
  explicit Module(const std::string& path);
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

  // The module's function table; valid for this object's lifetime.
  CK_FUNCTION_LIST* api() const noexcept { return api_; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  void* library_ = nullptr;
  CK_FUNCTION_LIST* api_ = nullptr;
  bool finalize_ = false;  // false when someone else initialised it first
};

}  // namespace sks::p11
