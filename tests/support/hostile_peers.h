// Hostile peers for the tests of issue 17: a TLS client that floods a
// request with endless framing (chunk extensions, zeros, trailers) while
// watching for the server's answer, resumes saved sessions, and connects
// from any loopback source address; a TLS server that answers any request
// with endless framing (for the x5u fetcher); the resident memory of this
// process.
//
// Threads: no shared state; each object is used by one thread. Errors:
// std::runtime_error for set-up bugs; network outcomes are return values.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace stir::testing {

// Whether a process's RSS says what our code holds. Under AddressSanitizer
// it does not: freed memory waits in its quarantine and every allocation
// has redzones and shadow, so the memory-budget checks hold only in a
// normal build (the sanitizer run still checks every answer and close).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kRssMeasuresTheCode = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kRssMeasuresTheCode = false;
#else
inline constexpr bool kRssMeasuresTheCode = true;
#endif
#else
inline constexpr bool kRssMeasuresTheCode = true;
#endif

// This process's resident set (VmRSS), in bytes.
inline std::size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  std::size_t kib = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> kib;
      return kib * 1024;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

// A blocking TCP connection to 127.0.0.1:port from `source` (any address
// of 127.0.0.0/8); -1 when refused.
inline int connect_from(int port, const std::string& source) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<std::uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What came of a flood: bytes sent after the head, the server's answer
// (empty when none) and whether the server closed the connection.
struct FloodResult {
  std::size_t sent = 0;
  std::string answer;
  bool closed = false;
};

// One TLS connection over a non-blocking socket, so a write never waits
// for a server that stopped reading and an answer is seen while sending.
class HostileTlsClient {
 public:
  HostileTlsClient(int port, const std::string& ca_file, const std::string& cert_file = "",
                   const std::string& key_file = "", SSL_SESSION* resume = nullptr,
                   const std::string& source = "127.0.0.1")
      : ctx_(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free), ssl_(nullptr, &SSL_free) {
    if (!ctx_ || SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("cannot set up the TLS client");
    }
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    if (!cert_file.empty() &&
        (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert_file.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx_.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
      throw std::runtime_error("cannot load the client certificate");
    }
    fd_ = connect_from(port, source);
    if (fd_ < 0) return;
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    if (resume != nullptr) SSL_set_session(ssl_.get(), resume);
  }
  ~HostileTlsClient() {
    // close_notify: OpenSSL marks the session of a connection freed
    // without it as not resumable.
    if (ssl_) SSL_shutdown(ssl_.get());
    if (fd_ >= 0) ::close(fd_);
  }
  HostileTlsClient(const HostileTlsClient&) = delete;
  HostileTlsClient& operator=(const HostileTlsClient&) = delete;

  bool handshake() {
    if (fd_ < 0) return false;
    for (;;) {
      const int rc = SSL_connect(ssl_.get());
      if (rc == 1) return true;
      if (!wait(SSL_get_error(ssl_.get(), rc))) return false;
    }
  }
  bool reused() const { return SSL_session_reused(ssl_.get()) == 1; }
  // Sends close_notify: the server's discard of an unread body ends at
  // once; the answer can still be read.
  void finish_sending() { SSL_shutdown(ssl_.get()); }
  // The session to resume (owned by the caller: SSL_SESSION_free).
  SSL_SESSION* session() const { return SSL_get1_session(ssl_.get()); }

  // Writes all of `bytes` (false when the server closed or timed out).
  bool write(std::string_view bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
      const int n = SSL_write(ssl_.get(), bytes.data() + at, static_cast<int>(bytes.size() - at));
      if (n > 0) {
        at += static_cast<std::size_t>(n);
      } else if (!wait(SSL_get_error(ssl_.get(), n))) {
        return false;
      }
    }
    return true;
  }

