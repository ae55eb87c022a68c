// GET /admin/v1/keys, apart from HTTP: the keys the running process signs
// with, per signing profile (label, x5u, seconds to the certificate's
// notAfter). Only client identities listed in server.admins may ask; the
// answer holds no key material.
//
// Threads: a stateless function; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sks/server/key_ring.h"

namespace sks::server {

struct AdminResponse {
  int status = 200;
  std::string body;  // application/json
};

// `client_names` are the caller's certificate CN and DNS SANs; `admins` is
// server.admins. 403 (POL4003) when no name is an admin.
AdminResponse admin_keys(const std::vector<std::string>& client_names, const KeyRing& ring,
                         const std::vector<std::string>& admins, std::int64_t now);

}  // namespace sks::server
