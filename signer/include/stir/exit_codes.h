// The one place where failures become process exit codes, for every
// program of the project (sks, tn-cr, sti-dev-ca). sysexits.h values, so
// scripts and Ansible can tell the kinds apart:
//
//   0  success
//   1  `sks verify`: the token is not valid
//   64 usage error (bad command line)
//   65 bad input data (claims, labels, names, malformed files)
//   66 not found (key, token, file, published name)
//   69 unavailable (PKCS#11 or OpenSSL failure, token down)
//   70 internal error
//   73 already exists (would change something that must not change)
//   74 I/O error
//   77 permission (PIN file mode, wrong PIN)
//   78 configuration error
#pragma once

#include "stir/error.h"

namespace stir {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalidToken = 1;
inline constexpr int kExitUsage = 64;

int exit_code_for(ErrorCode code) noexcept;

}  // namespace stir