  // Everything until the server closes, at most `bound` long.
  std::string read_to_end(std::chrono::seconds bound = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    std::string out;
    while (read_available(out) && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 50);
    }
    return out;
  }

  // Sends `head`, then `filler` over and over until `limit` bytes of it
  // went out or the server answered or closed; then waits (bounded) for
  // the answer or the close.
  FloodResult flood(std::string_view head, std::string_view filler, std::size_t limit) {
    FloodResult result;
    if (!write(head)) {
      result.closed = true;
      return result;
    }
    while (result.sent < limit) {
      if (!read_available(result.answer)) {
        result.closed = true;
        return result;
      }
      if (!result.answer.empty()) {
        finish_sending();
        break;
      }
      const int n = SSL_write(ssl_.get(), filler.data(), static_cast<int>(filler.size()));
      if (n > 0) {
        result.sent += static_cast<std::size_t>(n);
        continue;
      }
      const int error = SSL_get_error(ssl_.get(), n);
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
        read_available(result.answer);
        result.closed = true;
        return result;
      }
      pollfd p{fd_, POLLIN | POLLOUT, 0};
      ::poll(&p, 1, 50);
    }
    result.answer += read_to_end();
    result.closed = true;
    return result;
  }

 private:
  // Appends what can be read now; false when the server closed.
  bool read_available(std::string& out) {
    char buffer[4096];
    for (;;) {
      const int n = SSL_read(ssl_.get(), buffer, sizeof buffer);
      if (n > 0) {
        out.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      const int error = SSL_get_error(ssl_.get(), n);
      ERR_clear_error();
      return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE;
    }
  }
  // Waits for the socket as `error` asks; false on any other error.
  bool wait(int error) {
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return false;
    pollfd p{fd_, static_cast<short>(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    return ::poll(&p, 1, 20000) == 1;
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_;
  int fd_ = -1;
};

// A TLS server on 127.0.0.1 that answers every connection's first request
// with `head`, then `filler` over and over until `limit` bytes or the
// client goes away: an x5u host that never ends its response's framing.
class EndlessTlsServer {
 public:
  EndlessTlsServer(const std::string& cert_chain_pem, const std::string& key_pem, std::string head,
                   std::string filler, std::size_t limit)
      : ctx_(SSL_CTX_new(TLS_server_method()), &SSL_CTX_free),
        head_(std::move(head)),
        filler_(std::move(filler)),
        limit_(limit) {
    BIO* chain = BIO_new_mem_buf(cert_chain_pem.data(), static_cast<int>(cert_chain_pem.size()));
    X509* leaf = PEM_read_bio_X509(chain, nullptr, nullptr, nullptr);
    SSL_CTX_use_certificate(ctx_.get(), leaf);
    X509_free(leaf);
    while (X509* ca = PEM_read_bio_X509(chain, nullptr, nullptr, nullptr)) {
      SSL_CTX_add_extra_chain_cert(ctx_.get(), ca);
    }
    BIO_free(chain);
    BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    BIO_free(key_bio);
    SSL_CTX_use_PrivateKey(ctx_.get(), key);
    EVP_PKEY_free(key);
    ERR_clear_error();
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 ||
        ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~EndlessTlsServer() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  EndlessTlsServer(const EndlessTlsServer&) = delete;
  EndlessTlsServer& operator=(const EndlessTlsServer&) = delete;

  int port() const { return port_; }
  // Bytes of filler the last connection took before the client left.
  std::size_t sent() const { return sent_.load(); }

 private:
  void serve() {
    while (!stopping_) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      timeval timeout{20, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
      SSL* ssl = SSL_new(ctx_.get());
      SSL_set_fd(ssl, fd);
      char request[4096];
      std::size_t sent = 0;
      if (SSL_accept(ssl) == 1 && SSL_read(ssl, request, sizeof request) > 0 &&
          SSL_write(ssl, head_.data(), static_cast<int>(head_.size())) > 0) {
        while (sent < limit_ &&
               SSL_write(ssl, filler_.data(), static_cast<int>(filler_.size())) > 0) {
          sent += filler_.size();
        }
      }
      sent_ = sent;
      SSL_free(ssl);
      ::close(fd);
      ERR_clear_error();
    }
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_;
  std::string head_;
  std::string filler_;
  std::size_t limit_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> sent_{0};
  std::thread thread_;
};

}  // namespace stir::testing
