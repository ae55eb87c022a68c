#include "stir/verifier/fetcher.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
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
// Chunk size lines and extensions of one response, in all.
constexpr std::size_t kMaxChunkMetadataBytes = std::size_t{16} * 1024;
// The read buffer holds unparsed bytes only: a header, a chunk size line,
// a trailer.
constexpr std::size_t kReadBufferBytes = kMaxHeaderBytes + 4 * 1024;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

[[noreturn]] void io_error(const std::string& message) { throw Error(ErrorCode::kIo, message); }

[[noreturn]] void refused(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

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

// Each step waits on the stream's expiry: a timeout is beast::error::timeout.
[[noreturn]] void step_failed(const std::string& what, const boost::system::error_code& ec) {
  io_error(what + ": " + (ec == beast::error::timeout ? std::string("timed out") : ec.message()));
}

using TlsStream = ssl::stream<beast::tcp_stream>;

// TCP to the checked addresses within the connect deadline, then the TLS
// handshake. A certificate that fails verification is named, since the
// handshake's own error only says that it failed.
asio::awaitable<void> connect(TlsStream& stream, std::vector<tcp::endpoint> endpoints,
                              const HttpsUrl& url, Deadline connect_deadline, Deadline deadline) {
  auto& tcp_stream = stream.next_layer();
  tcp_stream.expires_at(connect_deadline);
  if (auto [ec, to] = co_await tcp_stream.async_connect(endpoints, kTuple); ec) {
    step_failed("cannot connect to " + url.host, ec);
  }
  tcp_stream.expires_at(deadline);
  if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, kTuple); ec) {
    const long verify = SSL_get_verify_result(stream.native_handle());
    if (verify != X509_V_OK) {
      io_error(std::string("TLS handshake: server certificate: ") +
               X509_verify_cert_error_string(verify));
    }
    step_failed("TLS handshake", ec);
  }
}

// "Connection: close": one request per connection, so the body may end with
// the connection.
asio::awaitable<void> send_get(TlsStream& stream, const HttpsUrl& url) {
  http::request<http::empty_body> request(http::verb::get, url.path, 11);
  request.set(http::field::host, url.host_header());
  request.set(http::field::user_agent, "stir-vs/0.1");
  request.set(http::field::accept, "application/pem-certificate-chain, application/pkix-crl, */*");
  request.set(http::field::connection, "close");
  if (auto [ec, n] = co_await http::async_write(stream, request, kTuple); ec) {
    step_failed("sending the request", ec);
  }
}

// Reads one response; every byte read counts: header, chunk metadata, body,
// trailers. It stays where it was made: the parser calls back into it.
class ResponseReader {
 public:
  explicit ResponseReader(std::size_t max_body)
      : max_body_(max_body), max_total_(max_fetch_bytes(max_body)), buffer_(kReadBufferBytes) {
    parser_.header_limit(kMaxHeaderBytes);
    parser_.body_limit(max_body);
    parser_.on_chunk_header(count_chunk_header_);
  }
  ResponseReader(const ResponseReader&) = delete;
  ResponseReader& operator=(const ResponseReader&) = delete;

  asio::awaitable<void> read_header(TlsStream& stream) {
    if (auto [ec, n] = co_await http::async_read_header(stream, buffer_, parser_, kTuple); ec) {
      read_failed(ec);
    } else {
      total_ += n;
    }
  }

  asio::awaitable<void> read_body(TlsStream& stream) {
    while (!parser_.is_done()) {
      auto [ec, n] = co_await http::async_read_some(stream, buffer_, parser_, kTuple);
      if (ec) read_failed(ec);
      total_ += n;
      if (total_ > max_total_) {
        io_error("response exceeds " + std::to_string(max_total_) + " bytes");
      }
    }
  }

  const http::response<http::string_body>& head() { return parser_.get(); }

  // Header names lower-cased; the body moves out.
  FetchResponse response() {
    const auto& head = parser_.get();
    FetchResponse response;
    response.status = static_cast<int>(head.result_int());
    for (const auto& field : head) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      response.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    response.body = std::move(parser_.get().body());
    return response;
  }

