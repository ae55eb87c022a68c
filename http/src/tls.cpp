#include "stir/http/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <string_view>

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

// Whether `bytes` is a name we compare and log: valid UTF-8 with no C0
// control, DEL or C1 control (U+0080..U+009F); NUL is a C0 control.
bool clean_name(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    const std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (length == 0 || c > 0xf4 || i + length > bytes.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(bytes[i + k]) & 0xc0) != 0x80) return false;
    }
    if (c == 0xc2 && static_cast<unsigned char>(bytes[i + 1]) < 0xa0) return false;  // C1
    i += length;
  }
  return true;
}

// Refuses, during the handshake, a client leaf whose names are not clean.
int verify_client(int preverified, X509_STORE_CTX* store) {
  if (preverified != 1) return preverified;
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  std::string why;
  certificate_names(X509_STORE_CTX_get_current_cert(store), &why);
  if (why.empty()) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// Session tickets carry the time of the full handshake they descend from
// (8 bytes, big-endian seconds), so renewing a ticket at each resumption
// never extends a session past the context's timeout.
int on_new_ticket(SSL* ssl, void*) {
  SSL_SESSION* session = SSL_get1_session(ssl);
  if (session == nullptr) return 1;
  void* data = nullptr;
  size_t length = 0;
  int ok = 1;
  if (SSL_SESSION_get0_ticket_appdata(session, &data, &length) != 1 || length != 8) {
    auto now = static_cast<std::uint64_t>(std::time(nullptr));
    unsigned char stamp[8];
    for (int i = 7; i >= 0; --i, now >>= 8) stamp[i] = static_cast<unsigned char>(now & 0xff);
    ok = SSL_SESSION_set1_ticket_appdata(session, stamp, sizeof stamp);
  }
  SSL_SESSION_free(session);
  return ok;
}

SSL_TICKET_RETURN on_ticket(SSL* ssl, SSL_SESSION* session, const unsigned char*, size_t,
                            SSL_TICKET_STATUS status, void*) {
  switch (status) {
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
      return SSL_TICKET_RETURN_IGNORE_RENEW;
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
      void* data = nullptr;
      size_t length = 0;
      if (SSL_SESSION_get0_ticket_appdata(session, &data, &length) != 1 || length != 8) {
        return SSL_TICKET_RETURN_IGNORE_RENEW;
      }
      std::uint64_t stamp = 0;
      for (size_t i = 0; i < 8; ++i) stamp = (stamp << 8) | static_cast<unsigned char*>(data)[i];
      const auto now = static_cast<std::uint64_t>(std::time(nullptr));
      const auto lifetime = static_cast<std::uint64_t>(SSL_CTX_get_timeout(SSL_get_SSL_CTX(ssl)));
      if (now < stamp || now - stamp > lifetime) return SSL_TICKET_RETURN_IGNORE_RENEW;
      return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    default:
      return SSL_TICKET_RETURN_ABORT;
  }
}

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
    SSL_CTX_set_verify(ctx,
                       settings.client_certificate_optional
                           ? SSL_VERIFY_PEER
                           : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       verify_client);
    SSL_CTX_set_verify_depth(ctx, settings.verify_depth);
  }
  // Idle connections hold no record buffers (about 34 KiB each).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (settings.session_lifetime_s > 0) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, settings.session_lifetime_s);
    if (SSL_CTX_set_session_ticket_cb(ctx, on_new_ticket, on_ticket, nullptr) != 1) {
      fail("cannot set the session ticket callbacks");
    }
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  return context;
}

std::vector<std::string> certificate_names(const X509* certificate, std::string* why) {
  std::vector<std::string> names;
  const auto refuse = [&](std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return std::vector<std::string>{};
  };
  if (certificate == nullptr) return names;
  const X509_NAME* subject = X509_get_subject_name(certificate);
  const int first = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (first >= 0) {
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, first) >= 0) {
      return refuse("the subject has more than one CN");
    }
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, first));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length < 0) return refuse("the CN is not a valid string");
    std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
    if (cn.empty() || !clean_name(cn)) return refuse("the CN holds a NUL or control character");
    names.push_back(std::move(cn));
  }
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    bool clean = true;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && clean; ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type != GEN_DNS) continue;
      const ASN1_STRING* dns = name->d.dNSName;
      std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                       static_cast<std::size_t>(ASN1_STRING_length(dns)));
      // IA5String: ASCII only.
      clean = !text.empty() && clean_name(text) &&
              std::all_of(text.begin(), text.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x80; });
      if (clean) names.push_back(std::move(text));
    }
    GENERAL_NAMES_free(sans);
    if (!clean) return refuse("a DNS subjectAltName holds a NUL or control character");
  }
  return names;
}

}  // namespace stir::http
