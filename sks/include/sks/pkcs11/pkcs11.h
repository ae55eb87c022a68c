// The PKCS#11 API as Debian ships it (p11-kit's header), plus the helpers
// every wrapper uses to turn a CK_RV into a stir::Error.
#pragma once

#include <p11-kit/pkcs11.h>

#include <string>
#include <string_view>

#include "stir/error.h"

namespace sks::p11 {

// "CKR_PIN_INCORRECT" for 0xA0; "CKR_0x..." for values it does not know.
std::string ckr_name(CK_RV rv);

// A failed C_ function, so an operator sees "C_Login: CKR_PIN_INCORRECT"
// rather than a number: a stir::Error whose message is "FUNCTION: CKR_NAME"
// (then " (context)" when given), kPinIncorrect for CKR_PIN_INCORRECT and
// CKR_PIN_LEN_RANGE, kPkcs11 for everything else. It keeps the function
// and the CK_RV for the metrics and the retry rules. Copyable; never
// throws but std::bad_alloc.
class Pkcs11Error : public stir::Error {
 public:
  Pkcs11Error(std::string_view function, CK_RV rv, std::string_view context = {});

  const std::string& function() const noexcept { return function_; }
  CK_RV rv() const noexcept { return rv_; }
  const std::string& rv_name() const noexcept { return rv_name_; }

 private:
  std::string function_;
  CK_RV rv_;
  std::string rv_name_;
};

// Throws Pkcs11Error naming `function` unless rv is CKR_OK.
void check(CK_RV rv, std::string_view function, std::string_view context = {});

// Errors that mean "this session is gone": replace it and retry once.
constexpr bool is_session_lost(CK_RV rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED;
}

// Errors that mean the device failed this call: discard the session and
// retry once on a fresh one; if that fails too, the token counts as down.
constexpr bool is_device_fault(CK_RV rv) {
  return rv == CKR_DEVICE_ERROR || rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_MEMORY ||
         rv == CKR_FUNCTION_FAILED;
}

// Errors that mean the token is gone until the module is initialised again.
constexpr bool is_token_down(CK_RV rv) {
  return rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED ||
         rv == CKR_TOKEN_NOT_RECOGNIZED || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

// Errors that mean a cached object handle is stale: look it up again.
constexpr bool is_object_handle_stale(CK_RV rv) {
  return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

}  // namespace sks::p11
