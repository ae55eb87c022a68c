#include "tn_cr/server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "stir/error.h"
#include "stir/http/listener.h"
#include "stir/http/server.h"
#include "tn_cr/http_rules.h"
#include "tn_cr/metrics.h"
#include "tn_cr/repository.h"

namespace tn_cr {

using stir::Error;
using stir::ErrorCode;

namespace {

constexpr const char* kChainContentType = "application/pem-certificate-chain";

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
    chain->etag = http_rules::make_etag(chain->content);
    chain->mtime = st.st_mtim.tv_sec;
    chain->last_modified = http_rules::format_http_date(chain->mtime);
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

// Log fields go through stir::http::loggable: printable ASCII kept, other
// bytes escaped, length bounded, so no request can forge or flood a line.
using stir::http::loggable;

stir::http::Response error_response(int status, const std::string& text) {
  auto response = stir::http::Response::text(status, text + "\n", "text/plain; charset=utf-8");
  response.header("Cache-Control", "no-store");
  return response;
}

stir::http::Response method_not_allowed() {
  return error_response(405, "method not allowed").header("Allow", "GET, HEAD");
}

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

  stir::http::Response serve_chain(const stir::http::Request& request);
  stir::http::Response serve_metrics(const stir::http::RequestContext& context) const;
  stir::http::Options http_options(std::shared_ptr<boost::asio::ssl::context> tls);

