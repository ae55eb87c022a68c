#include <cstdio>

#include "sks/pkcs11/pkcs11.h"
#include "stir/error.h"

namespace sks::p11 {

std::string ckr_name(CK_RV rv) {
  switch (rv) {
#define SKS_CKR(name) \
  case name:          \
    return #name;
    SKS_CKR(CKR_OK)
    SKS_CKR(CKR_CANCEL)
    SKS_CKR(CKR_HOST_MEMORY)
    SKS_CKR(CKR_SLOT_ID_INVALID)
    SKS_CKR(CKR_GENERAL_ERROR)
    SKS_CKR(CKR_FUNCTION_FAILED)
    SKS_CKR(CKR_ARGUMENTS_BAD)
    SKS_CKR(CKR_NO_EVENT)
    SKS_CKR(CKR_NEED_TO_CREATE_THREADS)
    SKS_CKR(CKR_CANT_LOCK)
    SKS_CKR(CKR_ATTRIBUTE_READ_ONLY)
    SKS_CKR(CKR_ATTRIBUTE_SENSITIVE)
    SKS_CKR(CKR_ATTRIBUTE_TYPE_INVALID)
    SKS_CKR(CKR_ATTRIBUTE_VALUE_INVALID)
    SKS_CKR(CKR_DATA_INVALID)
    SKS_CKR(CKR_DATA_LEN_RANGE)
    SKS_CKR(CKR_DEVICE_ERROR)
    SKS_CKR(CKR_DEVICE_MEMORY)
    SKS_CKR(CKR_DEVICE_REMOVED)
    SKS_CKR(CKR_FUNCTION_CANCELED)
    SKS_CKR(CKR_FUNCTION_NOT_PARALLEL)
    SKS_CKR(CKR_FUNCTION_NOT_SUPPORTED)
    SKS_CKR(CKR_KEY_HANDLE_INVALID)
    SKS_CKR(CKR_KEY_SIZE_RANGE)
    SKS_CKR(CKR_KEY_TYPE_INCONSISTENT)
    SKS_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED)
    SKS_CKR(CKR_MECHANISM_INVALID)
    SKS_CKR(CKR_MECHANISM_PARAM_INVALID)
    SKS_CKR(CKR_OBJECT_HANDLE_INVALID)
    SKS_CKR(CKR_OPERATION_ACTIVE)
    SKS_CKR(CKR_OPERATION_NOT_INITIALIZED)
    SKS_CKR(CKR_PIN_INCORRECT)
    SKS_CKR(CKR_PIN_INVALID)
    SKS_CKR(CKR_PIN_LEN_RANGE)
    SKS_CKR(CKR_PIN_EXPIRED)
    SKS_CKR(CKR_PIN_LOCKED)
    SKS_CKR(CKR_SESSION_CLOSED)
    SKS_CKR(CKR_SESSION_COUNT)
    SKS_CKR(CKR_SESSION_HANDLE_INVALID)
    SKS_CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    SKS_CKR(CKR_SESSION_READ_ONLY)
    SKS_CKR(CKR_SESSION_EXISTS)
    SKS_CKR(CKR_SESSION_READ_ONLY_EXISTS)
    SKS_CKR(CKR_SESSION_READ_WRITE_SO_EXISTS)
    SKS_CKR(CKR_SIGNATURE_INVALID)
    SKS_CKR(CKR_SIGNATURE_LEN_RANGE)
    SKS_CKR(CKR_TEMPLATE_INCOMPLETE)
    SKS_CKR(CKR_TEMPLATE_INCONSISTENT)
    SKS_CKR(CKR_TOKEN_NOT_PRESENT)
    SKS_CKR(CKR_TOKEN_NOT_RECOGNIZED)
    SKS_CKR(CKR_TOKEN_WRITE_PROTECTED)
    SKS_CKR(CKR_USER_ALREADY_LOGGED_IN)
    SKS_CKR(CKR_USER_NOT_LOGGED_IN)
    SKS_CKR(CKR_USER_PIN_NOT_INITIALIZED)
    SKS_CKR(CKR_USER_TYPE_INVALID)
    SKS_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
    SKS_CKR(CKR_USER_TOO_MANY_TYPES)
    SKS_CKR(CKR_DOMAIN_PARAMS_INVALID)
    SKS_CKR(CKR_CURVE_NOT_SUPPORTED)
    SKS_CKR(CKR_BUFFER_TOO_SMALL)
    SKS_CKR(CKR_SAVED_STATE_INVALID)
    SKS_CKR(CKR_INFORMATION_SENSITIVE)
    SKS_CKR(CKR_STATE_UNSAVEABLE)
    SKS_CKR(CKR_CRYPTOKI_NOT_INITIALIZED)
    SKS_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    SKS_CKR(CKR_MUTEX_BAD)
    SKS_CKR(CKR_MUTEX_NOT_LOCKED)
    SKS_CKR(CKR_FUNCTION_REJECTED)
#undef SKS_CKR
    default: {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "CKR_0x%lX", rv);
      return buffer;
    }
  }
}

namespace {
std::string failure_message(std::string_view function, std::string_view rv_name,
                            std::string_view context) {
  std::string message(function);
  message += ": ";
  message += rv_name;
  if (!context.empty()) {
    message += " (";
    message += context;
    message += ")";
  }
  return message;
}
}  // namespace

Pkcs11Error::Pkcs11Error(std::string_view function, CK_RV rv, std::string_view context)
    : stir::Error(rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE
                      ? stir::ErrorCode::kPinIncorrect
                      : stir::ErrorCode::kPkcs11,
                  failure_message(function, ckr_name(rv), context)),
      function_(function),
      rv_(rv),
      rv_name_(ckr_name(rv)) {}

void check(CK_RV rv, std::string_view function, std::string_view context) {
  if (rv != CKR_OK) throw Pkcs11Error(function, rv, context);
}

}  // namespace sks::p11
