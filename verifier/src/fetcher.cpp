#include "stir/verifier/fetcher.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "stir/error.h"
#include "stir/openssl.h"
#include "stir/verifier/url.h"

namespace stir::vs {
namespace {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// Status line and headers larger than this are refused.
constexpr std::size_t kMaxHeaderBytes = std::size_t{16} * 1024;
// Chunk-size lines and trailers on top of the body limit.
constexpr std::size_t kChunkOverheadBytes = 4096;

[[noreturn]] void io_error(const std::string& message) { throw Error(ErrorCode::kIo, message); }

[[noreturn]] void refused(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

int remaining_ms(Deadline deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left, INT_MAX));
}

// Waits until `fd` is ready for `events`; false when the deadline passed.
bool wait_fd(int fd, short events, Deadline deadline) {
  for (;;) {
    const int ms = remaining_ms(deadline);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Owns a descriptor; moving transfers it.
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

struct ResolvedAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* address() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// getaddrinfo has no timeout of its own: it runs on a detached thread and the
// caller stops waiting at the deadline (the thread finishes on its own).
std::vector<ResolvedAddress> resolve(const HttpsUrl& url, Deadline deadline) {
  struct State {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    int rc = 0;
    std::vector<ResolvedAddress> addresses;
  };
  auto state = std::make_shared<State>();
  const std::string host = url.host;
  const std::string port = std::to_string(url.port);
  const bool numeric = url.host_is_ip;
  std::thread([state, host, port, numeric] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
    addrinfo* result = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &result);
    std::vector<ResolvedAddress> addresses;
    if (rc == 0) {
      for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(sockaddr_storage)) {
          continue;
        }
        ResolvedAddress resolved;
        std::memcpy(&resolved.storage, ai->ai_addr, ai->ai_addrlen);
        resolved.length = ai->ai_addrlen;
        addresses.push_back(resolved);
      }
      ::freeaddrinfo(result);
    }
    const std::lock_guard lock(state->mutex);
    state->rc = rc;
    state->addresses = std::move(addresses);
    state->done = true;
    state->done_cv.notify_all();
  }).detach();
  std::unique_lock lock(state->mutex);
  if (!state->done_cv.wait_until(lock, deadline, [&] { return state->done; })) {
    io_error("resolving " + url.host + " timed out");
  }
  if (state->rc != 0) io_error("cannot resolve " + url.host + ": " + gai_strerror(state->rc));
  if (state->addresses.empty()) io_error(url.host + " has no IPv4 or IPv6 address");
  return std::move(state->addresses);
}

