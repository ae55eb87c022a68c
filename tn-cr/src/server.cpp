#include "tn_cr/server.h"

#include <fcntl.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "stir/error.h"
#include "stir/openssl.h"
#include "tn_cr/http_rules.h"
#include "tn_cr/repository.h"

namespace tn_cr {

using stir::Error;
using stir::ErrorCode;

namespace {

constexpr const char* kChainContentType = "application/pem-certificate-chain";
// Every route pattern matches any decoded path: routing is decided by
// resolve_target() on the raw target, never by httplib's decoded path.
constexpr const char* kAnyPath = "[\\s\\S]*";

// The chain served under one name, as read from one file version.
struct CachedChain {
  std::string content;
  std::string etag;
  std::string last_modified;
  std::int64_t mtime = 0;
  // Which file version `content` came from.
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtim{};

  bool same_file(const struct stat& st) const {
    return dev == st.st_dev && ino == st.st_ino && size == st.st_size &&
           mtim.tv_sec == st.st_mtim.tv_sec && mtim.tv_nsec == st.st_mtim.tv_nsec;
  }
};

// Chains by name, read once per file version. Publishing installs a new
// inode (link of a new file), so (device, inode, size, mtime) tells a new
// version from a cached one with a single fstatat.
// Threads: get() may run concurrently; a shared_mutex guards the map.
class ChainCache {
 public:
  explicit ChainCache(int dir_fd) : dir_fd_(dir_fd) {}

  // The chain under `name` (a valid name), or null when there is none.
  // Throws Error(kIo) when the file exists but cannot be read.
  std::shared_ptr<const CachedChain> get(const std::string& name) {
    struct stat st {};
    if (::fstatat(dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      forget(name);
      return nullptr;
    }
    {
      std::shared_lock lock(mutex_);
      if (auto it = chains_.find(name); it != chains_.end() && it->second->same_file(st)) {
        return it->second;
      }
    }
    auto chain = load(name);
    if (!chain) {
      forget(name);
      return nullptr;
    }
    std::unique_lock lock(mutex_);
    chains_[name] = chain;
    return chain;
  }

 private:
  void forget(const std::string& name) {
    std::unique_lock lock(mutex_);
    chains_.erase(name);
  }

  std::shared_ptr<const CachedChain> load(const std::string& name) const {
    const int fd = ::openat(dir_fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      if (errno == ENOENT || errno == ELOOP) return nullptr;
      throw Error(ErrorCode::kIo, "cannot open " + name + ": " + std::strerror(errno));
    }
    auto chain = std::make_shared<CachedChain>();
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return nullptr;
    }
    int read_errno = 0;
    char buffer[8192];
    while (chain->content.size() <= kMaxChainBytes) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        read_errno = errno;
        break;
      }
      chain->content.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (read_errno != 0) {
      throw Error(ErrorCode::kIo, "cannot read " + name + ": " + std::strerror(read_errno));
    }
    if (chain->content.size() > kMaxChainBytes) {
      throw Error(ErrorCode::kIo, "not serving " + name + ": larger than " +
                                      std::to_string(kMaxChainBytes) + " bytes");
    }
    chain->etag = http::make_etag(chain->content);
    chain->mtime = st.st_mtim.tv_sec;
    chain->last_modified = http::format_http_date(chain->mtime);
    chain->dev = st.st_dev;
    chain->ino = st.st_ino;
    chain->size = st.st_size;
    chain->mtim = st.st_mtim;
    return chain;
  }

  int dir_fd_;
  std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const CachedChain>> chains_;
};

// The request target as a log field: printable ASCII kept, other bytes
// escaped, length bounded, so no request can forge or flood a log line.
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

void set_error(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(text + "\n", "text/plain; charset=utf-8");
}

// When the current request started on this worker thread; each worker runs
// one request at a time.
thread_local std::chrono::steady_clock::time_point request_start{};

}  // namespace

LogSink stderr_log() {
  return [](std::string_view line) {
    std::string text = "tn-cr: " + std::string(line) + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
  };
}

struct Server::Impl {
  Impl(ServerOptions o, LogSink sink) : options(std::move(o)), log_sink(std::move(sink)) {}
  ~Impl() {
    if (dir_fd >= 0) ::close(dir_fd);
  }

