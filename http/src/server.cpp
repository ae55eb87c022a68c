#include "stir/http/server.h"

#include <malloc.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "stir/error.h"
#include "stir/http/tls.h"

namespace stir::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string_view> Request::header_values(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) out.push_back(v);
  }
  return out;
}

std::string_view Request::path() const { return target.substr(0, target.find('?')); }

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

Router& Router::add(std::string method, std::string path, Handler handler, Run run,
                    std::string pool) {
  routes_.push_back({std::move(method), std::move(path), std::move(handler), run, std::move(pool)});
  return *this;
}

Router& Router::fallback(Handler handler, Run run) {
  fallback_ = std::move(handler);
  fallback_run_ = run;
  return *this;
}

Router& Router::method_not_allowed(MethodNotAllowed handler) {
  method_not_allowed_ = std::move(handler);
  return *this;
}

Router::Match Router::find(std::string_view method, std::string_view path) const {
  Match match;
  for (const auto& route : routes_) {
    if (route.path != path) continue;
    if (route.method == method) return {&route.handler, route.run, route.pool, {}};
    if (!match.allow.empty()) match.allow += ", ";
    match.allow += route.method;
  }
  if (!match.allow.empty()) return match;
  if (fallback_) return {&fallback_, fallback_run_, {}, {}};
  return match;
}

Response Router::not_allowed(const Request& request, const RequestContext& context,
                             const std::string& allow) const {
  if (!method_not_allowed_) {
    return Response::text(allow.empty() ? 404 : 405,
                          allow.empty() ? "not found\n" : "method not allowed\n", "text/plain")
        .header("Allow", allow);
  }
  return method_not_allowed_(request, context, allow);
}

std::vector<std::string> Router::blocking_pools() const {
  std::vector<std::string> names;
  const auto note = [&names](const std::string& name) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  };
  if (fallback_ && fallback_run_ != Run::kInline) note({});
  for (const auto& route : routes_) {
    if (route.run != Run::kInline) note(route.pool);
  }
  return names;
}

namespace {

// The client certificate's names; nullopt when they are refused (a resumed
// session's certificate did not pass the handshake's check again).
std::optional<std::vector<std::string>> peer_names(const SSL* ssl) {
  std::string why;
  auto names = certificate_names(SSL_get0_peer_certificate(ssl), &why);
  if (!why.empty()) return std::nullopt;
  return names;
}

// Whether the peer's certificate (if any) is within its validity now.
bool peer_certificate_current(const SSL* ssl) {
  const X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return true;
  return X509_cmp_current_time(X509_get0_notBefore(cert)) < 0 &&
         X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;
}

bool is_token(std::string_view value, std::string_view token) {
  const auto begin = value.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return false;
  const auto end = value.find_last_not_of(" \t");
  return iequals(value.substr(begin, end - begin + 1), token);
}

// Why a request's framing is refused (RFC 9112 6.1 and 6.3), or empty.
template <class Message>
std::string framing_refusal(const Message& message, bool request_bodies) {
  std::size_t codings = 0;
  bool chunked = false;
  for (const auto& field : message) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    ++codings;
    chunked = is_token(field.value(), "chunked");
  }
  if (codings == 0) return {};
  switch (message.method()) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::options:
    case bhttp::verb::trace:
    case bhttp::verb::connect:
      return "Transfer-Encoding on a request without a body";
    default:
      break;
  }
  if (!request_bodies) return "Transfer-Encoding on a request without a body";
  if (codings != 1 || !chunked) return "Transfer-Encoding other than chunked";
  if (message.find(bhttp::field::content_length) != message.end()) {
    return "both Transfer-Encoding and Content-Length";
  }
  return {};
}

// Threads that run Run::kBlocking handlers. At most `threads` jobs run and
// `depth` wait; try_post() refuses the next one instead of queueing it.
class WorkerPool {
 public:
  WorkerPool(std::size_t threads, std::size_t depth) : capacity_(threads + depth) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  bool try_post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      if (jobs_.size() + running_ + inline_ >= capacity_) return false;
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
    return true;
  }
  std::pair<std::size_t, std::size_t> load() const {
    std::lock_guard lock(mutex_);
    return {jobs_.size(), running_ + inline_};
  }
  // Run::kInlineWhenIdle: the caller may run a job itself, in place of an
  // idle worker, when nothing is queued and fewer than `most` callers do
  // so now; leave() when it is done.
  bool try_enter(std::size_t most) {
    std::lock_guard lock(mutex_);
    if (!jobs_.empty() || inline_ >= most || running_ + inline_ >= threads_.size()) return false;
    ++inline_;
    return true;
  }
  void leave() {
    std::lock_guard lock(mutex_);
    --inline_;
  }

 private:
  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
      lock.unlock();
      job();
      lock.lock();
      --running_;
    }
  }

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::size_t running_ = 0;
  std::size_t inline_ = 0;  // jobs run by their callers (try_enter)
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The drain's handle on a connection; calls are posted to its strand.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void drain() = 0;
  virtual void force_close() = 0;
};

int default_backlog() {
  int somaxconn = 4096;
  std::ifstream("/proc/sys/net/core/somaxconn") >> somaxconn;
  return std::clamp(somaxconn, 128, 4096);
}

std::size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

