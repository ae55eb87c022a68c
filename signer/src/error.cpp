#include "stir/error.h"

namespace stir {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kMalformed:
      return "malformed input";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kAlreadyExists:
      return "already exists";
    case ErrorCode::kPermission:
      return "permission";
    case ErrorCode::kConfig:
      return "configuration";
    case ErrorCode::kPinIncorrect:
      return "PIN incorrect";
    case ErrorCode::kPkcs11:
      return "PKCS#11";
    case ErrorCode::kCrypto:
      return "crypto";
    case ErrorCode::kIo:
      return "I/O";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

Error Error::pkcs11(std::string_view function, unsigned long rv, std::string_view rv_name,
                    std::string_view context) {
  // Values from PKCS#11 v2.40; repeated here so this file needs no PKCS#11 header.
  constexpr unsigned long kPinIncorrect = 0xA0;
  constexpr unsigned long kPinLenRange = 0xA2;
  const ErrorCode code =
      (rv == kPinIncorrect || rv == kPinLenRange) ? ErrorCode::kPinIncorrect : ErrorCode::kPkcs11;
  std::string message(function);
  message += ": ";
  message += rv_name;
  if (!context.empty()) {
    message += " (";
    message += context;
    message += ")";
  }
  Error error(code, message);
  error.function_ = function;
  error.rv_ = rv;
  error.rv_name_ = rv_name;
  return error;
}

}  // namespace stir
