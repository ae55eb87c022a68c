// What both HTTPS servers (`sks serve`, `tn-cr serve`) check of their TLS
// files before they read them, so that a file another local user controls
// never decides who the server is, or (sks) who may sign.
//
// Every file (certificate chain, key, client CA file when mutual TLS is on):
// - a regular file, owned by the user the server runs as or by root: any
//   other owner could replace the key, or add a CA that lets anyone in;
// - not writable by group or others (chmod go-w).
// The TLS private key, in addition:
// - never readable by others;
// - readable by the group only when root owns it (root:sks 0640, the usual
//   way to hand a root-managed key to a service user); a key the service
//   user owns is 0600 or 0400.
// sks's PIN file has its own rule (owner only, sks/secret.h), checked where
// it is read.
//
// Errors: stir::Error(kNotFound) for a missing file, stir::Error(kPermission)
// (exit 77) naming the file, what is wrong and the command that fixes it.
// Threads: stateless. `euid` is the effective user to compare with;
// `program` ("sks", "tn-cr") names the server in the messages.
#pragma once

#include <sys/types.h>

#include <string_view>

#include "stir/http/tls.h"

namespace stir::http {

void check_tls_files(const TlsSettings& settings, uid_t euid, std::string_view program);

}  // namespace stir::http
