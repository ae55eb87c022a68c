// An event-driven HTTP/1.1 server (HTTPS, or plain HTTP in a lab) on
// Boost.Beast and Asio, shared by `sks serve` and `tn-cr serve`.
//
// Model: one listening socket; N I/O threads run every connection's state
// machine (TLS handshake, header, body, handler, write, keep-alive wait)
// asynchronously, one strand per connection, so an idle or slow connection
// holds no thread. Each I/O thread has an io_context of its own (a lane);
// connections are dealt to the lanes in turn at accept, so a request's
// events, handlers and posts stay on one thread, with no hand-over between
// threads per event (bench/README.md, issue 20). Handlers are plain
// functions (Request, RequestContext) -> Response that know nothing of
// Beast. A route marked Run::kBlocking runs on a bounded worker pool
// instead (PKCS#11 C_Sign may block for a token session); its response is
// written back on the connection's strand. When the pool's queue is full
// the request is answered at once with Options::busy (503 and
// Retry-After), never queued without bound. Routes may name their own pool
// (Options::pools), so a burst on one route cannot fill the queue of
// another.
//
// Limits, each a deadline or a count:
// - handshake_timeout from TCP accept to the end of the TLS handshake, and
//   to the first request's header on a plain connection;
// - header_timeout for a request's header once its first byte arrived (or
//   from the handshake for the first request: an idle TCP or TLS
//   connection never holds the server longer than this);
// - body_timeout, write_timeout, idle_timeout (keep-alive wait);
// - header_limit (431 and close), body_limit (413 and close), malformed
//   requests 400 and close;
// - keep_alive_max_requests per connection, then Connection: close;
// - max_connections: a connection over the cap is accepted and closed at
//   once (counted in Stats::rejected_connections), never left in a queue.
//   A connection evicted by the flood rules below leaves the count when it
//   is evicted; its socket closes on its own lane a moment later (within
//   about 5 ms when that lane's thread is in a handler), so the sockets
//   open may briefly exceed the cap by the connections evicted in that
//   moment. Counting them refused real clients during a flood instead of
//   evicting for them.
//
// Hostile peers (issue 17):
// - memory: every read buffer has a maximum (read_buffer_limit); chunk
//   extensions count against header_limit per request, every byte of a
//   body with its framing (data, size lines, extensions, trailers) against
//   body_limit + header_limit (400 and close), and trailers must fit the
//   read buffer, so one connection holds at most connection_budget() bytes
//   whatever it sends (see that function);
// - framing (RFC 9112 6.1, 6.3): a request whose Transfer-Encoding is
//   anything but one final `chunked`, that has both Transfer-Encoding and
//   Content-Length, or that has Transfer-Encoding where no body is needed
//   (GET, HEAD, OPTIONS, TRACE, CONNECT, or any request when
//   request_bodies is false) is answered 400 and the connection closes;
// - floods: a connection must send its first byte (the TLS ClientHello)
//   within first_byte_timeout; connections that have not finished the
//   handshake ("pending") are capped per source address
//   (max_handshakes_per_address) and in all at max_connections -
//   reserved_connections, so that share of the slots is kept for clients
//   that have authenticated. A new connection over either cap evicts the
//   oldest pending one (of that address, or of all): an idle flood turns
//   over its own sockets and never holds a slot a real client needs for
//   longer than the flood takes to open max_connections sockets. After a
//   flood (open connections fall to a quarter of their peak) freed memory
//   is returned to the system (malloc_trim);
// - TLS: a resumed session whose client certificate is no longer within
//   its validity is closed before any request is read; client names are
//   read with their lengths and a certificate whose CN or DNS SAN holds a
//   NUL or control character is refused (tls.h).
//
// Ownership: the Server owns its sockets, threads and worker pool; handlers
// are copied in. Threads: bind() then serve() from one thread (serve()
// blocks until the drain ends); stop() from any thread, any time, also
// before serve(). Handlers run on I/O threads (Run::kInline) or pool threads
// (Run::kBlocking), concurrently: they must be thread-safe. The access log
// hook runs on I/O threads, once per request, after the response is written.
// Errors: bind() throws stir::Error(kIo); a handler's exception becomes
// Options::internal_error's response and is reported to the access log as
// status 500; nothing else throws once serving.
//
// Draining (stop): the listening socket closes at once; idle keep-alive
// connections close; requests in flight finish and get their response with
// Connection: close; after the drain deadline whatever is left is closed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio::ssl {
class context;  // stir/http/tls.h makes one
}

namespace stir::http {

using Clock = std::chrono::steady_clock;

// A request as received. The views point into the connection's buffers and
// are valid until the handler returns.
struct Request {
  std::string_view method;  // "GET", as sent
  std::string_view target;  // the raw request-target, not decoded
  std::string_view body;
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // in order received

