// TEST ONLY: helpers for the verifier tests: a temporary folder, real HTTPS
// test servers on 127.0.0.1 (stir::http, the servers' own layer: a listen
// queue of min(4096, somaxconn), so no fetch waits for a SYN retransmit), a
// silent TCP listener, a signer over a test certificate's key, and
// hand-built JWS for malformed headers.
//
// Threads: a TestHttpsServer runs its own I/O and worker threads; handlers
// may run on several of them at once. Everything else is single-threaded
// test code.
// Errors: set-up failures throw std::runtime_error or fail the test.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "stir/base64url.h"
#include "stir/digest_signer.h"
#include "stir/http/server.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "test_pki.h"

namespace stir::vs::testing {

inline std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("stir-vs-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// A DigestSigner over a test certificate's private key.
class KeySigner : public DigestSigner {
 public:
  explicit KeySigner(EVP_PKEY* key) : key_(key) {}
  Es256Signature sign_digest(const Sha256Digest& digest) const override {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key_, nullptr));
    std::size_t len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
      throw std::runtime_error("EVP_PKEY_sign");
    }
    std::vector<std::uint8_t> der(len);
    if (EVP_PKEY_sign(ctx.get(), der.data(), &len, digest.data(), digest.size()) != 1) {
      throw std::runtime_error("EVP_PKEY_sign");
    }
    der.resize(len);
    return ecdsa_der_to_raw(der);
  }

 private:
  EVP_PKEY* key_;
};

// "b64(header).b64(payload).b64(sig)" over exactly these JSON texts.
inline std::string make_jws(const std::string& header_json, const std::string& payload_json,
                            const DigestSigner& signer) {
  const std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  const Es256Signature sig = signer.sign_digest(sha256(input));
  return input + "." + base64url_encode(std::span<const std::uint8_t>(sig.data(), sig.size()));
}

// An HTTPS server on 127.0.0.1, ephemeral port, TLS certificate from
// make_tls_pki (SAN IP 127.0.0.1, DNS localhost). Routes are GET by a
// regular expression over the whole path, added before start(); the
// handler gets the match. Handlers run on worker threads, so one may take
// its time (a slow x5u server). Unknown paths are 404.
class TestHttpsServer {
 public:
  using Response = stir::http::Response;
  using Handler = std::function<Response(const std::smatch& path)>;

  explicit TestHttpsServer(const stir::testing::TlsPki& tls) {
    const std::string chain = tls.server.certificate_pem() + tls.server_ca.certificate_pem();
    const std::string key = tls.server.private_key_pem();
    options_.tls =
        std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
    options_.tls->use_certificate_chain(boost::asio::buffer(chain));
    options_.tls->use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
    options_.io_threads = 2;
    options_.workers = 8;
    options_.worker_queue = 64;
  }
  ~TestHttpsServer() { stop(); }
  TestHttpsServer(const TestHttpsServer&) = delete;
  TestHttpsServer& operator=(const TestHttpsServer&) = delete;

  void get(const std::string& path_pattern, Handler handler) {
    routes_->emplace_back(std::regex(path_pattern), std::move(handler));
  }

  void start() {
    options_.router.fallback(
        [routes = routes_](const stir::http::Request& request, const stir::http::RequestContext&) {
          const std::string path(request.path());
          std::smatch match;
          for (const auto& [pattern, handler] : *routes) {
            if (request.method == "GET" && std::regex_match(path, match, pattern)) {
              return handler(match);
            }
          }
          return Response::text(404, "not found\n", "text/plain");
        },
        stir::http::Run::kBlocking);
    server_ = std::make_unique<stir::http::Server>(std::move(options_));
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }
  void stop() {
    if (!server_) return;
    server_->stop(std::chrono::seconds(2));
    thread_.join();
    server_.reset();
  }
  int port() const { return port_; }
  std::string url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port_) + path;
  }

  // A 200 answer with `body`, `content_type` and any extra headers.
  static Response ok(std::string body, std::string content_type,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    Response response = Response::text(200, std::move(body), std::move(content_type));
    for (auto& [name, value] : headers) response.header(std::move(name), std::move(value));
    return response;
  }

 private:
  using Routes = std::vector<std::pair<std::regex, Handler>>;
  std::shared_ptr<Routes> routes_ = std::make_shared<Routes>();
  stir::http::Options options_;
  std::unique_ptr<stir::http::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// A TCP listener on 127.0.0.1 that never accepts and never writes: the
// kernel completes connections, then nothing ever answers.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("silent listener");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A port on 127.0.0.1 with nothing listening (bound then closed).
inline int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("closed_port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace stir::vs::testing