Response default_protocol_error(const ProtocolError& error) {
  return Response::text(error.status, error.reason + "\n", "text/plain");
}

}  // namespace

std::size_t read_buffer_limit(const Options& options) {
  return options.read_buffer_limit != 0 ? options.read_buffer_limit
                                        : options.header_limit + 4 * 1024;
}

std::size_t connection_budget(const Options& options, std::size_t max_response_bytes) {
  const std::size_t buffer = read_buffer_limit(options);
  return buffer + (options.header_limit + buffer) + options.body_limit + 2 * max_response_bytes +
         kTlsConnectionBytes;
}

namespace {

// No control character in the name or value (CR and LF would split the
// header), and no space or colon in the name: a header that can be sent.
bool clean_header(const std::pair<std::string, std::string>& header) {
  const auto& [name, value] = header;
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return c > 0x20 && c != 0x7f && c != ':';
  }) && std::all_of(value.begin(), value.end(), [](unsigned char c) {
    return (c >= 0x20 || c == '\t') && c != 0x7f;
  });
}

}  // namespace

std::string loggable(std::string_view text) {
  constexpr std::size_t kMax = 200;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c > 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  if (text.size() > kMax) out += "...(" + std::to_string(text.size()) + " bytes)";
  return out.empty() ? "-" : out;
}

namespace detail {
// An I/O thread's own io_context: its connections' events, handlers and
// posts stay on that thread, with no hand-over of the reactor to another
// thread per event as one io_context shared by all I/O threads does (2-3
// context switches per request when requests come one at a time). The
// hint 1 keeps posts on the posting thread; the context stays thread-safe,
// so the rescuer (ServerCore::rescue) may run it beside its thread.
struct Lane {
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work{net::make_work_guard(ioc)};
  // Steady-clock nanoseconds since a Run::kInlineWhenIdle handler began
  // on this lane's own thread; 0 when none runs. Only that thread writes
  // it (the rescuer never runs a handler inline), so it is never stale.
  std::atomic<std::int64_t> inline_since{0};
};

// Steady-clock nanoseconds: a Lane's inline_since and the rescuer's "now".
std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// True on the rescuer thread (ServerCore::rescue). It runs other lanes'
// handlers, never one inline: a handler it ran inline would mark the
// lane as stuck after its own thread has left, and a hung one would leave
// every other lane without a rescuer.
thread_local bool tl_rescuer = false;

class ServerCore {
 public:
  explicit ServerCore(Options o)
      : options(std::move(o)),
        default_headers_clean(std::all_of(options.default_headers.begin(),
                                          options.default_headers.end(), clean_header)),
        io_threads(options.io_threads != 0 ? options.io_threads : cores()),
        lanes(make_lanes(io_threads)),
        ioc(lanes.front()->ioc),
        control(net::make_strand(ioc)),
        acceptor(control),
        retry_timer(control),
        drain_timer(control) {
    if (!options.busy) {
      options.busy = [](const Request&, const RequestContext&) {
        return Response::text(503, "busy, try again later\n", "text/plain");
      };
    }
    if (!options.protocol_error) options.protocol_error = default_protocol_error;
    if (!options.internal_error) {
      options.internal_error = [](const Request&, const RequestContext&, std::string_view) {
        return Response::text(500, "internal error\n", "text/plain");
      };
    }
    for (const std::string& name : options.router.blocking_pools()) {
      if (name.empty()) {
        pools.emplace_back(
            name, std::make_unique<WorkerPool>(options.workers != 0 ? options.workers : cores(),
                                               options.worker_queue));
        continue;
      }
      const auto named = std::find_if(options.pools.begin(), options.pools.end(),
                                      [&name](const auto& pool) { return pool.first == name; });
      if (named == options.pools.end()) {
        throw Error(ErrorCode::kConfig, "a route names the worker pool '" + name +
                                            "', which Options::pools does not list");
      }
      pools.emplace_back(
          name, std::make_unique<WorkerPool>(std::max<std::size_t>(1, named->second.threads),
                                             named->second.queue));
    }
  }

  // The pool a Run::kBlocking route names; null when the router has none.
  WorkerPool* pool(std::string_view name) const {
    for (const auto& [pool_name, pool] : pools) {
      if (pool_name == name) return pool.get();
    }
    return nullptr;
  }

  ~ServerCore() { closing = true; }

  void accept();
  void on_accept(tcp::socket socket, Lane& lane);
  Lane& next_lane();
  void rescue();
  void add(std::uint64_t id, std::weak_ptr<SessionBase> session) {
    std::lock_guard lock(sessions_mutex);
    sessions.emplace(id, std::move(session));
    peak_sessions = std::max(peak_sessions, sessions.size());
  }
  void remove(std::uint64_t id) {
    settle(id);
    bool last = false;
    bool trim = false;
    {
      std::lock_guard lock(sessions_mutex);
      sessions.erase(id);
      vacated.erase(id);
      last = sessions.empty();
      // A flood has ended: give its memory back rather than keep it in
      // the allocator's free lists.
      if (peak_sessions >= kTrimPeak && sessions.size() <= peak_sessions / 4) {
        peak_sessions = sessions.size();
        trim = true;
      }
    }
    if (closing.load()) return;
    if (trim) {
      net::post(control, [this] {
        ::malloc_trim(0);
        ++trims;
      });
    }
    if (last && stopping.load()) net::post(control, [this] { drain_timer.cancel(); });
  }

