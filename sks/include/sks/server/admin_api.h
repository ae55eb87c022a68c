// GET /admin/v1/keys, apart from HTTP: the keys the running process signs
// with, per signing profile (label, x5u, seconds to the certificate's
// notAfter, since when), and the rotation state generation it loaded with
// its last reload's outcome, so the rotation manager acts on what the
// server does, not on what it was told. Only client identities listed in
// server.admins may ask; the answer holds no key material.
//
// Threads: stateless functions; safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sks/server/key_ring.h"

namespace sks::server {

// What a running server loaded (observed generation, in Kubernetes terms).
struct RingReport {
  std::int64_t generation = 0;   // the rotation state generation of the ring it signs with
  std::int64_t loaded_at = 0;    // when that ring was swapped in
  bool reload_ok = true;         // the last reload (start-up included) succeeded
  std::string error;             // why it failed; the old ring stays
  std::int64_t reload_time = 0;  // the last reload attempt
  // Reload attempts answered since the process started (ok or failed): a
  // caller reads it, sends SIGHUP and waits for it to move, so the outcome
  // it then reads is its own reload's, never an earlier one's.
  std::int64_t reloads = 0;
  // Profile -> since when it signs with its current (key, x5u).
  std::map<std::string, std::int64_t> since;
};

// The document of GET /admin/v1/keys and of `sks serve`'s status file:
// {"generation", "loaded_at", "reload_ok", "error", "reload_time", "reloads",
//  "profiles": [{"profile", "key", "x5u", "since", "expires_in_s"}]}.
nlohmann::json describe_ring(const KeyRing& ring, const RingReport& report, std::int64_t now);

// The body (application/json) of GET /admin/v1/keys. `client_names` are
// the caller's certificate CN and DNS SANs; `admins` is server.admins.
// Throws stir::RequestError kForbidden (403 POL4003) when no name is an
// admin.
std::string admin_keys(const std::vector<std::string>& client_names, const KeyRing& ring,
                       const RingReport& report, const std::vector<std::string>& admins,
                       std::int64_t now);

}  // namespace sks::server
