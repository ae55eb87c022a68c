// The one error type used across every module of the project.
//
// Each failure carries an ErrorCode (what kind of failure, which decides the
// CLI exit code and, later, the HTTP status, each mapped in exactly one
// place) and a human-readable message. A layer may derive its own error
// with more facts (the PKCS#11 layer's p11::Pkcs11Error names the C_
// function and its CKR value); callers that need only the kind catch Error.
//
// Messages never contain PINs or key material.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace stir {

enum class ErrorCode {
  kInvalidArgument,  // caller input is wrong (claims, options, labels)
  kMalformed,        // input could not be parsed (JSON, PEM, Identity header)
  kNotFound,         // key, token, file or certificate does not exist
  kAlreadyExists,    // would overwrite something that must not change
  kPermission,       // file modes, PIN file readable by others
  kConfig,           // configuration file missing or invalid
  kPinIncorrect,     // token refused the PIN; never retried
  kPkcs11,           // any other PKCS#11 failure
  kCrypto,           // OpenSSL failure
  kIo,               // file system or network I/O
  kInternal,         // a bug: a broken invariant
  kUnavailable,      // the token is down (circuit breaker open): try again later
};

std::string_view to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace stir
