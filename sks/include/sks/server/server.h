// `sks serve`: the HTTPS signing API (ATIS-1000082) over cpp-httplib.
//
//   POST {api_root}/signing   sign a PASSporT for the client's profile
//                             (role "signing", the default)
//   POST {api_root}/verification  verify an Identity header as an STI-VS
//                             (role "verification": server.roles, [verifier])
//   GET  /healthz             the process is alive
//   GET  /readyz              token logged in, every profile's key signs and
//                             verifies a self-test digest (200, else 503)
//   GET  /metrics             Prometheus text (see metrics.h), with the active
//                             key per profile and seconds to notAfter
//   GET  /admin/v1/keys       the keys this process signs with (admin_api.h;
//                             server.admins only)
//
// TLS 1.2 or newer; client certificates required and checked against
// server.client_ca unless a lab-only setting says otherwise. One worker
// thread serves one connection at a time, so server.threads also bounds
// the connections served at once; more wait in the accept queue.
//
// Ownership: borrows the KeyStore, and through it the session pool and the
// token (all must outlive it); owns the HTTP server, key ring and metrics.
// Threads: serve() blocks the calling thread; stop() and reload() may be
// called from any other thread.
// Draining (stop): the listening socket closes at once, so no new
// connection is accepted; requests already being served finish and get
// their response; idle keep-alive connections are closed; after
// `drain_timeout` whatever is left is closed too. /readyz answers 503 while
// draining, so a load balancer stops sending.
// Errors: the constructor and bind() throw stir::Error (kConfig, kIo,
// kPermission); request failures become ATIS error bodies, never exceptions.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "sks/config.h"
#include "sks/pkcs11/key_store.h"
#include "sks/server/key_ring.h"
#include "sks/server/metrics.h"
#include "stir/verifier/verifier.h"

namespace sks::server {

class SigningServer {
 public:
  // `keys` may be null when the signing role is off (a pure verifier).
  SigningServer(const Config& config, p11::KeyStore* keys);
  ~SigningServer();
  SigningServer(const SigningServer&) = delete;
  SigningServer& operator=(const SigningServer&) = delete;

  // Binds the listening socket; returns the port (config port 0 = ephemeral).
  int bind();
  // Serves until stop(); returns once in-flight requests have finished.
  void serve();
  void stop(std::chrono::milliseconds drain_timeout = std::chrono::seconds(10));
  bool is_running() const;

  // Rebuilds the key ring from a (re-read) config and swaps it in once every
  // key passed its self-test; requests in flight finish with the old one.
  // Server and token settings are not changed by a reload. Throws
  // stir::Error and keeps the old ring on failure.
  void reload(const Config& config);

  // Signs and verifies a self-test digest with every profile's key; the
  // reason when not ready, empty when ready.
  std::string readiness() const;

  Metrics& metrics() noexcept { return metrics_; }
  const std::string& scheme() const noexcept { return scheme_; }

 private:
  class Impl;
  Config config_;
  p11::KeyStore* keys_;
  Metrics metrics_;
  KeyRingHolder ring_;
  std::string scheme_;
  std::atomic<bool> draining_{false};
  std::atomic<int> listen_fd_{-1};
  std::unique_ptr<stir::vs::Verifier> verifier_;  // with the verification role
  std::unique_ptr<Impl> impl_;
};

}  // namespace sks::server