  // Flood admission (server.h): registers a pending connection from
  // `address` and returns the pending ones it displaces (id and session),
  // to be closed.
  using Evicted = std::pair<std::uint64_t, std::weak_ptr<SessionBase>>;
  std::vector<Evicted> admit(std::uint64_t id, const std::string& address) {
    std::vector<Evicted> evicted;
    std::lock_guard lock(admission_mutex);
    const std::size_t per_address = options.max_handshakes_per_address;
    if (per_address > 0) {
      while (pending_by_address[address] >= per_address) evicted.push_back(evict_oldest(&address));
    }
    while (!pending.empty() && pending.size() >= pending_cap()) {
      evicted.push_back(evict_oldest(nullptr));
    }
    pending.emplace(id, Pending{address, {}});
    ++pending_by_address[address];
    pending_order.push_back(id);
    evictions += evicted.size();
    return evicted;
  }
  void set_pending_session(std::uint64_t id, std::weak_ptr<SessionBase> session) {
    std::lock_guard lock(admission_mutex);
    if (auto it = pending.find(id); it != pending.end()) it->second.session = std::move(session);
  }
  // The connection finished its handshake (or ended): no longer pending.
  void settle(std::uint64_t id) {
    std::lock_guard lock(admission_mutex);
    settle_locked(id);
  }
  std::size_t pending_cap() const {
    const std::size_t reserved = options.reserved_connections == Options::kAuto
                                     ? options.max_connections / 4
                                     : options.reserved_connections;
    return reserved >= options.max_connections ? 1 : options.max_connections - reserved;
  }
  std::size_t pending_count() {
    std::lock_guard lock(admission_mutex);
    return pending.size();
  }
  std::size_t open_connections() {
    std::lock_guard lock(sessions_mutex);
    return sessions.size();
  }
  // What max_connections counts: open connections but those evicted, whose
  // close is posted to their own lane and may wait there a moment (under a
  // flood lane 0 accepts while another lane runs the closes). Counting them
  // refused new connections instead of evicting.
  std::size_t counted_connections() {
    std::lock_guard lock(sessions_mutex);
    return sessions.size() - vacated.size();
  }
  // An evicted connection gives up its slot now, not when its lane closes it.
  void vacate(std::uint64_t id) {
    std::lock_guard lock(sessions_mutex);
    if (sessions.contains(id)) vacated.insert(id);
  }
  template <class F>
  void for_each_session(F f) {
    std::vector<std::shared_ptr<SessionBase>> live;
    {
      std::lock_guard lock(sessions_mutex);
      for (auto& [id, weak] : sessions) {
        if (auto s = weak.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) f(*s);
  }
  void begin_drain(std::chrono::milliseconds timeout);

  struct Pending {
    std::string address;
    std::weak_ptr<SessionBase> session;
  };
  void settle_locked(std::uint64_t id) {
    const auto it = pending.find(id);
    if (it == pending.end()) return;
    const auto by_address = pending_by_address.find(it->second.address);
    if (by_address != pending_by_address.end() && --by_address->second == 0) {
      pending_by_address.erase(by_address);
    }
    pending.erase(it);
    // Ids settled out of order stay in pending_order until compacted.
    if (pending_order.size() > 2 * pending.size() + 1024) {
      std::erase_if(pending_order, [this](std::uint64_t id) { return !pending.contains(id); });
    }
  }
  // The oldest pending connection (from `address` when given), settled.
  Evicted evict_oldest(const std::string* address) {
    for (auto at = pending_order.begin(); at != pending_order.end();) {
      const auto it = pending.find(*at);
      if (it == pending.end()) {
        at = pending_order.erase(at);
        continue;
      }
      if (address != nullptr && it->second.address != *address) {
        ++at;
        continue;
      }
      Evicted found{it->first, std::move(it->second.session)};
      pending_order.erase(at);
      settle_locked(found.first);
      return found;
    }
    return {};
  }

  // Declared first so they outlive the io_context: sessions it destroys
  // unregister themselves.
  std::mutex sessions_mutex;
  std::unordered_map<std::uint64_t, std::weak_ptr<SessionBase>> sessions;
  std::unordered_set<std::uint64_t> vacated;  // evicted, not yet closed
  static constexpr std::size_t kTrimPeak = 128;
  std::size_t peak_sessions = 0;  // since the last trim
  std::mutex admission_mutex;
  std::unordered_map<std::uint64_t, Pending> pending;
  std::deque<std::uint64_t> pending_order;  // oldest first
  std::unordered_map<std::string, std::size_t> pending_by_address;
  std::atomic<std::uint64_t> evictions{0};
  std::atomic<std::uint64_t> trims{0};
  std::atomic<std::uint64_t> refused_resumptions{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> closing{false};  // being destroyed: no more posts
  std::atomic<std::uint64_t> next_connection{0};
  std::atomic<std::uint64_t> next_request{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> busy{0};

  static std::vector<std::unique_ptr<Lane>> make_lanes(std::size_t n) {
    std::vector<std::unique_ptr<Lane>> made;
    for (std::size_t k = 0; k < std::max<std::size_t>(1, n); ++k) {
      made.push_back(std::make_unique<Lane>());
    }
    return made;
  }

  Options options;
  const bool default_headers_clean;  // else every response is a 500 (Session::write)
  const std::size_t io_threads;
  std::vector<std::unique_ptr<Lane>> lanes;             // one per I/O thread
  net::io_context& ioc;                                 // lane 0's: the acceptor and the drain
  net::strand<net::io_context::executor_type> control;  // acceptor and drain
  tcp::acceptor acceptor;
  net::steady_timer retry_timer;
  net::steady_timer drain_timer;
  std::size_t next_lane_index = 0;  // the acceptor's (control strand)
  std::mutex rescue_mutex;
  std::condition_variable rescue_wake;
  std::atomic<bool> rescue_stop{false};
  // The rescuer checks the lanes every few milliseconds while inline
  // handlers run, and sleeps (rescue_idle) after a second without any.
  std::atomic<std::uint64_t> inline_calls{0};
  std::atomic<bool> rescue_idle{false};

  // Before an inline handler: counts it, and wakes a sleeping rescuer.
  void inline_begins() {
    inline_calls.fetch_add(1);
    if (rescue_idle.load()) {
      {
        std::lock_guard lock(rescue_mutex);
        rescue_idle = false;
      }
      rescue_wake.notify_one();
    }
  }
  std::vector<std::pair<std::string, std::unique_ptr<WorkerPool>>> pools;
};
}  // namespace detail

namespace {

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

// One connection: TLS handshake, then requests one after the other. Every
// member runs on the connection's strand; the object lives as long as an
// operation (or a worker job) holds a shared_ptr to it.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(detail::ServerCore& server, detail::Lane& lane, Stream stream, ConnectionInfo info)
      : server_(server),
        lane_(lane),
        stream_(std::move(stream)),
        info_(std::move(info)),
        timer_(stream_.get_executor()),
        buffer_(read_buffer_limit(server.options)),
        count_chunk_header_(
            [this](std::uint64_t, beast::string_view extensions, beast::error_code& ec) {
              // The size line (at most 16 hex digits with CRLF) and extensions.
              chunk_metadata_ += extensions.size() + 18;
              if (chunk_metadata_ > options().header_limit) ec = bhttp::error::bad_chunk_extension;
            }) {}
  ~Session() override { server_.remove(info_.id); }

  void start() {
    if constexpr (kIsTls<Stream>) {
      state_ = State::kHandshake;
      // The ClientHello's first bytes are due at once; then the rest of the
      // handshake within handshake_timeout of the accept.
      const auto handshake_deadline = Clock::now() + options().handshake_timeout;
      deadline_in(std::min(options().first_byte_timeout, options().handshake_timeout));
      lowest().async_read_some(buffer_.prepare(std::min<std::size_t>(4096, buffer_.max_size())),
                               [self = this->shared_from_this(), handshake_deadline](
                                   beast::error_code ec, std::size_t n) {
                                 if (ec) return self->close();
                                 self->buffer_.commit(n);
                                 self->deadline_at(handshake_deadline);
                                 self->stream_.async_handshake(
                                     net::ssl::stream_base::server, self->buffer_.data(),
                                     // Callable with the error alone too: Boost 1.81's constraint
                                     // on the buffered handshake asks for void(error_code).
                                     [self](beast::error_code ec, std::size_t used = 0) {
                                       self->buffer_.consume(used);
                                       self->on_handshake(ec);
                                     });
                               });
    } else {
      wait_for_request(std::min(options().first_byte_timeout, options().handshake_timeout));
    }
  }

  void drain() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->draining_ = true;
      // A handshake may carry a request right behind it (TLS 1.3): it goes
      // on, under its deadline. A request being read or answered gets its
      // response, then the connection closes.
      if (self->state_ != State::kIdle) return;
      // Idle: end the wait for a request unless one has begun to arrive.
      // cancel() leaves a wait that already completed with bytes alone.
      beast::error_code ec;
      auto& socket = self->lowest().socket();
      if (socket.available(ec) == 0 || ec) socket.cancel(ec);
    });
  }

