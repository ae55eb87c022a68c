// Raw clients for server limit tests: plain TCP sockets that connect and
// never send (idle or slow clients), a blocking OpenSSL client that writes
// exact bytes and sees the exact alert a server sends, and a burst of new
// TLS connections.
//
// Threads: no shared state; tls_burst() runs its own threads. Errors: std::runtime_error for set-up
// bugs; network outcomes are return values.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace stir::testing {

// Lets this process open at least `wanted` descriptors (soft up to hard).
inline bool raise_fd_limit(rlim_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= wanted) return true;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur >= wanted;
}

// A blocking TCP connection to 127.0.0.1:port; -1 when refused.
inline int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closed `fd` (end of file or reset) before `deadline`;
// bytes it sent first are skipped.
inline bool closed_by_peer(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[512];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
}

// `count` TCP connections that never send a byte; stops at the first one
// refused (the caller compares the size).
inline std::vector<int> open_idle_connections(int port, int count) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = connect_loopback(port);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  return fds;
}

// How many of `fds` the server closed before `deadline`; closes them all.
inline int count_closed_by_peer(const std::vector<int>& fds,
                                std::chrono::steady_clock::time_point deadline) {
  int closed = 0;
  for (int fd : fds) {
    closed += closed_by_peer(fd, deadline) ? 1 : 0;
    ::close(fd);
  }
  return closed;
}

// One blocking TLS connection to 127.0.0.1:port, verifying the server
// against `ca_file`, optionally with a client certificate.
class RawTlsClient {
 public:
  RawTlsClient(int port, const std::string& ca_file, const std::string& cert_file = "",
               const std::string& key_file = "", int max_version = 0)
      : ctx_(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free), ssl_(nullptr, &SSL_free) {
    if (!ctx_ || SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("cannot set up the TLS client");
    }
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    if (max_version != 0) SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
    if (!cert_file.empty() &&
        (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert_file.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx_.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
      throw std::runtime_error("cannot load the client certificate");
    }
    fd_ = connect_loopback(port);
    if (fd_ < 0) return;
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
  }
  ~RawTlsClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawTlsClient(const RawTlsClient&) = delete;
  RawTlsClient& operator=(const RawTlsClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool handshake() { return connected() && SSL_connect(ssl_.get()) == 1; }
  int version() const { return SSL_version(ssl_.get()); }
  bool write(std::string_view bytes) {
    return SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }
  // Everything until the server closes (or the 10 s socket timeout).
  std::string read_to_end() {
    std::string out;
    char buffer[4096];
    int n = 0;
    while ((n = SSL_read(ssl_.get(), buffer, sizeof buffer)) > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
    }
    error_ = ERR_peek_last_error();
    return out;
  }
  // The OpenSSL error the last read ended with (a received alert shows as
  // its SSL_R_ reason), 0 for a clean end.
  int error_reason() const { return ERR_GET_REASON(error_); }

 private:
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_;
  int fd_ = -1;
  unsigned long error_ = 0;
};

// The status code of the first response in `text`, 0 when there is none.
inline int status_of(const std::string& text) {
  if (text.rfind("HTTP/1.", 0) != 0 || text.size() < 12) return 0;
  return std::stoi(text.substr(9, 3));
}

struct BurstResult {
  int refused = 0;  // TCP connections the server's listen queue did not take
  int served = 0;   // TLS handshakes that ended with a 200 answer to `request`
};

// A burst of `count` new TLS connections at once: every one is connected
// before any handshake begins (so the listen queue must hold them all), then
// 25 threads each handshake their share, send `request` (which should ask
// for Connection: close) and read the answer to the end. The caller raises
// the descriptor limit (raise_fd_limit).
inline BurstResult tls_burst(int port, int count, const std::string& ca_file,
                             const std::string& request, const std::string& cert_file = "",
                             const std::string& key_file = "") {
  constexpr int kThreads = 25;
  std::vector<std::vector<std::unique_ptr<RawTlsClient>>> shares(kThreads);
  BurstResult result;
  for (int i = 0; i < count; ++i) {
    auto client = std::make_unique<RawTlsClient>(port, ca_file, cert_file, key_file);
    if (!client->connected()) ++result.refused;
    shares[static_cast<std::size_t>(i % kThreads)].push_back(std::move(client));
  }
  std::atomic<int> served{0};
  std::vector<std::thread> threads;
  for (auto& share : shares) {
    threads.emplace_back([&share, &served, &request] {
      for (auto& client : share) {
        if (client->handshake() && client->write(request) &&
            status_of(client->read_to_end()) == 200) {
          ++served;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  result.served = served.load();
  return result;
}

}  // namespace stir::testing
