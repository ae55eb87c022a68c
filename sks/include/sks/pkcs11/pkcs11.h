// The PKCS#11 API as Debian ships it (p11-kit's header), plus the helpers
// every wrapper uses to turn a CK_RV into a stir::Error.
#pragma once

#include <p11-kit/pkcs11.h>

#include <string>
#include <string_view>

namespace sks::p11 {

// "CKR_PIN_INCORRECT" for 0xA0; "CKR_0x..." for values it does not know.
std::string ckr_name(CK_RV rv);

// Throws stir::Error::pkcs11 naming `function` unless rv is CKR_OK.
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
