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

}  // namespace stir
