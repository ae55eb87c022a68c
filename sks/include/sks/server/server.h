// `sks serve`: ApiServer, every HTTPS route of sks on stir::http: the
// signing API (ATIS-1000082), verification, health, metrics and admin
// (http/include/stir/http/server.h: Boost.Beast, event-driven).
//
//   POST {api_root}/signing   sign a PASSporT for the client's profile
//                             (role "signing", the default)
//   POST {api_root}/verification  verify an Identity header as an STI-VS
//                             (role "verification": server.roles, [verifier])
//   GET  /healthz             the process is alive
//   GET  /readyz              token logged in, every profile's key signs and
//                             verifies a self-test digest (200, else 503;
//                             503 at once while the token's breaker is open)
//   GET  /metrics             Prometheus text (see metrics.h), with the active
//                             key per profile and seconds to notAfter; with
//                             [metrics] on that listener only (MetricsConfig,
//                             config.h), and 404 here
//   GET  /admin/v1/keys       the keys this process signs with (admin_api.h;
//                             server.admins only)
//
// TLS 1.2 or newer (stir/http/tls.h); client certificates required and
// checked against server.client_ca unless a lab-only setting says otherwise.
// Connections: server.io_threads I/O threads serve every connection
// asynchronously, so idle or slow connections hold no thread; deadlines for
// the TLS handshake, header, body, write and keep-alive wait; over
// server.max_connections a new connection is closed at once. Signing runs
// on a worker pool of one thread per token session; verification (x5u
// fetches wait on the network) on a pool of two threads per core; /readyz
// on a thread of its own, so neither waits behind the other routes. With
// server.signing_queue_depth requests already waiting for a pool, the next
// is answered 503 POL5003 with Retry-After at once.
//
// Hardening: the TLS files are checked before use (stir/http/tls_files.h);
// [rate_limit] limits each client identity on the signing route (429
// POL4029 with Retry-After); with [audit], every request that reaches the
// signing route, signed or refused (4xx, 429, 503), is written to the
// audit log off the request's thread (audit_log.h).
//
// While the token is down (p11::CircuitBreaker open) signing answers 503
// POL5003 with Retry-After at once too; /metrics adds the breaker's and the
// signature check's counters.
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
// kPermission); every request failure is a stir::Error answered by the one
// table in api_error.h (status, ATIS body, log outcome), never an exception.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sks/config.h"
#include "sks/pkcs11/key_store.h"
#include "sks/server/admin_api.h"
#include "sks/server/audit_log.h"
#include "sks/server/key_ring.h"
#include "sks/server/metrics.h"
#include "sks/server/rate_limiter.h"
#include "stir/error.h"
#include "stir/http/server.h"
#include "stir/verifier/verifier.h"

namespace sks::server {

class ApiServer {
 public:
  // `keys` may be null when the signing role is off (a pure verifier).
  ApiServer(const Config& config, p11::KeyStore* keys);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds the listening socket, and the metrics listener's with [metrics];
  // returns the signing port (config port 0 = ephemeral).
  int bind();
  // After bind(): "http://127.0.0.1:9464/metrics" of the metrics listener
  // (its bound port); empty without [metrics].
  std::string metrics_url() const;
  // Serves until stop(), both listeners (the metrics one on a thread of its
  // own); returns once in-flight requests have finished on both.
  void serve();
  void stop(std::chrono::milliseconds drain_timeout = std::chrono::seconds(10));
  // Connection counters of the HTTP layer (also in /metrics).
  stir::http::Stats connection_stats() const;

  // The server applies the rotation state (apply_rotation_state, key_ring.h)
  // to `config` itself, here and in reload(): the CLI passes the config as
  // read.
  //
  // Rebuilds the key ring from a (re-read) config and swaps it in once every
  // key passed its self-test; requests in flight finish with the old one.
  // Server and token settings are not changed by a reload. Throws
  // stir::Error and keeps the old ring on failure (the report says so).
  // The report's generation becomes config.rotation.loaded_generation.
  void reload(const Config& config);
  // A reload that failed before it reached reload() (the config could not
  // be read): the report and sks_keyring_reloads_total{result="failed"} say
  // so. reload() reports its own failures (the rotation state included), so
  // each attempt counts once, in the metric and in the report's `reloads`.
  void reload_failed(const std::string& error);
  // What the process signs with and loaded (GET /admin/v1/keys).
  nlohmann::json ring_report() const;

  // Asks the token layer (p11::SessionPool::readiness: breaker, login),
  // then runs the one key self-test on every profile's key
  // (KeyRing::self_test); the reason when not ready, empty when ready. The
  // server makes no PKCS#11 call of its own. Start-up (`sks serve`) and
  // GET /readyz call it; a failure is the reason returned, not thrown.
  std::string readiness() const;

  Metrics& metrics() noexcept { return metrics_; }
  const std::string& scheme() const noexcept { return scheme_; }

 private:
  void check_roles();
  stir::http::Options http_options();
  stir::http::Options metrics_options();
  void add_error_answers(stir::http::Options& options);
  void add_routes(stir::http::Router& router);
  void add_refusals(stir::http::Router& router, std::string signing_path,
                    std::string verification_path);
  void add_metrics_route(stir::http::Router& router,
                         const std::optional<std::vector<std::string>>& clients,
                         const std::string& list_name);
  void add_operations_routes(stir::http::Router& router);
  std::string render_metrics() const;
  // The signing route: the client's rate limit (429 POL4029), then sign(),
  // then the audit record.
  std::string client_identity(const stir::http::ConnectionInfo& connection) const;
  stir::http::Response signing_route(const stir::http::Request& request,
                                     const stir::http::RequestContext& context);
  // `record`, when given, gets the profile, key and response of a signature.
  stir::http::Response sign(const stir::http::Request& request,
                            const stir::http::RequestContext& context, AuditRecord* record);
  // Queues the audit record of a signing request answered with `response`.
  void audit(const stir::http::Request& request, const stir::http::RequestContext& context,
             const stir::http::Response& response, AuditRecord record);
  void token_failed(stir::http::Response& response, const stir::Error& error);
  stir::http::Response verify(const stir::http::Request& request,
                              const stir::http::RequestContext& context);
  void log_access(const stir::http::AccessRecord& record);

  Config config_;
  p11::KeyStore* keys_;
  Metrics metrics_;
  KeyRingHolder ring_;
  mutable std::mutex report_mutex_;
  RingReport report_;  // under report_mutex_
  std::string scheme_;
  std::atomic<bool> draining_{false};
  std::unique_ptr<stir::vs::Verifier> verifier_;  // with the verification role
  RateLimiter rate_limiter_;                      // the signing route's, per client
  std::unique_ptr<AuditLog> audit_;               // with [audit]; outlives http_
  LineWriter log_{2};  // stderr: access and request error lines; outlives http_
  std::unique_ptr<stir::http::Server> http_;
  std::unique_ptr<stir::http::Server> metrics_http_;  // with [metrics]
  int metrics_port_ = -1;                             // bound by bind()
};

}  // namespace sks::server