 private:
  // A limit names itself; anything else is a read error.
  [[noreturn]] void read_failed(const boost::system::error_code& ec) const {
    if (ec == http::error::header_limit) {
      io_error("response headers exceed " + std::to_string(kMaxHeaderBytes) + " bytes");
    }
    if (ec == http::error::buffer_overflow) {
      io_error("response framing exceeds " + std::to_string(kReadBufferBytes) + " bytes");
    }
    if (chunk_metadata_ > kMaxChunkMetadataBytes) {
      io_error("chunk metadata exceeds " + std::to_string(kMaxChunkMetadataBytes) + " bytes");
    }
    if (ec == http::error::body_limit) {
      io_error("body exceeds " + std::to_string(max_body_) + " bytes");
    }
    step_failed("reading the response", ec);
  }

  const std::size_t max_body_;
  const std::size_t max_total_;
  std::size_t total_ = 0;
  std::size_t chunk_metadata_ = 0;
  std::function<void(std::uint64_t, beast::string_view, boost::system::error_code&)>
      count_chunk_header_ =
          [this](std::uint64_t, beast::string_view extensions, boost::system::error_code& ec) {
            chunk_metadata_ += extensions.size() + 18;  // with the size line and CRLF
            if (chunk_metadata_ > kMaxChunkMetadataBytes) ec = http::error::bad_chunk_extension;
          };
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

// Only 200 has a body worth reading. A redirect is refused, not followed:
// the URL and address checks were made for this URL alone.
void refuse_unless_ok(const http::response<http::string_body>& head) {
  const int status = static_cast<int>(head.result_int());
  if (status >= 300 && status < 400) {
    const auto location = head.find(http::field::location);
    io_error(
        "redirect refused (" + std::to_string(status) + ")" +
        (location != head.end() ? " to " + std::string(location->value().substr(0, 200)) : ""));
  }
  if (status != 200) io_error("HTTP status " + std::to_string(status));
}

// The exchange over one connection to a checked address: TLS handshake, GET
// with "Connection: close", headers (3xx and non-200 refused before any
// body is read), then the body within the limit. Beast does the framing.
asio::awaitable<FetchResponse> exchange(SSL* ssl, std::vector<tcp::endpoint> endpoints,
                                        const HttpsUrl& url, Deadline connect_deadline,
                                        Deadline deadline, std::size_t max_body) {
  TlsStream stream(co_await asio::this_coro::executor, ssl);
  co_await connect(stream, std::move(endpoints), url, connect_deadline, deadline);
  co_await send_get(stream, url);
  ResponseReader reader(max_body);
  co_await reader.read_header(stream);
  refuse_unless_ok(reader.head());
  co_await reader.read_body(stream);
  co_return reader.response();
}

}  // namespace

std::size_t max_fetch_bytes(std::size_t max_body_bytes) {
  return kMaxHeaderBytes + kMaxChunkMetadataBytes + max_body_bytes + kReadBufferBytes;
}

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
  // A close without close_notify ends a close-delimited body; Beast's
  // framing catches truncation where Content-Length or chunking allows.
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
  std::vector<tcp::endpoint> endpoints;
  for (const ResolvedAddress& resolved : addresses) {
    tcp::endpoint endpoint;
    std::memcpy(endpoint.data(), &resolved.storage, resolved.length);
    endpoint.resize(resolved.length);
    endpoints.push_back(endpoint);
  }

  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) throw Error(ErrorCode::kCrypto, "SSL_new: " + openssl_error_string());
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  const bool named = url->host_is_ip
                         ? X509_VERIFY_PARAM_set1_ip_asc(param, url->host.c_str()) == 1
                         // SNI only for names (RFC 6066), and the name the certificate must hold.
                         : SSL_set_tlsext_host_name(ssl, url->host.c_str()) == 1 &&
                               SSL_set1_host(ssl, url->host.c_str()) == 1;
  if (!named) {
    SSL_free(ssl);
    throw Error(ErrorCode::kCrypto, "cannot set the TLS host name to verify");
  }
  if (!url->host_is_ip)
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

  // A private event loop on the calling thread: fetches stay independent.
  asio::io_context io(1);
  auto result = asio::co_spawn(
      io,
      exchange(ssl, std::move(endpoints), *url, std::min(deadline, start + policy_.connect_timeout),
               deadline, max_body_bytes),
      asio::use_future);
  io.run();
  return result.get();
}

}  // namespace stir::vs
