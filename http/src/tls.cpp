#include "stir/http/tls.h"

#include <openssl/ssl.h>

#include "stir/error.h"
#include "stir/openssl.h"

namespace stir::http {
namespace {

// The suites documented in tls.h.
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kTls12Suites =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Resumed sessions must come from this context (OpenSSL refuses to resume
// a verified session without one).
constexpr unsigned char kSessionIdContext[] = "stir-http";

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorCode::kConfig, what + ": " + openssl_error_string());
}

}  // namespace

std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const TlsSettings& settings) {
  auto context = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) fail("cannot require TLS 1.2");
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kTls12Suites) != 1) {
    fail("cannot set the TLS cipher suites");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert_chain_file.c_str()) != 1) {
    fail("cannot load the TLS certificate chain " + settings.cert_chain_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    fail("the TLS key " + settings.key_file + " does not load or match " +
         settings.cert_chain_file);
  }
  if (!settings.client_ca_file.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.client_ca_file.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(ctx, settings.client_ca_file.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      fail("cannot load the client CA file " + settings.client_ca_file);
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  return context;
}

}  // namespace stir::http