  void log(std::string_view line) {
    std::lock_guard lock(log_mutex);
    log_sink(line);
  }

  void serve_chain(const httplib::Request& req, httplib::Response& res);
  void wire();

  ServerOptions options;
  LogSink log_sink;
  std::mutex log_mutex;
  std::unique_ptr<httplib::Server> http;
  int dir_fd = -1;
  std::unique_ptr<ChainCache> cache;
  std::string cache_control;
  int port = -1;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> run_entered{false};
  std::atomic<bool> run_finished{false};
};

void Server::Impl::serve_chain(const httplib::Request& req, httplib::Response& res) {
  const http::TargetResult target = http::resolve_target(req.target, options.path_prefix);
  if (target.verdict == http::TargetVerdict::kBadRequest) return set_error(res, 400, "bad request");
  if (target.verdict == http::TargetVerdict::kNotFound) return set_error(res, 404, "not found");
  const auto chain = cache->get(target.name);
  if (!chain) return set_error(res, 404, "not found");

  res.set_header("Cache-Control", cache_control);
  res.set_header("ETag", chain->etag);
  res.set_header("Last-Modified", chain->last_modified);
  std::string if_none_match;
  for (std::size_t i = 0; i < req.get_header_value_count("If-None-Match"); ++i) {
    if (i > 0) if_none_match += ',';
    if_none_match += req.get_header_value("If-None-Match", i);
  }
  if (http::not_modified(if_none_match, req.get_header_value("If-Modified-Since"), chain->etag,
                         chain->mtime)) {
    res.status = 304;
    return;
  }
  // The status stays unset: httplib makes it 200, or 206 for a Range request.
  res.set_content(chain->content, kChainContentType);
}

void Server::Impl::wire() {
  auto& s = *http;
  s.set_default_headers({{"X-Content-Type-Options", "nosniff"}});
  // Head and body go out in separate writes; without TCP_NODELAY, Nagle and
  // delayed ACKs add ~40 ms to every response on a kept-alive connection.
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(options.keep_alive_max_requests);
  s.set_keep_alive_timeout(options.keep_alive_timeout_s);
  s.set_read_timeout(std::chrono::milliseconds(options.read_timeout_ms));
  s.set_write_timeout(std::chrono::milliseconds(options.write_timeout_ms));
  // Request bodies are never used; a small bound keeps a 405 cheap.
  s.set_payload_max_length(std::size_t{16} * 1024);
  const std::size_t threads =
      options.threads != 0 ? options.threads
                           : std::size_t{8} * std::max(1u, std::thread::hardware_concurrency());
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };

  s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    request_start = std::chrono::steady_clock::now();
    // Methods httplib has no route table for (TRACE, CONNECT, PRI) end here.
    static const std::set<std::string> kRouted = {"GET",   "HEAD",   "POST",   "PUT",
                                                  "PATCH", "DELETE", "OPTIONS"};
    if (kRouted.contains(req.method)) return httplib::Server::HandlerResponse::Unhandled;
    set_error(res, 405, "method not allowed");
    res.set_header("Allow", "GET, HEAD");
    return httplib::Server::HandlerResponse::Handled;
  });
  s.Get(kAnyPath,
        [this](const httplib::Request& req, httplib::Response& res) { serve_chain(req, res); });
  const httplib::Server::Handler not_allowed = [](const httplib::Request&, httplib::Response& res) {
    set_error(res, 405, "method not allowed");
    res.set_header("Allow", "GET, HEAD");
  };
  s.Post(kAnyPath, not_allowed);
  s.Put(kAnyPath, not_allowed);
  s.Patch(kAnyPath, not_allowed);
  s.Delete(kAnyPath, not_allowed);
  s.Options(kAnyPath, not_allowed);

  // Errors httplib answers itself (unparsable request line, body too large,
  // target over its 8 KiB limit) get the same plain body as ours.
  s.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        // 414 becomes 400 like every other refused target.
        if (res.status == 414) res.status = 400;
        set_error(res, res.status, res.status == 400 ? "bad request" : "request refused");
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(std::move(ep));
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log("error " + loggable(req.target) + ": " + what);
        set_error(res, 500, "internal error");
      });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const bool bodyless = req.method == "HEAD" || res.status == 304;
    const std::string remote =
        req.remote_addr.empty() ? "-"
                                : loggable(req.remote_addr) + ":" + std::to_string(req.remote_port);
    std::string latency = "-";
    if (request_start != std::chrono::steady_clock::time_point{}) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - request_start)
                          .count();
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%.3fms", static_cast<double>(us) / 1000.0);
      latency = buffer;
      request_start = {};
    }
    log(loggable(req.method) + " " + loggable(req.target) + " " + std::to_string(res.status) + " " +
        std::to_string(bodyless ? 0 : res.body.size()) + " " + remote + " " + latency);
  });
}