  // The first value of a header (case-insensitive name), or none.
  std::optional<std::string_view> header(std::string_view name) const;
  // Every value of a header, in order.
  std::vector<std::string_view> header_values(std::string_view name) const;
  // The path: the target up to '?'.
  std::string_view path() const;
};

// What the server knows of the connection a request came on; fixed for the
// connection's life (client names are decoded once, after the handshake).
struct ConnectionInfo {
  std::uint64_t id = 0;        // per server, from 1
  std::string remote_address;  // "127.0.0.1" or "::1"
  std::uint16_t remote_port = 0;
  // Client certificate CN, then DNS SANs, exact bytes (read with their
  // lengths; none holds a NUL or control character: such a certificate is
  // refused in the handshake).
  std::vector<std::string> client_names;
  bool tls = false;
};

struct RequestContext {
  const ConnectionInfo& connection;
  std::uint64_t request_number;  // per server, from 1
  Clock::time_point received;    // header complete
};

struct Response {
  int status = 200;
  // Sent after Options::default_headers, in order. The framing headers are
  // the server's: a handler's Connection, Content-Length and
  // Transfer-Encoding are not sent. A name or value holding a control
  // character (CR, LF, NUL, ...) is never sent: the client gets a 500 and
  // the access log the outcome "bad-response-header".
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Non-zero: the body goes with Transfer-Encoding: chunked, in chunks of at
  // most this many bytes (HTTP/1.1 requests only; for tests of clients).
  std::size_t chunk_size = 0;
  // Recorded for the access log only, never sent: the route's name and
  // what came of the request ("ok", an error id, ...), request id, detail.
  std::string route;
  std::string outcome;
  std::string request_id;
  std::string detail;

  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  static Response text(int status, std::string body, std::string content_type);
};

using Handler = std::function<Response(const Request&, const RequestContext&)>;

enum class Run {
  kInline,    // on the I/O thread: fast, never blocks
  kBlocking,  // on the worker pool: may block (token operations)
  // On the I/O thread that read the request, with no hop to a worker and
  // back, while its pool has an idle worker and nothing queued (it takes
  // that worker's place: its token session is free) and at least one other
  // I/O thread runs no such handler; on the pool otherwise. So a handler
  // that blocks (a hung token) holds one I/O thread at most, and the other
  // connections go on on the others: the other lanes' at once, its own
  // lane's within about 5 ms (a rescuer thread runs a lane whose thread has
  // been in such a handler longer, until it returns; new connections skip
  // that lane; the rescuer never runs one inline, it sends them to the
  // pool). With one I/O thread it always runs on the pool.
  kInlineWhenIdle,
};

// Exact-path routes by method. Matching: a path with a route for the method
// calls it; a path with routes for other methods calls method_not_allowed
// with the Allow value; no path calls fallback. Immutable once the server
// holds it.
class Router {
 public:
  using MethodNotAllowed =
      std::function<Response(const Request&, const RequestContext&, const std::string& allow)>;

  // `pool` names one of Options::pools for a Run::kBlocking route; empty is
  // the default pool (Options::workers, Options::worker_queue).
  Router& add(std::string method, std::string path, Handler handler, Run run = Run::kInline,
              std::string pool = {});
  Router& fallback(Handler handler, Run run = Run::kInline);
  Router& method_not_allowed(MethodNotAllowed handler);

  struct Match {
    const Handler* handler = nullptr;  // null: method not allowed
    Run run = Run::kInline;
    std::string_view pool;  // with Run::kBlocking
    std::string allow;      // with handler == null
  };
  Match find(std::string_view method, std::string_view path) const;
  Response not_allowed(const Request& request, const RequestContext& context,
                       const std::string& allow) const;
  // The pools the Run::kBlocking routes name, each once ("" the default).
  std::vector<std::string> blocking_pools() const;

