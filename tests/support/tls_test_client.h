// Test clients for a tn-cr server on 127.0.0.1: httplib's SSLClient that
// verifies the server certificate against the test CA, and a raw sender
// that writes exact request bytes over TLS, for targets a normal client
// would normalise or refuse to send (dot segments, NUL, "//").
//
// Threads: no shared state. Errors: std::runtime_error (a test set-up bug).
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "support/raw_clients.h"

namespace tn_cr::testing {

inline std::unique_ptr<httplib::SSLClient> https_client(int port, const std::string& ca_file) {
  auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  client->set_ca_cert_path(ca_file);
  client->enable_server_certificate_verification(true);
  client->set_connection_timeout(5, 0);
  client->set_read_timeout(5, 0);
  return client;
}

struct RawResponse {
  int status = 0;    // 0 when no status line came back
  std::string text;  // everything the server sent, headers and body
};

// Connects to 127.0.0.1:port over TLS (verifying the server against
// `ca_file`), writes `request` verbatim and reads one response: its head
// and Content-Length bytes of body (so not for HEAD).
inline RawResponse raw_tls_exchange(int port, const std::string& ca_file,
                                    std::string_view request) {
  using CtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
  using SslPtr = std::unique_ptr<SSL, decltype(&SSL_free)>;
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
  if (!ctx || SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    throw std::runtime_error("cannot set up the TLS client");
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);

  const int fd = stir::testing::connect_loopback(port);
  if (fd < 0) throw std::runtime_error("connect failed");
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  SslPtr ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), fd);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), "127.0.0.1");
  if (SSL_connect(ssl.get()) != 1) {
    ::close(fd);
    throw std::runtime_error("TLS handshake failed");
  }
  RawResponse response;
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) > 0) {
    // One response: the head, then Content-Length bytes. The server may keep
    // the connection open (httplib does after a request it cannot parse).
    char buffer[4096];
    int n = 0;
    while ((n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0) {
      response.text.append(buffer, static_cast<std::size_t>(n));
      const auto head_end = response.text.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      std::size_t length = 0;
      const auto field = response.text.find("\r\nContent-Length: ");
      if (field != std::string::npos && field < head_end) {
        length = std::stoul(response.text.substr(field + 18));
      }
      if (response.text.size() >= head_end + 4 + length) break;
    }
  }
  SSL_shutdown(ssl.get());
  ::close(fd);
  if (response.text.rfind("HTTP/1.", 0) == 0 && response.text.size() >= 12) {
    response.status = std::stoi(response.text.substr(9, 3));
  }
  return response;
}

// A GET of exactly `target` (any bytes) on a connection that closes after it.
inline RawResponse raw_get(int port, const std::string& ca_file, std::string_view target) {
  std::string request = "GET ";
  request.append(target);
  request += " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  return raw_tls_exchange(port, ca_file, request);
}

}  // namespace tn_cr::testing
