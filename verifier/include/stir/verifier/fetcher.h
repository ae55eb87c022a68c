// A deliberately small HTTPS GET client for x5u certificates and CRLs, with
// the hygiene of PROTOCOL.md section 5:
//  - the URL passes parse_https_url and the port is allowed;
//  - the host is resolved once and EVERY resolved address is checked against
//    the special-purpose ranges; the connection then goes to an address that
//    was checked (never a second resolution: DNS rebinding);
//  - TLS 1.2+ with the server certificate verified against the system trust
//    store (or a configured CA file) and the URL's host name (SNI and Host
//    header carry the name; IP literals are checked against IP SANs);
//  - HTTP/1.1 GET with "Connection: close"; only 200 is accepted (a 3xx is
//    refused: no redirects); Content-Length, chunked or close-delimited
//    bodies; reading stops at the body limit;
//  - bounded memory and bytes whatever the server sends: the read buffer
//    holds at most 20 KiB (header 16 KiB + 4 KiB), chunk size lines and
//    extensions count up to 16 KiB, and the whole response (header, chunk
//    metadata, body, trailers) at most max_fetch_bytes(max_body_bytes);
//  - one deadline for the whole exchange (resolution included) and a
//    separate budget for the TCP connect.
// Boost.Beast reads the response (header and body limits, chunked framing)
// over Asio's TLS stream on a private io_context per fetch; Asio sends with
// MSG_NOSIGNAL, so a peer that resets the connection never raises SIGPIPE.
//
// Ownership: the fetcher owns one SSL_CTX, shared by all fetches.
// Threads: get() is safe to call from any number of threads at once.
// Errors: get() throws stir::Error: kInvalidArgument when the URL or the
// addresses it resolves to are refused by policy, kIo for every network,
// TLS or HTTP failure (timeouts included). Messages are short and name the
// cause ("redirect refused (302)", "body exceeds 16384 bytes").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stir/verifier/config.h"

struct ssl_ctx_st;

namespace stir::vs {

// The most bytes one fetch reads for a body limit of `max_body_bytes`:
// header (16 KiB) + chunk metadata (16 KiB) + body + trailers (20 KiB);
// 68 KiB for the verifier's 16 KiB bodies.
std::size_t max_fetch_bytes(std::size_t max_body_bytes);

struct FetchPolicy {
  std::vector<std::uint16_t> allowed_ports = {443, 8443};
  bool allow_loopback = false;
  bool allow_private = false;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds total_timeout{5000};
  std::string tls_ca_file;  // "" = system trust store

  static FetchPolicy from_config(const VerifierConfig& config);
};

struct FetchResponse {
  int status = 0;
  std::string body;
  // Header names lower-cased, values trimmed, in the order received.
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header of that (lower-case) name.
  std::optional<std::string> header(std::string_view lower_name) const;
};

class HttpsFetcher {
 public:
  // Throws stir::Error(kConfig) when the CA file cannot be loaded, kCrypto
  // when OpenSSL cannot make a context.
  explicit HttpsFetcher(FetchPolicy policy);
  ~HttpsFetcher();
  // Owns an SSL_CTX; one fetcher serves the whole process.
  HttpsFetcher(const HttpsFetcher&) = delete;
  HttpsFetcher& operator=(const HttpsFetcher&) = delete;

  // GETs `url`; the body is at most `max_body_bytes`. Returns only a 200.
  FetchResponse get(const std::string& url, std::size_t max_body_bytes) const;

  const FetchPolicy& policy() const noexcept { return policy_; }

 private:
  FetchPolicy policy_;
  ssl_ctx_st* ctx_ = nullptr;
};

}  // namespace stir::vs