Server::Server(ServerOptions options, LogSink log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(log))) {
  auto& o = impl_->options;
  if (o.max_age_s < kMinMaxAgeSeconds) {
    throw Error(ErrorCode::kConfig, "max_age_s must be at least " +
                                        std::to_string(kMinMaxAgeSeconds) +
                                        ": verifiers cache a certificate for 24 h anyway");
  }
  if (!http::is_valid_path_prefix(o.path_prefix)) {
    throw Error(ErrorCode::kConfig, "path_prefix '" + o.path_prefix +
                                        "' must start and end with '/' and hold plain segments");
  }
  impl_->cache_control = "public, max-age=" + std::to_string(o.max_age_s);
  impl_->dir_fd = ::open(o.repository_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl_->dir_fd < 0) {
    throw Error(
        errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
        "cannot open the repository folder " + o.repository_dir + ": " + std::strerror(errno));
  }
  impl_->cache = std::make_unique<ChainCache>(impl_->dir_fd);

  if (o.lab_plain_http) {
    impl_->log("WARNING: lab_plain_http: serving plain HTTP; verifiers require HTTPS");
    impl_->http = std::make_unique<httplib::Server>();
  } else {
    for (const auto* path : {&o.tls_cert, &o.tls_key}) {
      if (path->empty() || !std::filesystem::is_regular_file(*path)) {
        throw Error(ErrorCode::kConfig, "TLS file '" + *path + "' does not exist");
      }
    }
    auto tls = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!tls->is_valid() || SSL_CTX_check_private_key(tls->ssl_context()) != 1) {
      throw Error(ErrorCode::kConfig, "cannot use TLS certificate " + o.tls_cert + " with key " +
                                          o.tls_key + ": " + stir::openssl_error_string());
    }
    if (SSL_CTX_set_min_proto_version(tls->ssl_context(), TLS1_2_VERSION) != 1) {
      throw Error(ErrorCode::kCrypto, "cannot require TLS 1.2: " + stir::openssl_error_string());
    }
    impl_->http = std::move(tls);
  }
  impl_->wire();
}

Server::~Server() { stop(); }

int Server::bind() {
  auto& o = impl_->options;
  errno = 0;
  const int port = o.port == 0 ? impl_->http->bind_to_any_port(o.listen)
                               : (impl_->http->bind_to_port(o.listen, o.port) ? o.port : -1);
  if (port < 0) {
    throw Error(ErrorCode::kIo, "cannot listen on " + o.listen + ":" + std::to_string(o.port) +
                                    (errno != 0 ? std::string(": ") + std::strerror(errno) : ""));
  }
  impl_->port = port;
  return port;
}

void Server::run() {
  impl_->run_entered = true;
  if (!impl_->stop_requested) impl_->http->listen_after_bind();
  impl_->run_finished = true;
}

void Server::stop() {
  auto& i = *impl_;
  i.stop_requested = true;
  // httplib's stop() does nothing before listening has begun: wait for that
  // when run() is on its way (stop_requested and run_entered are sequentially
  // consistent, so either run() sees the request or this loop sees run()).
  while (i.run_entered && !i.run_finished && !i.http->is_running()) std::this_thread::yield();
  i.http->stop();
}

std::string Server::url() const {
  const auto& o = impl_->options;
  const bool v6 = o.listen.find(':') != std::string::npos;
  return std::string(o.lab_plain_http ? "http" : "https") + "://" +
         (v6 ? "[" + o.listen + "]" : o.listen) + ":" + std::to_string(impl_->port) + o.path_prefix;
}

}  // namespace tn_cr