  auto executor() { return stream_.get_executor(); }

  void force_close() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->close(); });
  }

 private:
  enum class State { kHandshake, kIdle, kReading, kHandling, kWriting, kClosing };
  using Self = Session<Stream>;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // One timer per connection (not one per read and write, as tcp_stream's
  // expires_after arms): setting a deadline is a store, and the timer is
  // re-armed only when a deadline comes earlier than the one it waits for,
  // or when it fires before the current deadline. At the deadline the
  // connection closes; its pending operation ends with an error.
  void deadline_in(Clock::duration timeout) { deadline_at(Clock::now() + timeout); }
  void deadline_at(Clock::time_point at) {
    deadline_ = at;
    if (!timer_armed_ || at < armed_for_) arm(at);
  }
  void arm(Clock::time_point at) {
    timer_armed_ = true;
    armed_for_ = at;
    timer_.expires_at(at);
    timer_.async_wait(
        [weak = this->weak_from_this(), generation = ++timer_generation_](beast::error_code ec) {
          const auto self = weak.lock();
          if (!self || ec || generation != self->timer_generation_ || self->closed_) return;
          self->timer_armed_ = false;
          if (Clock::now() < self->deadline_) return self->arm(self->deadline_);
          self->close();
        });
  }
  const Options& options() const { return server_.options; }

  void on_handshake(beast::error_code ec) {
    server_.settle(info_.id);
    if (ec) return close();
    SSL* ssl = stream_.native_handle();
    // A resumed session skips certificate verification: its certificate
    // must still be valid now, and its names clean.
    if (SSL_session_reused(ssl) == 1 && !peer_certificate_current(ssl)) {
      ++server_.refused_resumptions;
      return close();
    }
    auto names = peer_names(ssl);
    if (!names) return close();
    info_.client_names = std::move(*names);
    // The first request is due now: a client that completed the handshake
    // and sends nothing is a slow client, not an idle keep-alive one.
    wait_for_request(options().header_timeout);
  }

  // Waits up to `timeout` for the first byte of the next request; an idle
  // connection is one a drain may close.
  void wait_for_request(std::chrono::milliseconds timeout) {
    if (buffer_.size() > 0) return read_header();  // pipelined
    state_ = State::kIdle;
    // Draining: only a handshake that just ended gets here; its request is
    // on its way or never comes.
    deadline_in(draining_ ? std::min(timeout, options().header_timeout) : timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options().header_limit));
    parser_->body_limit(options().body_limit);
    chunk_metadata_ = 0;
    parser_->on_chunk_header(count_chunk_header_);
    deadline_in(options().header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               if constexpr (!kIsTls<Stream>) self->server_.settle(self->info_.id);
                               if (ec) return self->on_read_error(ec);
                               self->received_ = Clock::now();
                               const std::string refusal = framing_refusal(
                                   self->parser_->get(), self->options().request_bodies);
                               if (!refusal.empty()) return self->refuse({400, {}, refusal});
                               self->deadline_in(self->options().body_timeout);
                               self->body_bytes_ = 0;
                               self->read_body();
                             });
  }

  // The body, counting every byte the parser takes (chunk data, size
  // lines, extensions, trailers) against body_limit + header_limit: Beast's
  // body_limit counts chunk data only.
  void read_body() {
    if (parser_->is_done()) return handle();
    bhttp::async_read_some(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
          if (ec) return self->on_read_error(ec);
          self->body_bytes_ += n;
          const std::size_t most = self->options().body_limit + self->options().header_limit;
          if (self->body_bytes_ > most) {
            return self->refuse(
                {400, {}, "body with its framing larger than " + std::to_string(most) + " bytes"});
          }
          self->read_body();
        });
  }

  void on_read_error(beast::error_code ec) {
    ProtocolError error{0, {}, {}};
    if (ec == bhttp::error::buffer_overflow) {
      error = {
          400, {}, "request framing larger than " + std::to_string(buffer_.max_size()) + " bytes"};
    } else if (ec == bhttp::error::bad_chunk_extension &&
               chunk_metadata_ > options().header_limit) {
      error = {400,
               {},
               "chunk metadata larger than " + std::to_string(options().header_limit) + " bytes"};
    } else if (ec == bhttp::error::header_limit) {
      error = {431,
               {},
               "request header larger than " + std::to_string(options().header_limit) + " bytes"};
    } else if (ec == bhttp::error::body_limit) {
      error = {413, {}, "body larger than " + std::to_string(options().body_limit) + " bytes"};
    } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
               ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      error = {400, {}, "malformed HTTP request"};
    } else {
      return close();  // end of stream, timeout, reset
    }
    refuse(std::move(error));
  }

  // Answers a request refused by the parser or its framing; the
  // connection closes after the answer.
  void refuse(ProtocolError error) {
    if (parser_->is_header_done()) error.target = parser_->get().target();
    if (received_ == Clock::time_point{}) received_ = Clock::now();
    unread_body_ = true;
    write(options().protocol_error(error), nullptr);
  }

  void handle() {
    state_ = State::kHandling;
    deadline_ = Clock::time_point::max();  // none while the handler runs; write() sets one
    const auto& message = parser_->get();
    request_.method = message.method_string();
    request_.target = message.target();
    request_.body = message.body();
    request_.headers.clear();
    for (const auto& field : message)
      request_.headers.emplace_back(field.name_string(), field.value());
    request_number_ = ++server_.next_request;
    const RequestContext context{info_, request_number_, received_};

    const Router::Match match = options().router.find(request_.method, request_.path());
    if (match.handler == nullptr) {
      return write(options().router.not_allowed(request_, context, match.allow), &message);
    }
    WorkerPool* pool = match.run != Run::kInline ? server_.pool(match.pool) : nullptr;
    if (pool == nullptr) return write(invoke(*match.handler, context), &message);
    if (match.run == Run::kInlineWhenIdle && !detail::tl_rescuer &&
        pool->try_enter(server_.io_threads - 1)) {
      // The rescuer takes the lane's other connections if this takes long.
      server_.inline_begins();
      lane_.inline_since.store(detail::steady_ns());
      Response response = invoke(*match.handler, context);  // catches everything
      lane_.inline_since.store(0);
      pool->leave();
      return write(std::move(response), &message);
    }
    auto job = [self = this->shared_from_this(), handler = match.handler,
                guard = net::make_work_guard(stream_.get_executor())] {
      const RequestContext context{self->info_, self->request_number_, self->received_};
      Response response = self->invoke(*handler, context);
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->write(std::move(response), &self->parser_->get());
      });
    };
    if (!pool->try_post(std::move(job))) {
      ++server_.busy;
      Response busy = options().busy(request_, context);
      bool has_retry_after = false;
      for (const auto& [name, value] : busy.headers)
        has_retry_after |= iequals(name, "Retry-After");
      if (!has_retry_after) busy.header("Retry-After", "1");
      write(std::move(busy), &message);
    }
  }

  Response invoke(const Handler& handler, const RequestContext& context) {
    try {
      return handler(request_, context);
    } catch (const std::exception& e) {
      return options().internal_error(request_, context, e.what());
    } catch (...) {
      return options().internal_error(request_, context, "unknown exception");
    }
  }

  // Sends `response`; `request` is null when the request was refused unread.
  void write(Response response, const bhttp::request<bhttp::string_body>* request) {
    if (closed_) return;  // force-closed while a worker ran the handler
    state_ = State::kWriting;
    response_ = std::move(response);
    ++requests_served_;
    keep_alive_ = request != nullptr && request->keep_alive() && !draining_ &&
                  !server_.stopping.load() && requests_served_ < options().keep_alive_max_requests;
    const unsigned version = request != nullptr ? request->version() : 11;
    if (!headers_clean()) {
      // A handler put a control character in a header: a bug, never sent.
      response_ = Response::text(500, "response header with a control character\n", "text/plain");
      response_.outcome = "bad-response-header";
    }
    if (response_.chunk_size > 0 && version == 11 && !head(request) &&
        !bodiless(response_.status)) {
      return write_chunked(version);
    }
    serialize(version, request);
    deadline_in(options().write_timeout);
    net::async_write(stream_, net::buffer(out_),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_written(ec);
                     });
  }

  // 1xx, 204 and 304 have no body and no Content-Length (RFC 9110 8.6).
  static bool bodiless(int status) {
    return status == 204 || status == 304 || (status >= 100 && status < 200);
  }
  static bool head(const bhttp::request<bhttp::string_body>* request) {
    return request != nullptr && request->method() == bhttp::verb::head;
  }

  // The response's status line, header and body in out_ (its capacity
  // kept from one response to the next), as Beast's serializer wrote them:
  // the default headers, the handler's (less the framing ones the server
  // owns: Connection, Content-Length, Transfer-Encoding), Connection
  // (close on HTTP/1.1, keep-alive on HTTP/1.0) and Content-Length. One
  // buffer, so one TLS record and no field list built per response (issue
  // 20: Beast's fields and serializer cost a fifth of the serving path's
  // instructions).
  void serialize(unsigned version, const bhttp::request<bhttp::string_body>* request) {
    const bool no_body = head(request) || bodiless(response_.status);
    out_.clear();
    out_.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    out_.append(std::to_string(response_.status)).push_back(' ');
    const auto reason =
        bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(response_.status)));
    out_.append(reason.data(), reason.size()).append("\r\n");
    const auto field = [this](std::string_view name, std::string_view value) {
      out_.append(name).append(": ").append(value).append("\r\n");
    };
    for (const auto& [name, value] : options().default_headers) field(name, value);
    for (const auto& [name, value] : response_.headers) {
      if (!framing(name)) field(name, value);
    }
    if (version == 11 && !keep_alive_) field("Connection", "close");
    if (version == 10 && keep_alive_) field("Connection", "keep-alive");
    if (!bodiless(response_.status)) {
      field("Content-Length", std::to_string(response_.body.size()));  // HEAD's too
    }
    out_.append("\r\n");
    if (!no_body) out_.append(response_.body);
  }

  // The headers the server owns: a handler's are not sent.
  static bool framing(std::string_view name) {
    return iequals(name, "Connection") || iequals(name, "Content-Length") ||
           iequals(name, "Transfer-Encoding");
  }

  // The handler's headers are clean (the default ones were checked once).
  bool headers_clean() const {
    return server_.default_headers_clean &&
           std::all_of(response_.headers.begin(), response_.headers.end(), clean_header);
  }

  // The header, then the body in chunks of response_.chunk_size and the
  // last chunk, encoded by Beast, in one more write.
  void write_chunked(unsigned version) {
    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(response_.status));
    for (const auto& [name, value] : options().default_headers) res_.insert(name, value);
    for (const auto& [name, value] : response_.headers) {
      if (!framing(name)) res_.insert(name, value);
    }
    res_.keep_alive(keep_alive_);
    res_.chunked(true);
    chunked_body_.clear();
    const std::string& body = response_.body;
    const auto append = [this](const auto& buffers) {
      const std::size_t at = chunked_body_.size();
      chunked_body_.resize(at + beast::buffer_bytes(buffers));
      net::buffer_copy(net::buffer(chunked_body_.data() + at, chunked_body_.size() - at), buffers);
    };
    for (std::size_t at = 0; at < body.size(); at += response_.chunk_size) {
      append(bhttp::make_chunk(
          net::const_buffer(body.data() + at, std::min(response_.chunk_size, body.size() - at))));
    }
    append(bhttp::make_chunk_last());
    header_serializer_.emplace(res_);
    deadline_in(options().write_timeout);
    bhttp::async_write_header(
        stream_, *header_serializer_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->on_written(ec);
          net::async_write(self->stream_, net::buffer(self->chunked_body_),
                           [self](beast::error_code ec, std::size_t) { self->on_written(ec); });
        });
  }

  void on_written(beast::error_code ec) {
    ++server_.requests;
    if (options().access_log) {
      const bool parsed = parser_ && parser_->is_header_done();
      const auto& message = parser_->get();
      options().access_log(AccessRecord{
          info_, request_number_, parsed ? std::string_view(message.method_string()) : "-",
          parsed ? std::string_view(message.target()) : "-", response_,
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received_)});
    }
    received_ = {};
    request_number_ = 0;
    if (ec) return close();
    if (unread_body_) return linger();
    if (!keep_alive_) return shutdown();
    wait_for_request(options().idle_timeout);
  }

  // The request was refused before its body was read: read and discard
  // what the client still sends (bounded), so closing does not reset the
  // connection before the client has read the answer.
  void linger() {
    state_ = State::kClosing;
    deadline_in(std::chrono::seconds(2));
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(std::min<std::size_t>(16 * 1024, buffer_.max_size())),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > 1024 * 1024) return self->close();
                              self->linger();
                            });
  }

  void shutdown() {
    state_ = State::kClosing;
    if constexpr (kIsTls<Stream>) {
      deadline_in(std::chrono::seconds(1));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->close(); });
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      close();
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    state_ = State::kClosing;
    timer_.cancel();
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  detail::ServerCore& server_;
  detail::Lane& lane_;  // the I/O thread's context the connection runs on
  Stream stream_;
  ConnectionInfo info_;
  net::steady_timer timer_;  // the connection's one deadline timer
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point armed_for_{};
  bool timer_armed_ = false;
  std::uint64_t timer_generation_ = 0;  // a handler of an older arm() does nothing
  State state_ = State::kIdle;
  bool draining_ = false;
  bool closed_ = false;
  bool keep_alive_ = false;
  bool unread_body_ = false;
  std::size_t requests_served_ = 0;
  std::size_t lingered_ = 0;
  beast::flat_buffer buffer_;  // at most read_buffer_limit bytes
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::size_t chunk_metadata_ = 0;  // this request's chunk size lines and extensions
  std::size_t body_bytes_ = 0;      // this request's body with its framing
  std::function<void(std::uint64_t, beast::string_view, beast::error_code&)> count_chunk_header_;
  Request request_;
  std::uint64_t request_number_ = 0;
  Clock::time_point received_{};
  Response response_;
  std::string out_;                          // the response as sent (not chunked)
  bhttp::response<bhttp::string_body> res_;  // a chunked response's header
  std::optional<bhttp::response_serializer<bhttp::string_body>> header_serializer_;
  std::string chunked_body_;
};

}  // namespace

