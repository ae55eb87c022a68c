// `tn-cr serve`: the HTTPS certificate repository (PROTOCOL.md section 5).
//
// GET and HEAD of `path_prefix + name` answer 200 with the chain,
// `Content-Type: application/pem-certificate-chain`,
// `Cache-Control: public, max-age=N` (N >= 86400), a strong ETag (SHA-256 of
// the content) and Last-Modified (the file's mtime); If-None-Match and
// If-Modified-Since give 304. Every other method gets 405 with
// `Allow: GET, HEAD`. Targets are judged on their raw bytes
// (http_rules.h): anything that is not exactly a valid name gets 400 or 404
// and touches no file. There is no listing and never a redirect. Errors
// carry `Cache-Control: no-store`, so a verifier that asked before a chain
// was published asks again.
//
// Chains are read with O_NOFOLLOW relative to the repository folder and
// kept in memory, keyed by the file's (device, inode, size, mtime): one
// fstatat per request, one read per new file. A chain published or
// unpublished while the server runs is served or gone at the next request.
//
// HTTP and TLS are stir::http (http/include/stir/http/server.h): event-driven
// I/O threads, so idle or slow connections hold no thread; deadlines for the
// TLS handshake, header, body, write and keep-alive wait; connections over
// max_connections are closed at once.
//
// Ownership: a Server owns its listening socket, I/O threads and cache.
// Threads: bind() and run() from one thread; stop() from any thread (a
// signal-watching thread, say), also before run(). The access log sink is
// called from I/O threads, one complete line at a time, serialised.
// Signals: the process must ignore SIGPIPE (a client hanging up mid-
// response would otherwise end it); every program does, in stir::run_main.
// Metrics: GET /metrics (tn_cr/metrics.h) for the identities in
// metrics_clients, the way sks restricts its own /metrics.
// Errors: stir::Error: kConfig (TLS files unusable, bad option), kNotFound
// (no repository folder), kIo (cannot listen).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stir/http/listener.h"

namespace tn_cr {

inline constexpr std::int64_t kMinMaxAgeSeconds = 86400;

// The listener is stir::http::ListenerConfig (http/include/stir/http/listener.h),
// read by the listener reader both servers share, without client
// certificates (tn-cr serves anyone) and with a fixed 16 KiB body limit. The
// tn-cr defaults are its own: port 8443, keep-alive 5 s and 10,000 requests
// per connection. Memory per connection is at most read buffer (12 KiB) +
// fields (20 KiB) + request body (16 KiB) + the chain answered
// (2 x kMaxChainBytes) + TLS (64 KiB).
struct ServerOptions : stir::http::ListenerConfig {
  ServerOptions() {
    port = 8443;
    keep_alive_timeout_s = 5;
    keep_alive_max_requests = 10000;
    client_certificate_optional = true;
  }
  std::string repository_dir;                  // the folder of published chains
  std::int64_t max_age_s = kMinMaxAgeSeconds;  // Cache-Control max-age; never below the minimum
  std::string path_prefix = "/";               // URL path before the names, "/" or "/a/b/"
  // GET /metrics (metrics.h) is served only when metrics_clients is set, to
  // clients whose certificate, issued by a CA in client_ca, has one of these
  // names as CN or DNS SAN (exact bytes); 403 for any other client. The
  // certificate is asked for, never required: verifiers stay anonymous.
  std::vector<std::string> metrics_clients;  // empty: no /metrics (404)
};

// How long stop() lets requests in flight finish.
inline constexpr std::chrono::milliseconds kDrainTimeout{5000};

// Receives one access or event line, without the trailing newline.
using LogSink = std::function<void(std::string_view line)>;

// Writes each line to stderr.
LogSink stderr_log();

class Server {
 public:
  // Loads the TLS certificate and key and opens the repository folder.
  Server(ServerOptions options, LogSink log);
  ~Server();
  Server(const Server&) = delete;  // owns a socket and threads
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (useful with port 0).
  int bind();

  // Serves until stop(): stops accepting, finishes the requests in flight,
  // then returns. Call once, after bind().
  void run();

  // Makes run() return (or return at once if it has not started): stops
  // accepting, closes idle connections, lets requests in flight finish
  // (up to kDrainTimeout).
  void stop();

  // TCP connections accepted and served so far (not those over the cap).
  std::uint64_t accepted_connections() const;

  // "https://127.0.0.1:8443/" (scheme, listen address, bound port, prefix).
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tn_cr