// Connects to the first address that answers within the connect budget.
Socket connect_any(const std::vector<ResolvedAddress>& addresses, Deadline connect_deadline) {
  std::string last_error = "no address";
  for (const ResolvedAddress& resolved : addresses) {
    Socket socket(
        ::socket(resolved.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (socket.get() < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const std::string where = address_to_string(resolved.address());
    if (::connect(socket.get(), resolved.address(), resolved.length) == 0) return socket;
    if (errno != EINPROGRESS) {
      last_error = where + ": " + std::strerror(errno);
      continue;
    }
    if (!wait_fd(socket.get(), POLLOUT, connect_deadline)) {
      last_error = where + ": connect timed out";
      continue;
    }
    int so_error = 0;
    socklen_t length = sizeof so_error;
    if (::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &so_error, &length) != 0) {
      so_error = errno;
    }
    if (so_error == 0) return socket;
    last_error = where + ": " + std::strerror(so_error);
  }
  io_error("cannot connect: " + last_error);
}

using SslPtr = std::unique_ptr<SSL, stir::detail::OpenSslDeleter<SSL, SSL_free>>;

// One TLS connection over a non-blocking socket. OpenSSL reads and writes
// memory BIOs; this class moves the bytes with recv/send(MSG_NOSIGNAL), so
// every wait is a poll bounded by the deadline.
class TlsStream {
 public:
  TlsStream(SSL_CTX* ctx, Socket socket, const HttpsUrl& url, Deadline deadline)
      : socket_(std::move(socket)), deadline_(deadline), ssl_(SSL_new(ctx)) {
    if (!ssl_) throw Error(ErrorCode::kCrypto, "SSL_new: " + openssl_error_string());
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (in == nullptr || out == nullptr) {
      BIO_free(in);
      BIO_free(out);
      throw Error(ErrorCode::kCrypto, "BIO_new: " + openssl_error_string());
    }
    BIO_set_mem_eof_return(in, -1);  // empty means "retry", until the peer closes
    SSL_set_bio(ssl_.get(), in, out);
    in_ = in;
    out_ = out;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
    if (url.host_is_ip) {
      if (X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) != 1) {
        throw Error(ErrorCode::kCrypto, "cannot set the IP to verify");
      }
    } else {
      // SNI only for names (RFC 6066), and the name the certificate must hold.
      if (SSL_set_tlsext_host_name(ssl_.get(), url.host.c_str()) != 1 ||
          SSL_set1_host(ssl_.get(), url.host.c_str()) != 1) {
        throw Error(ErrorCode::kCrypto, "cannot set the TLS host name");
      }
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    SSL_set_connect_state(ssl_.get());
  }

  void handshake() {
    run([this] { return SSL_do_handshake(ssl_.get()); }, "TLS handshake");
  }

  void write_all(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const int chunk = static_cast<int>(std::min<std::size_t>(data.size() - done, 16384));
      done += static_cast<std::size_t>(
          run([&] { return SSL_write(ssl_.get(), data.data() + done, chunk); }, "TLS write"));
    }
  }

  // Appends up to `max` bytes to `out`; 0 at the end of the stream.
  std::size_t read_some(std::string& out, std::size_t max) {
    char buffer[16384];
    const int want = static_cast<int>(std::min(max, sizeof buffer));
    if (want == 0) return 0;
    const int n = run([&] { return SSL_read(ssl_.get(), buffer, want); }, "TLS read");
    if (n <= 0) return 0;
    out.append(buffer, static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
  }

 private:
  // Runs one SSL call until it completes: flushes what it wrote, feeds it
  // what the socket has when it wants to read. Returns the call's result
  // (0 for a clean end of stream while reading).
  template <typename Op>
  int run(Op op, const char* what) {
    for (;;) {
      ERR_clear_error();
      const int rc = op();
      const int error = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), rc);
      flush(what);
      switch (error) {
        case SSL_ERROR_NONE:
          return rc;
        case SSL_ERROR_ZERO_RETURN:
          return 0;
        case SSL_ERROR_WANT_READ:
          if (peer_closed_) io_error(std::string(what) + ": connection closed by the server");
          fill(what);
          continue;
        case SSL_ERROR_WANT_WRITE:
          continue;  // flushed above
        default: {
          const long verify = SSL_get_verify_result(ssl_.get());
          if (verify != X509_V_OK) {
            io_error(std::string(what) +
                     ": server certificate: " + X509_verify_cert_error_string(verify));
          }
          std::string detail = openssl_error_string();
          if (detail.empty()) detail = peer_closed_ ? "connection closed" : "failed";
          io_error(std::string(what) + ": " + detail);
        }
      }
    }
  }

  void flush(const char* what) {
    char buffer[16384];
    while (BIO_ctrl_pending(out_) > 0) {
      const int n = BIO_read(out_, buffer, sizeof buffer);
      if (n <= 0) break;
      std::size_t sent = 0;
      while (sent < static_cast<std::size_t>(n)) {
        const ssize_t rc =
            ::send(socket_.get(), buffer + sent, static_cast<std::size_t>(n) - sent, MSG_NOSIGNAL);
        if (rc > 0) {
          sent += static_cast<std::size_t>(rc);
        } else if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          if (!wait_fd(socket_.get(), POLLOUT, deadline_)) {
            io_error(std::string(what) + ": timed out");
          }
        } else {
          io_error(std::string(what) + ": send: " + std::strerror(errno));
        }
      }
    }
  }

  void fill(const char* what) {
    char buffer[16384];
    for (;;) {
      const ssize_t n = ::recv(socket_.get(), buffer, sizeof buffer, 0);
      if (n > 0) {
        BIO_write(in_, buffer, static_cast<int>(n));
        return;
      }
      if (n == 0) {
        peer_closed_ = true;
        BIO_set_mem_eof_return(in_, 0);  // OpenSSL now sees the end of the stream
        return;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        io_error(std::string(what) + ": recv: " + std::strerror(errno));
      }
      if (!wait_fd(socket_.get(), POLLIN, deadline_)) io_error(std::string(what) + ": timed out");
    }
  }

  Socket socket_;
  Deadline deadline_;
  SslPtr ssl_;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  bool peer_closed_ = false;
};

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Parses the status line and headers (`head` excludes the blank line).
void parse_head(std::string_view head, FetchResponse& response) {
  std::size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      !all_digits(status_line.substr(9, 3)) ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    io_error("malformed HTTP status line");
  }
  response.status = std::stoi(std::string(status_line.substr(9, 3)));
  while (eol != std::string_view::npos) {
    const std::size_t start = eol + 2;
    eol = head.find("\r\n", start);
    const std::string_view line =
        head.substr(start, eol == std::string_view::npos ? std::string_view::npos : eol - start);
    if (line.empty()) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line.front() == ' ' ||
        line.front() == '\t') {
      io_error("malformed HTTP header line");
    }
    response.headers.emplace_back(lower(line.substr(0, colon)),
                                  std::string(trim(line.substr(colon + 1))));
  }
}