// Round robin over the lanes, past one whose thread runs a handler inline
// (it may be a hung token call).
detail::Lane& detail::ServerCore::next_lane() {
  for (std::size_t tries = 0; tries + 1 < lanes.size(); ++tries) {
    Lane& lane = *lanes[next_lane_index++ % lanes.size()];
    if (lane.inline_since.load() == 0) return lane;
  }
  return *lanes[next_lane_index++ % lanes.size()];
}

// A lane whose thread has run an inline handler for longer than
// kRescueAfter (a slow or hung token call) is run by this thread until the
// handler returns, so that handler holds one I/O thread and the lane's
// other connections go on: what one shared io_context gave, for a check
// every kRescueAfter instead of a hand-over per event.
void detail::ServerCore::rescue() {
  tl_rescuer = true;
  constexpr auto kRescueAfter = std::chrono::milliseconds(5);
  constexpr int kChecksBeforeSleep = 200;  // a second of checks without an inline handler
  std::uint64_t calls_seen = inline_calls.load();
  int quiet_checks = 0;
  for (;;) {
    {
      std::unique_lock lock(rescue_mutex);
      if (quiet_checks >= kChecksBeforeSleep) {
        // Idle first, then the count: an inline_begins() at this moment
        // sees the one or leaves the other changed (both sequentially
        // consistent), so no slow handler goes unwatched.
        rescue_idle = true;
        if (inline_calls.load() == calls_seen) {
          rescue_wake.wait(lock, [this] { return rescue_stop.load() || !rescue_idle; });
        }
        rescue_idle = false;
        quiet_checks = 0;
      } else {
        rescue_wake.wait_for(lock, kRescueAfter, [this] { return rescue_stop.load(); });
      }
      if (rescue_stop.load()) return;
    }
    const std::uint64_t calls = inline_calls.load();
    quiet_checks = calls == calls_seen ? quiet_checks + 1 : 0;
    calls_seen = calls;
    // Every lane stuck longer than kRescueAfter, in turn, until none is.
    for (bool stuck = true; stuck && !rescue_stop.load();) {
      stuck = false;
      for (std::size_t k = 0; k < lanes.size(); ++k) {
        Lane& lane = *lanes[k];
        const std::int64_t since = lane.inline_since.load();
        if (since == 0 || lane.ioc.stopped() ||
            steady_ns() - since < std::chrono::nanoseconds(kRescueAfter).count()) {
          continue;
        }
        stuck = true;
        lane.ioc.run_for(std::chrono::milliseconds(1));
        // The lane's own thread may have gone to wait while this one held
        // the reactor; a hint-1 context wakes no other thread for work it
        // queues itself. A post from outside the lane wakes it, at once,
        // not after another lane's handler returns.
        net::post(lane.ioc, [] {});
      }
    }
  }
}

