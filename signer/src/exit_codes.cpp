#include "stir/exit_codes.h"

namespace stir {

int exit_code_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kMalformed:
      return 65;
    case ErrorCode::kNotFound:
      return 66;
    case ErrorCode::kPkcs11:
    case ErrorCode::kCrypto:
    case ErrorCode::kUnavailable:
      return 69;
    case ErrorCode::kInternal:
      return 70;
    case ErrorCode::kAlreadyExists:
      return 73;
    case ErrorCode::kIo:
      return 74;
    case ErrorCode::kPermission:
    case ErrorCode::kPinIncorrect:
      return 77;
    case ErrorCode::kConfig:
      return 78;
  }
  return 70;
}

}  // namespace stir
