// What `sks serve` checks of its TLS files before it reads them, so that a
// file another local user controls never decides who may sign.
//
// Every file (server.tls_cert, server.tls_key, server.client_ca):
// - a regular file, owned by the user sks runs as or by root: any other
//   owner could replace the key, or add a CA that lets anyone sign;
// - not writable by group or others (chmod go-w).
// The TLS private key, in addition:
// - never readable by others;
// - readable by the group only when root owns it (root:sks 0640, the usual
//   way to hand a root-managed key to a service user); a key the service
//   user owns is 0600 or 0400.
// The PIN file's rule (owner only, sks/secret.h) is checked where it is read.
//
// Errors: stir::Error(kNotFound) for a missing file, stir::Error(kPermission)
// (exit 77) naming the file, what is wrong and the command that fixes it.
// Threads: stateless. `euid` is the effective user to compare with.
#pragma once

#include <sys/types.h>

#include <string>

#include "sks/config.h"

namespace sks::server {

void check_tls_files(const ServerConfig& server, uid_t euid);

}  // namespace sks::server