void detail::ServerCore::accept() {
  Lane& lane = next_lane();
  auto accepted = [this, &lane](beast::error_code ec, tcp::socket socket) {
    if (stopping.load() || ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors, say: pause rather than spin.
      retry_timer.expires_after(std::chrono::milliseconds(50));
      retry_timer.async_wait([this](beast::error_code ec) {
        if (!ec && !stopping.load()) accept();
      });
      return;
    }
    on_accept(std::move(socket), lane);
    accept();
  };
  acceptor.async_accept(net::make_strand(lane.ioc), std::move(accepted));
}

void detail::ServerCore::on_accept(tcp::socket socket, Lane& lane) {
  beast::error_code ec;
  if (counted_connections() >= options.max_connections) {
    ++rejected;
    socket.close(ec);
    return;
  }
  ++accepted;
  socket.set_option(tcp::no_delay(true), ec);
  ConnectionInfo info;
  info.id = ++next_connection;
  const auto remote = socket.remote_endpoint(ec);
  if (!ec) {
    info.remote_address = remote.address().to_string();
    info.remote_port = remote.port();
  }
  info.tls = options.tls != nullptr;
  const std::uint64_t id = info.id;
  for (auto& [evicted_id, evicted] : admit(id, info.remote_address)) {
    vacate(evicted_id);
    if (auto session = evicted.lock()) session->force_close();
  }
  auto launch = [this, id](auto session) {
    add(id, session);
    set_pending_session(id, session);
    net::dispatch(session->executor(), [session] { session->start(); });
  };
  if (options.tls) {
    using TlsStream = beast::ssl_stream<beast::tcp_stream>;
    launch(std::make_shared<Session<TlsStream>>(
        *this, lane, TlsStream(beast::tcp_stream(std::move(socket)), *options.tls),
        std::move(info)));
  } else {
    launch(std::make_shared<Session<beast::tcp_stream>>(
        *this, lane, beast::tcp_stream(std::move(socket)), std::move(info)));
  }
}