// Decodes a chunked body. Returns true when the last chunk (and trailers)
// are complete; false when more bytes are needed. Throws on bad framing.
bool decode_chunked(std::string_view raw, std::string& body, std::size_t max_body) {
  body.clear();
  std::size_t pos = 0;
  for (;;) {
    const std::size_t eol = raw.find("\r\n", pos);
    if (eol == std::string_view::npos) return false;
    std::string_view size_text = raw.substr(pos, eol - pos);
    size_text = trim(size_text.substr(0, size_text.find(';')));  // drop chunk extensions
    if (size_text.empty() || size_text.size() > 8 ||
        !std::all_of(size_text.begin(), size_text.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        })) {
      io_error("malformed chunk size");
    }
    const std::size_t size = std::stoul(std::string(size_text), nullptr, 16);
    pos = eol + 2;
    if (size == 0) {
      // Trailers end with an empty line.
      for (;;) {
        const std::size_t end = raw.find("\r\n", pos);
        if (end == std::string_view::npos) return false;
        if (end == pos) return true;
        pos = end + 2;
      }
    }
    if (body.size() + size > max_body) {
      io_error("body exceeds " + std::to_string(max_body) + " bytes");
    }
    if (raw.size() < pos + size + 2) return false;
    body.append(raw.substr(pos, size));
    if (raw.substr(pos + size, 2) != "\r\n") io_error("malformed chunk");
    pos += size + 2;
  }
}

FetchResponse exchange(TlsStream& tls, const HttpsUrl& url, std::size_t max_body) {
  tls.write_all("GET " + url.path + " HTTP/1.1\r\nHost: " + url.host_header() +
                "\r\nUser-Agent: stir-vs/0.1\r\n"
                "Accept: application/pem-certificate-chain, application/pkix-crl, */*\r\n"
                "Connection: close\r\n\r\n");
  std::string raw;
  std::size_t head_end = std::string::npos;
  while (head_end == std::string::npos) {
    if (tls.read_some(raw, kMaxHeaderBytes + 4 - raw.size()) == 0) {
      io_error(raw.empty() ? "server closed the connection without a response"
                           : "response headers truncated");
    }
    head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos && raw.size() >= kMaxHeaderBytes) {
      io_error("response headers exceed " + std::to_string(kMaxHeaderBytes) + " bytes");
    }
  }
  FetchResponse response;
  parse_head(std::string_view(raw).substr(0, head_end), response);
  if (response.status >= 300 && response.status < 400) {
    const auto location = response.header("location");
    io_error("redirect refused (" + std::to_string(response.status) + ")" +
             (location ? " to " + location->substr(0, 200) : ""));
  }
  if (response.status != 200) io_error("HTTP status " + std::to_string(response.status));
  std::string rest = raw.substr(head_end + 4);

  const auto encoding = response.header("transfer-encoding");
  const auto length = response.header("content-length");
  if (encoding) {
    if (length) io_error("both Transfer-Encoding and Content-Length");
    if (lower(*encoding) != "chunked") io_error("unsupported Transfer-Encoding " + *encoding);
    const std::size_t raw_limit = max_body + kChunkOverheadBytes;
    while (!decode_chunked(rest, response.body, max_body)) {
      if (rest.size() >= raw_limit) io_error("body exceeds " + std::to_string(max_body) + " bytes");
      if (tls.read_some(rest, raw_limit - rest.size()) == 0) io_error("chunked body truncated");
    }
    return response;
  }
  if (length) {
    for (const auto& [name, value] : response.headers) {
      if (name == "content-length" && value != *length) io_error("conflicting Content-Length");
    }
    if (!all_digits(*length) || length->size() > 12) io_error("malformed Content-Length");
    const std::size_t expected = std::stoull(*length);
    if (expected > max_body) {
      io_error("body of " + *length + " bytes exceeds " + std::to_string(max_body) + " bytes");
    }
    while (rest.size() < expected) {
      if (tls.read_some(rest, expected - rest.size()) == 0) io_error("body truncated");
    }
    rest.resize(expected);
    response.body = std::move(rest);
    return response;
  }
  // Close-delimited: read to the end, one byte past the limit at most.
  while (rest.size() <= max_body) {
    if (tls.read_some(rest, max_body + 1 - rest.size()) == 0) break;
  }
  if (rest.size() > max_body) io_error("body exceeds " + std::to_string(max_body) + " bytes");
  response.body = std::move(rest);
  return response;
}

}  // namespace

