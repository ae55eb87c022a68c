// The one error type used across every module of the project.
//
// Each failure carries an ErrorCode (what kind of failure, which decides the
// CLI exit code and, later, the HTTP status, each mapped in exactly one
// place) and a human-readable message. PKCS#11 failures also carry the name
// of the C_ function that failed and the CKR value, so an operator sees
// "C_Login: CKR_PIN_INCORRECT" rather than a number.
//
// Messages never contain PINs or key material.
#pragma once

#include <cstdint>
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

  // A PKCS#11 failure: `function` is the C_ function, `rv` its CK_RV and
  // `rv_name` the CKR_ name (the table lives in sks/, the signer library
  // knows nothing of PKCS#11). CKR_PIN_INCORRECT and CKR_PIN_LEN_RANGE
  // become kPinIncorrect, everything else kPkcs11.
  static Error pkcs11(std::string_view function, unsigned long rv, std::string_view rv_name,
                      std::string_view context = {});

  ErrorCode code() const noexcept { return code_; }
  // Non-empty only for PKCS#11 failures.
  const std::string& pkcs11_function() const noexcept { return function_; }
  unsigned long pkcs11_rv() const noexcept { return rv_; }
  const std::string& pkcs11_rv_name() const noexcept { return rv_name_; }

 private:
  ErrorCode code_;
  std::string function_;
  unsigned long rv_ = 0;
  std::string rv_name_;
};

}  // namespace stir