void detail::ServerCore::begin_drain(std::chrono::milliseconds timeout) {
  beast::error_code ignored;
  acceptor.close(ignored);
  retry_timer.cancel();
  for (auto& lane : lanes) lane->work.reset();
  for_each_session([](SessionBase& session) { session.drain(); });
  drain_timer.expires_after(timeout);
  drain_timer.async_wait([this](beast::error_code ec) {
    if (!ec) for_each_session([](SessionBase& session) { session.force_close(); });
  });
  if (open_connections() == 0) drain_timer.cancel();
}

Server::Server(Options options) : impl_(std::make_unique<detail::ServerCore>(std::move(options))) {}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

int Server::bind() {
  auto& i = *impl_;
  const auto& o = i.options;
  beast::error_code ec;
  const auto address = net::ip::make_address(o.listen, ec);
  const std::string where = o.listen + ":" + std::to_string(o.port);
  if (ec) throw Error(ErrorCode::kIo, "cannot listen on " + where + ": not an IP address");
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  i.acceptor.open(endpoint.protocol(), ec);
  if (!ec) i.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) i.acceptor.bind(endpoint, ec);
  if (!ec) i.acceptor.listen(o.backlog > 0 ? o.backlog : default_backlog(), ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot listen on " + where + ": " + ec.message());
  return i.acceptor.local_endpoint().port();
}

