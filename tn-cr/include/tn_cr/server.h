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
// Ownership: a Server owns its listening socket, worker threads and cache.
// Threads: bind() and run() from one thread; stop() from any thread (a
// signal-watching thread, say), also before run(). The access log sink is
// called from worker threads, one complete line at a time, serialised.
// Signals: the process should ignore SIGPIPE (a client hanging up mid-
// response would otherwise end it); `tn-cr serve` does.
// Errors: stir::Error: kConfig (TLS files unusable, bad option), kNotFound
// (no repository folder), kIo (cannot listen).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tn_cr {

inline constexpr std::int64_t kMinMaxAgeSeconds = 86400;

struct ServerOptions {
  std::string repository_dir;                  // the folder of published chains
  std::string listen = "127.0.0.1";            // address to bind
  int port = 8443;                             // 0 = any free port (bind() says which)
  std::string tls_cert;                        // PEM chain, leaf first
  std::string tls_key;                         // PEM private key of the TLS certificate
  bool lab_plain_http = false;                 // lab only: plain HTTP, no TLS
  std::int64_t max_age_s = kMinMaxAgeSeconds;  // Cache-Control max-age; never below the minimum
  std::string path_prefix = "/";               // URL path before the names, "/" or "/a/b/"
  std::size_t threads = 0;                     // worker threads; 0 = 8 per CPU core
  int read_timeout_ms = 5000;
  int write_timeout_ms = 5000;
  int keep_alive_timeout_s = 5;                 // idle keep-alive connections close after this
  std::size_t keep_alive_max_requests = 10000;  // per connection (httplib's default is 5)
};

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

  // Makes run() return (or return at once if it has not started).
  void stop();

  // "https://127.0.0.1:8443/" (scheme, listen address, bound port, prefix).
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tn_cr