  ServerOptions options;
  LogSink log_sink;
  std::mutex log_mutex;
  int dir_fd = -1;
  std::unique_ptr<ChainCache> cache;
  std::string cache_control;
  std::unique_ptr<stir::http::Server> http;
  int port = -1;
  Metrics metrics;
};

stir::http::Response Server::Impl::serve_chain(const stir::http::Request& request) {
  if (request.method != "GET" && request.method != "HEAD") return method_not_allowed();
  const http_rules::TargetResult target =
      http_rules::resolve_target(std::string(request.target), options.path_prefix);
  if (target.verdict == http_rules::TargetVerdict::kBadRequest)
    return error_response(400, "bad request");
  if (target.verdict == http_rules::TargetVerdict::kNotFound)
    return error_response(404, "not found");
  const auto chain = cache->get(target.name);
  if (!chain) return error_response(404, "not found");
  metrics.count_fetch(target.name);

  stir::http::Response response;
  response.header("Cache-Control", cache_control)
      .header("ETag", chain->etag)
      .header("Last-Modified", chain->last_modified);
  std::string if_none_match;
  for (const auto value : request.header_values("If-None-Match")) {
    if (!if_none_match.empty()) if_none_match += ',';
    if_none_match += value;
  }
  if (http_rules::not_modified(if_none_match,
                               std::string(request.header("If-Modified-Since").value_or("")),
                               chain->etag, chain->mtime)) {
    response.status = 304;
    return response;
  }
  // Range is ignored: the whole chain, 200.
  response.header("Content-Type", kChainContentType);
  response.body = chain->content;
  return response;
}

stir::http::Response Server::Impl::serve_metrics(const stir::http::RequestContext& context) const {
  if (!stir::http::client_listed(options.metrics_clients, context.connection.client_names)) {
    return error_response(403, "this client identity is not in server.metrics_clients");
  }
  auto response = stir::http::Response::text(
      200, metrics.render(options.repository_dir, std::time(nullptr), http->stats()),
      "text/plain; version=0.0.4; charset=utf-8");
  response.header("Cache-Control", "no-store");
  return response;
}

stir::http::Options Server::Impl::http_options(std::shared_ptr<boost::asio::ssl::context> tls) {
  stir::http::Options o = stir::http::listener_options(options, std::move(tls));
  // No route takes a body: Transfer-Encoding is refused on every request.
  o.request_bodies = false;
  // Request bodies are never used: max_body_bytes is not a tn-cr key and
  // keeps its 16 KiB default, a small bound that keeps a 405 cheap.
  o.default_headers = {{"X-Content-Type-Options", "nosniff"}};
  // Routing is decided by resolve_target() on the raw target.
  o.router.fallback([this](const stir::http::Request& request, const stir::http::RequestContext&) {
    return serve_chain(request);
  });
  if (!options.metrics_clients.empty()) {
    o.router.add("GET", "/metrics",
                 [this](const stir::http::Request&, const stir::http::RequestContext& context) {
                   auto response = serve_metrics(context);
                   response.route = "metrics";
                   return response;
                 });
    o.router.method_not_allowed([](const stir::http::Request&, const stir::http::RequestContext&,
                                   const std::string& allow) {
      return error_response(405, "method not allowed").header("Allow", allow);
    });
  }
  // Requests refused unread get the same plain body as ours. A header over
  // 8 KiB (431) is most likely an over-long target: 400 like any other
  // refused target. A body over 16 KiB is 413.
  o.protocol_error = [](const stir::http::ProtocolError& error) {
    return error.status == 413 ? error_response(413, "request refused")
                               : error_response(400, "bad request");
  };
  o.internal_error = [this](const stir::http::Request& request, const stir::http::RequestContext&,
                            std::string_view what) {
    log("error " + loggable(request.target) + ": " + std::string(what));
    return error_response(500, "internal error");
  };
  o.access_log = [this](const stir::http::AccessRecord& record) {
    const bool bodiless = record.method == "HEAD" || record.response.status == 304;
    metrics.count_request(record.response.route.empty() ? "chain" : record.response.route,
                          record.response.status, bodiless ? 0 : record.response.body.size());
    const std::string remote = record.connection.remote_address.empty()
                                   ? "-"
                                   : loggable(record.connection.remote_address) + ":" +
                                         std::to_string(record.connection.remote_port);
    char latency[32];
    std::snprintf(latency, sizeof latency, "%.3fms",
                  static_cast<double>(record.latency.count()) / 1000.0);
    log(loggable(record.method) + " " + loggable(record.target) + " " +
        std::to_string(record.response.status) + " " +
        std::to_string(bodiless ? 0 : record.response.body.size()) + " " + remote + " " + latency);
  };
  return o;
}

Server::Server(ServerOptions options, LogSink log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(log))) {
  auto& o = impl_->options;
  if (o.max_age_s < kMinMaxAgeSeconds) {
    throw Error(ErrorCode::kConfig, "max_age_s must be at least " +
                                        std::to_string(kMinMaxAgeSeconds) +
                                        ": verifiers cache a certificate for 24 h anyway");
  }
  if (!http_rules::is_valid_path_prefix(o.path_prefix)) {
    throw Error(ErrorCode::kConfig, "path_prefix '" + o.path_prefix +
                                        "' must start and end with '/' and hold plain segments");
  }
  if (!o.metrics_clients.empty() && (o.client_ca.empty() || o.lab_plain_http)) {
    throw Error(ErrorCode::kConfig,
                "metrics_clients needs client_ca and TLS: /metrics is served only to clients "
                "that show a certificate");
  }
  impl_->cache_control = "public, max-age=" + std::to_string(o.max_age_s);
  impl_->dir_fd = ::open(o.repository_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl_->dir_fd < 0) {
    throw Error(
        errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
        "cannot open the repository folder " + o.repository_dir + ": " + std::strerror(errno));
  }
  impl_->cache = std::make_unique<ChainCache>(impl_->dir_fd);

  if (!o.lab_plain_http) {
    for (const auto* path : {&o.tls_cert, &o.tls_key}) {
      if (path->empty() || !std::filesystem::is_regular_file(*path)) {
        throw Error(ErrorCode::kConfig, "TLS file '" + *path + "' does not exist");
      }
    }
  }
  auto tls = stir::http::make_listener_tls(
      o, "tn-cr", [this](std::string_view warning) { impl_->log(warning); });
  impl_->http = std::make_unique<stir::http::Server>(impl_->http_options(std::move(tls)));
}

Server::~Server() {
  if (impl_->http) impl_->http->stop(std::chrono::milliseconds(0));
}

int Server::bind() {
  impl_->port = impl_->http->bind();
  return impl_->port;
}

void Server::run() { impl_->http->serve(); }

void Server::stop() { impl_->http->stop(kDrainTimeout); }

std::uint64_t Server::accepted_connections() const {
  return impl_->http->stats().accepted_connections;
}

std::string Server::url() const {
  return stir::http::listener_url(impl_->options, impl_->port) + impl_->options.path_prefix;
}

}  // namespace tn_cr
