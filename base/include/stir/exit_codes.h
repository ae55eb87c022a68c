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
//   75 `sks serve`: a call into the token module did not return (a thread
//      stuck inside the PKCS#11 library, e.g. a network HSM's client that
//      waits for a reply forever): the process cannot finalise the module
//      under that thread, so it ends at once for its supervisor to restart
//      it (sks/pkcs11/recovery.h, TokenWatchdog; README "When the token
//      fails")
//   77 permission (PIN file mode, wrong PIN)
//   78 configuration error
#pragma once

#include <functional>
#include <string_view>

#include "stir/error.h"

namespace stir {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalidToken = 1;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitTokenWedged = 75;

int exit_code_for(ErrorCode code) noexcept;

// The first thing every program of the project does, before it loads a
// PKCS#11 module or opens a socket: a write to a pipe or socket whose reader
// is gone then fails with EPIPE in the caller instead of killing the process
// with SIGPIPE. Our own socket writes already handle EPIPE; the ones that
// matter are in libraries we call: p11-kit-client.so and a network HSM's
// client library write to their server's socket with plain write(2), so
// without this an HSM that goes away would end `sks serve` with exit 141
// instead of its circuit breaker answering 503. Ignored rather than blocked:
// an ignored signal is never left pending for a thread that unblocks it
// later. Children we spawn get the default back (posix_spawn with
// POSIX_SPAWN_SETSIGDEF), so a step script's pipeline behaves as in a shell.
void ignore_broken_pipes() noexcept;

// Ends the process now with `code`, after "PROGRAM: message" on stderr,
// without running destructors or atexit handlers: for a thread stuck in a
// library that nothing else may wait for (kExitTokenWedged). Safe from any
// thread.
[[noreturn]] void exit_at_once(std::string_view program, int code,
                               std::string_view message) noexcept;

// main() of every program: ignore_broken_pipes(), then `body`. A stir::Error
// it throws becomes "PROGRAM: message" on stderr and exit_code_for(code);
// any other exception "PROGRAM: internal error: ..." and 70.
int run_main(std::string_view program, const std::function<int()>& body) noexcept;

}  // namespace stir