 private:
  struct Route {
    std::string method;
    std::string path;
    Handler handler;
    Run run;
    std::string pool;
  };
  std::vector<Route> routes_;
  Handler fallback_;
  Run fallback_run_ = Run::kInline;
  MethodNotAllowed method_not_allowed_;
};

// A request the server refused before any handler ran.
struct ProtocolError {
  int status;               // 400, 413 or 431
  std::string_view target;  // when the header was read, else empty
  std::string reason;       // "body larger than 16384 bytes"
};

// One finished request, for the access log and metrics.
struct AccessRecord {
  const ConnectionInfo& connection;
  std::uint64_t request_number;
  std::string_view method;
  std::string_view target;
  const Response& response;
  std::chrono::microseconds latency;  // header complete to response written
};

struct Options {
  std::string listen = "127.0.0.1";  // IPv4 or IPv6 address
  int port = 0;                      // 0 = ephemeral; bind() reports it
  // null = plain HTTP (lab only); else make_server_tls_context().
  std::shared_ptr<boost::asio::ssl::context> tls;
  int backlog = 0;                     // 0 = min(4096, net.core.somaxconn)
  std::size_t max_connections = 4096;  // open connections; more are closed at once
  // Slots only connections that finished the handshake may use; kAuto is
  // max_connections / 4. Pending connections get the rest.
  static constexpr std::size_t kAuto = static_cast<std::size_t>(-1);
  std::size_t reserved_connections = kAuto;
  std::size_t max_handshakes_per_address = 256;  // pending from one address; 0 = no cap
  std::size_t io_threads = 0;                    // 0 = CPU cores
  // TCP accept to the first byte from the client (the ClientHello).
  std::chrono::milliseconds first_byte_timeout{2000};
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds body_timeout{5000};
  std::chrono::milliseconds write_timeout{5000};
  std::chrono::milliseconds idle_timeout{30000};  // keep-alive wait for the next request
  std::size_t keep_alive_max_requests = 100000;
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 16 * 1024;
  // The largest read buffer of a connection; 0 = header_limit + 4 KiB.
  // Holds unparsed bytes only (a header, a chunk size line, a trailer).
  std::size_t read_buffer_limit = 0;
  // False: no route takes a body, so Transfer-Encoding is refused on every
  // request (Content-Length bodies stay limited by body_limit).
  bool request_bodies = true;
  // The default pool of Run::kBlocking routes.
  std::size_t workers = 0;       // threads; 0 = CPU cores
  std::size_t worker_queue = 0;  // jobs waiting for a worker; more get `busy`
  struct Pool {
    std::size_t threads = 1;
    std::size_t queue = 0;
  };
  // Named pools for routes that must not share the default pool's queue.
  // A route naming a pool not listed here makes the constructor throw.
  std::vector<std::pair<std::string, Pool>> pools;

  Router router;
  // The answer when the worker pool's queue is full (default: 503 text,
  // Retry-After: 1). The server adds Retry-After when the handler has none.
  Handler busy;
  // The answer to a request refused by the parser (default: plain text).
  std::function<Response(const ProtocolError&)> protocol_error;
  // The answer when a handler throws (default: 500 text); the exception's
  // what() is passed.
  std::function<Response(const Request&, const RequestContext&, std::string_view what)>
      internal_error;
  // Called once per request, after its response is written (or failed to).
  std::function<void(const AccessRecord&)> access_log;
  // Headers added to every response.
  std::vector<std::pair<std::string, std::string>> default_headers;
};

// Counters, monotonic unless said otherwise; readable from any thread.
struct Stats {
  std::uint64_t accepted_connections = 0;  // TCP connections accepted and served
  std::uint64_t rejected_connections = 0;  // closed at once: over max_connections
  std::uint64_t open_connections = 0;      // now
  std::uint64_t requests = 0;              // responses written
  std::uint64_t busy_rejections = 0;       // answered `busy`: a pool's queue full
  std::uint64_t worker_queue_length = 0;   // now: jobs waiting for a default-pool worker
  std::uint64_t workers_busy = 0;          // now: default-pool jobs running
  std::uint64_t pending_connections = 0;   // now: handshake not finished
  std::uint64_t evicted_connections = 0;   // pending ones closed for a newer one (floods)
  std::uint64_t refused_resumptions = 0;   // resumed sessions of an expired certificate
  std::uint64_t memory_trims = 0;          // malloc_trim after a flood
};

// The read buffer limit `options` gives (read_buffer_limit or its default).
std::size_t read_buffer_limit(const Options& options);

// The most memory one connection can hold, whatever its peer sends, in
// bytes: the read buffer (read_buffer_limit), the parsed header and
// trailer fields (header_limit + read buffer), the body (body_limit), the
// response (`max_response_bytes`, twice: the handler's, and the one written
// with its header, whose buffer the connection keeps for the next response)
// and TLS (kTlsConnectionBytes). connections x budget is the worst case an
// operator sizes the process's memory (systemd MemoryMax) for.
inline constexpr std::size_t kTlsConnectionBytes = 64 * 1024;  // SSL, records, peer chain
std::size_t connection_budget(const Options& options, std::size_t max_response_bytes);

// `text` for a log line: printable ASCII kept, other bytes as \xNN, at most
// 200 bytes; "-" for empty. Client names and targets go through it.
std::string loggable(std::string_view text);

namespace detail {
class ServerCore;
}

class Server {
 public:
  // Throws stir::Error(kConfig) when a route names a pool not in
  // Options::pools.
  explicit Server(Options options);
  // Stops without a drain; serve() must have returned (its caller joins).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listening socket (SO_REUSEADDR) and returns the bound port.
  int bind();
  // Runs the I/O threads (the caller's among them) until stop()'s drain
  // ends. Call once, after bind().
  void serve();
  // Begins the drain; returns at once. Idempotent.
  void stop(std::chrono::milliseconds drain_timeout = std::chrono::seconds(10));
  bool draining() const;

  Stats stats() const;
  bool tls() const;

 private:
  std::unique_ptr<detail::ServerCore> impl_;
};

}  // namespace stir::http