void Server::serve() {
  auto& i = *impl_;
  net::post(i.control, [&i] {
    if (!i.stopping.load() && i.acceptor.is_open()) i.accept();
  });
  std::vector<std::thread> threads;
  for (std::size_t n = 1; n < i.lanes.size(); ++n) {
    threads.emplace_back([&i, n] { i.lanes[n]->ioc.run(); });
  }
  std::thread rescuer;  // inline handlers run only with 2 lanes or more
  if (i.lanes.size() > 1) rescuer = std::thread([&i] { i.rescue(); });
  i.ioc.run();
  for (auto& thread : threads) thread.join();
  if (rescuer.joinable()) {
    {
      std::lock_guard lock(i.rescue_mutex);
      i.rescue_stop = true;
    }
    i.rescue_wake.notify_one();
    rescuer.join();
  }
}

void Server::stop(std::chrono::milliseconds drain_timeout) {
  auto& i = *impl_;
  if (i.stopping.exchange(true)) return;
  net::post(i.control, [&i, drain_timeout] { i.begin_drain(drain_timeout); });
}

bool Server::draining() const { return impl_->stopping.load(); }

bool Server::tls() const { return impl_->options.tls != nullptr; }

Stats Server::stats() const {
  auto& i = *impl_;
  Stats s;
  s.accepted_connections = i.accepted.load();
  s.rejected_connections = i.rejected.load();
  s.open_connections = i.open_connections();
  s.requests = i.requests.load();
  s.busy_rejections = i.busy.load();
  s.pending_connections = i.pending_count();
  s.evicted_connections = i.evictions.load();
  s.refused_resumptions = i.refused_resumptions.load();
  s.memory_trims = i.trims.load();
  if (const WorkerPool* pool = i.pool({})) {
    const auto [queued, running] = pool->load();
    s.worker_queue_length = queued;
    s.workers_busy = running;
  }
  return s;
}

}  // namespace stir::http