FetchPolicy FetchPolicy::from_config(const VerifierConfig& config) {
  FetchPolicy policy;
  policy.allowed_ports = config.allowed_ports;
  policy.allow_loopback = config.allow_loopback;
  policy.allow_private = config.allow_private;
  policy.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  policy.total_timeout = std::chrono::milliseconds(config.total_timeout_ms);
  policy.tls_ca_file = config.tls_ca_file;
  return policy;
}

std::optional<std::string> FetchResponse::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return std::nullopt;
}

HttpsFetcher::HttpsFetcher(FetchPolicy policy) : policy_(std::move(policy)) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) throw Error(ErrorCode::kCrypto, "SSL_CTX_new: " + openssl_error_string());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  // A close without close_notify ends a close-delimited body; the length
  // checks above catch truncation where the framing allows.
  SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  const bool loaded =
      policy_.tls_ca_file.empty()
          ? SSL_CTX_set_default_verify_paths(ctx_) == 1
          : SSL_CTX_load_verify_locations(ctx_, policy_.tls_ca_file.c_str(), nullptr) == 1;
  if (!loaded) {
    const std::string detail = openssl_error_string();
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    throw Error(ErrorCode::kConfig,
                "cannot load the TLS trust store " +
                    (policy_.tls_ca_file.empty() ? std::string("(system)") : policy_.tls_ca_file) +
                    ": " + detail);
  }
}

HttpsFetcher::~HttpsFetcher() { SSL_CTX_free(ctx_); }

FetchResponse HttpsFetcher::get(const std::string& url_text, std::size_t max_body_bytes) const {
  const Deadline start = SteadyClock::now();
  const Deadline deadline = start + policy_.total_timeout;
  std::string error;
  const std::optional<HttpsUrl> url = parse_https_url(url_text, error);
  if (!url) refused("URL refused: " + error);
  if (std::string problem = check_port(*url, policy_.allowed_ports); !problem.empty()) {
    refused("URL refused: " + problem);
  }
  const std::vector<ResolvedAddress> addresses = resolve(*url, deadline);
  for (const ResolvedAddress& resolved : addresses) {
    const AddressClass kind = classify_address(resolved.address());
    if (!address_allowed(kind, policy_.allow_loopback, policy_.allow_private)) {
      refused(url->host + " resolves to " + std::string(to_string(kind)) + " address " +
              address_to_string(resolved.address()));
    }
  }
  const Deadline connect_deadline = std::min(deadline, start + policy_.connect_timeout);
  Socket socket = connect_any(addresses, connect_deadline);
  TlsStream tls(ctx_, std::move(socket), *url, deadline);
  tls.handshake();
  return exchange(tls, *url, max_body_bytes);
}

}  // namespace stir::vs
