#include "sks/server/server.h"

#include <httplib.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "sks/server/admin_api.h"
#include "sks/server/api_error.h"
#include "sks/server/signing_api.h"
#include "stir/error.h"
#include "stir/openssl.h"
#include "stir/verifier/request.h"

namespace sks::server {

namespace {

using stir::Error;
using stir::ErrorCode;
using Clock = std::chrono::steady_clock;

// What the access log and the metrics need to know about the request this
// thread is serving. httplib serves a request on one worker thread from
// pre-routing to the logger, so a thread_local carries it across them.
struct RequestContext {
  Clock::time_point start;
  std::string request_id;
  std::vector<std::string> client_names;
  std::string route;
  std::string profile;
  std::string outcome;
};
thread_local RequestContext t_request;

// Which connection each worker thread is serving, so a drain can close the
// idle keep-alive connections and wait for the busy ones. httplib serves one
// connection per job on one worker thread; a slot lives exactly as long as
// that job, so a closed connection never leaves a stale file descriptor.
class ConnectionRegistry {
 public:
  struct Slot {
    std::atomic<int> fd{-1};  // known once the first request arrives (TLS only)
    std::atomic<bool> in_request{false};
  };

  Slot* attach() {
    std::lock_guard lock(mutex_);
    return &slots_.emplace_back();
  }
  void detach(Slot* slot) {
    std::lock_guard lock(mutex_);
    slots_.remove_if([slot](const Slot& s) { return &s == slot; });
  }
  // Shuts down connections between requests (or all of them): the worker
  // sees end of file and ends the connection job.
  void close_connections(bool include_busy) {
    std::lock_guard lock(mutex_);
    for (auto& slot : slots_) {
      const int fd = slot.fd.load();
      if (fd >= 0 && (include_busy || !slot.in_request.load())) ::shutdown(fd, SHUT_RDWR);
    }
  }

 private:
  std::mutex mutex_;
  std::list<Slot> slots_;  // stable addresses
};

thread_local ConnectionRegistry::Slot* t_slot = nullptr;

// httplib's ThreadPool, with each connection job registered while it runs.
class TrackingQueue : public httplib::TaskQueue {
 public:
  TrackingQueue(std::size_t threads, ConnectionRegistry& registry)
      : pool_(threads), registry_(registry) {}
  void enqueue(std::function<void()> job) override {
    pool_.enqueue([this, job = std::move(job)] {
      t_slot = registry_.attach();
      job();
      registry_.detach(t_slot);
      t_slot = nullptr;
    });
  }
  void shutdown() override { pool_.shutdown(); }
  void on_idle() override { pool_.on_idle(); }

 private:
  httplib::ThreadPool pool_;
  ConnectionRegistry& registry_;
};

std::string random_request_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return "unknown";
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  char text[37];
  std::snprintf(text, sizeof text,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return text;
}

// A caller's X-RequestID is echoed only when it is short printable ASCII,
// so it cannot break the response headers or the access log.
bool is_sane_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7E || c == '"' || c == '\\') return false;
  }
  return true;
}

// The client certificate's subject CN and DNS subjectAltNames.
std::vector<std::string> client_names(const SSL* ssl) {
  std::vector<std::string> names;
  if (ssl == nullptr) return names;
  const X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return names;
  char cn[256];
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
    names.emplace_back(cn);
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type == GEN_DNS) {
        const auto* dns = name->d.dNSName;
        names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                           static_cast<std::size_t>(ASN1_STRING_length(dns)));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  return names;
}

// The header rules every JSON POST route shares (signing_api.h).
std::optional<ApiError> json_header_error(const httplib::Request& req) {
  const std::string content_type = req.get_header_value("Content-Type");
  const std::string accept = req.get_header_value("Accept");
  return check_json_headers(req.has_header("Content-Length"),
                            req.has_header("Content-Type") ? &content_type : nullptr,
                            req.has_header("Accept") ? &accept : nullptr);
}

void reply_error(httplib::Response& res, const ApiError& error) {
  res.status = error.http_status;
  res.set_content(error.body(), "application/json");
  if (error.http_status == 405) {
    const bool post_route = t_request.route == "signing" || t_request.route == "verification";
    res.set_header("Allow", post_route ? "POST" : "GET");
  }
  t_request.outcome = error.message_id;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return text;
}

// TLS keys may be group-readable (ssl-cert group), never world-readable.
void check_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(ErrorCode::kNotFound, "TLS key " + path + " cannot be read");
  }
  if ((st.st_mode & 007) != 0) {
    throw Error(ErrorCode::kPermission,
                "TLS key " + path + " is readable by others; chmod 600 (or 640) it");
  }
}

}  // namespace

class SigningServer::Impl {
 public:
  std::unique_ptr<httplib::Server> http;
  std::string tls_error;
  ConnectionRegistry connections;
};

SigningServer::SigningServer(const Config& config, p11::KeyStore* keys)
    : config_(config), keys_(keys), impl_(std::make_unique<Impl>()) {
  const ServerConfig& s = config_.server;
  if (!s.present) throw Error(ErrorCode::kConfig, config_.path + ": no [server] table");
  if (s.signing && config_.profiles.empty()) {
    throw Error(ErrorCode::kConfig, config_.path + ": no [[profile]]: nothing to sign with");
  }
  if (s.verification) {
    if (!config_.verifier) {
      throw Error(ErrorCode::kConfig, config_.path + ": the verification role needs [verifier]");
    }
    verifier_ = std::make_unique<stir::vs::Verifier>(*config_.verifier);
  }
  if (s.signing) {
    if (keys_ == nullptr) throw Error(ErrorCode::kInternal, "the signing role needs the token");
    keys_->pool().set_wait_observer(
        [this](std::chrono::nanoseconds wait) { metrics_.session_wait().observe(wait); });
    ring_.set(KeyRing::build(config_, *keys_));
  }

  if (s.lab_plain_http) {
    std::fprintf(stderr, "WARNING: lab_plain_http: serving without TLS. Never in production.\n");
    impl_->http = std::make_unique<httplib::Server>();
    scheme_ = "http";
  } else {
    check_key_file(s.tls_key);
    if (s.lab_no_client_cert) {
      std::fprintf(stderr,
                   "WARNING: lab_no_client_cert: clients are not authenticated. Never in "
                   "production.\n");
    }
    std::string& tls_error = impl_->tls_error;
    auto setup = [&s, &tls_error](SSL_CTX& ctx) {
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      SSL_CTX_set_options(
          &ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
      if (SSL_CTX_use_certificate_chain_file(&ctx, s.tls_cert.c_str()) != 1) {
        tls_error = "cannot load server.tls_cert " + s.tls_cert;
      } else if (SSL_CTX_use_PrivateKey_file(&ctx, s.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
                 SSL_CTX_check_private_key(&ctx) != 1) {
        tls_error = "server.tls_key " + s.tls_key + " does not load or match server.tls_cert";
      } else if (!s.lab_no_client_cert) {
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_ca.c_str());
        if (names == nullptr ||
            SSL_CTX_load_verify_locations(&ctx, s.client_ca.c_str(), nullptr) != 1) {
          tls_error = "cannot load server.client_ca " + s.client_ca;
          if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
        } else {
          SSL_CTX_set_client_CA_list(&ctx, names);
          SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        }
      }
      if (!tls_error.empty()) tls_error += ": " + stir::openssl_error_string();
      return tls_error.empty();
    };
    auto tls = std::make_unique<httplib::SSLServer>(setup);
    if (!tls->is_valid()) throw Error(ErrorCode::kConfig, tls_error);
    impl_->http = std::move(tls);
    scheme_ = "https";
  }

  httplib::Server& http = *impl_->http;
  const std::size_t threads =
      s.threads != 0 ? s.threads
                     : std::max<std::size_t>(32, 8 * std::thread::hardware_concurrency());
  http.new_task_queue = [threads, &connections = impl_->connections] {
    return new TrackingQueue(threads, connections);
  };
  // The listening socket, so a drain can stop accepting without httplib's
  // stop(), which would also drop requests whose bytes already arrived.
  http.set_socket_options([this](int fd) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_.store(fd);
  });
  http.set_tcp_nodelay(true);
  // httplib closes keep-alive connections after 5 requests by default, which
  // would force a TLS handshake every 5 signatures.
  http.set_keep_alive_max_count(s.keep_alive_max_requests);
  http.set_keep_alive_timeout(s.keep_alive_timeout_s);
  http.set_read_timeout(s.read_timeout_ms / 1000, (s.read_timeout_ms % 1000) * 1000);
  http.set_write_timeout(s.write_timeout_ms / 1000, (s.write_timeout_ms % 1000) * 1000);
  http.set_payload_max_length(s.max_body_bytes);

  const std::string signing_path = s.api_root + "/signing";
  const std::string verification_path = s.api_root + "/verification";
  http.set_pre_routing_handler(
      [signing_path, verification_path](const httplib::Request& req, httplib::Response& res) {
        t_request = RequestContext{};
        t_request.start = Clock::now();
        const std::string given = req.get_header_value("X-RequestID");
        t_request.request_id = is_sane_request_id(given) ? given : random_request_id();
        res.set_header("X-RequestID", t_request.request_id);
        t_request.client_names = client_names(req.ssl);
        if (t_slot != nullptr) {
          if (req.ssl != nullptr) t_slot->fd.store(SSL_get_fd(req.ssl));
          t_slot->in_request.store(true);
        }
        if (req.path == signing_path) {
          t_request.route = "signing";
        } else if (req.path == verification_path) {
          t_request.route = "verification";
        } else if (req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics" ||
                   req.path == "/admin/v1/keys") {
          t_request.route = req.path.substr(1);
        } else {
          t_request.route = "other";
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });

  auto method_not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    reply_error(res, ApiError::method_not_allowed(req.method));
  };
  if (s.signing) {
    http.Post(signing_path, [this](const httplib::Request& req, httplib::Response& res) {
      if (auto error = json_header_error(req)) {
        reply_error(res, *error);
        return;
      }
      const auto ring = ring_.get();  // this request's snapshot, kept to the end
      const auto start = Clock::now();
      SigningResult result;
      try {
        result = sign_request(req.body, t_request.client_names, *ring,
                              static_cast<std::int64_t>(std::time(nullptr)),
                              config_.server.max_iat_skew_s);
      } catch (const Error& e) {
        if (!e.pkcs11_function().empty()) {
          metrics_.count_pkcs11_error(e.pkcs11_function(), e.pkcs11_rv_name());
        }
        std::fprintf(stderr, "%s request_id=%s signing failed: %s\n", utc_now().c_str(),
                     t_request.request_id.c_str(), e.what());
        reply_error(res, ApiError::internal());
        return;
      }
      if (result.profile != nullptr) t_request.profile = result.profile->name;
      if (result.error) {
        reply_error(res, *result.error);
        return;
      }
      metrics_.sign_duration().observe(Clock::now() - start);
      res.set_content(result.response_body, "application/json");
      t_request.outcome = "ok";
    });
    http.Get(signing_path, method_not_allowed);
    http.Put(signing_path, method_not_allowed);
    http.Delete(signing_path, method_not_allowed);
    http.Patch(signing_path, method_not_allowed);
    http.Options(signing_path, method_not_allowed);
  }
  if (s.verification) {
    http.Post(verification_path, [this](const httplib::Request& req, httplib::Response& res) {
      if (auto error = json_header_error(req)) {
        reply_error(res, *error);
        return;
      }
      if (req.body.empty()) {
        reply_error(res, ApiError::missing_body());
        return;
      }
      const auto document = nlohmann::json::parse(req.body, nullptr, false);
      if (document.is_discarded()) {
        reply_error(res, ApiError::parse_failure("not valid JSON"));
        return;
      }
      const auto parsed = stir::vs::parse_verification_request(document);
      if (parsed.error) {
        reply_error(res, ApiError{parsed.error->message_id, parsed.error->http_status,
                                  parsed.error->text, parsed.error->variables});
        return;
      }
      const auto result = verifier_->verify(*parsed.request);
      res.set_content(stir::vs::to_verification_response(result).dump(), "application/json");
      t_request.outcome = result.passed() ? "ok" : result.error_case_id();
    });
    for (const auto& register_method :
         {&httplib::Server::Get, &httplib::Server::Put, &httplib::Server::Delete,
          &httplib::Server::Patch, &httplib::Server::Options}) {
      (http.*register_method)(verification_path, method_not_allowed);
    }
  }

  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
    t_request.outcome = "ok";
  });
  http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const std::string reason = draining_.load() ? "draining" : readiness();
    res.status = reason.empty() ? 200 : 503;
    res.set_content(nlohmann::json{{"ready", reason.empty()}, {"reason", reason}}.dump(),
                    "application/json");
    t_request.outcome = reason.empty() ? "ok" : "not_ready";
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::string text = metrics_.render();
    if (verifier_) text += Metrics::render_verification(verifier_->metrics());
    if (const auto ring = ring_.get()) text += ring->render_metrics(std::time(nullptr));
    res.set_content(text, "text/plain; version=0.0.4");
    t_request.outcome = "ok";
  });
  http.Get("/admin/v1/keys", [this](const httplib::Request&, httplib::Response& res) {
    const auto ring = ring_.get();
    const AdminResponse answer =
        ring ? admin_keys(t_request.client_names, *ring, config_.server.admins, std::time(nullptr))
             : AdminResponse{404, ApiError::not_found("/admin/v1/keys").body()};
    res.status = answer.status;
    res.set_content(answer.body, "application/json");
    t_request.outcome = answer.status == 200 ? "ok" : "forbidden";
  });
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    http.Post(path, method_not_allowed);
    http.Put(path, method_not_allowed);
    http.Delete(path, method_not_allowed);
  }

  // httplib calls this for every status >= 400; fill in only what no
  // handler answered (unknown paths, oversized or malformed requests).
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [max_body = s.max_body_bytes](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        ApiError error = ApiError::not_found(req.path);
        if (res.status == 413) {
          error =
              ApiError::parse_failure("body larger than " + std::to_string(max_body) + " bytes");
          error.http_status = 413;
        } else if (res.status != 404) {
          error = ApiError::parse_failure("malformed HTTP request");
          error.http_status = res.status;
        }
        reply_error(res, error);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        std::fprintf(stderr, "%s request_id=%s internal error: %s\n", utc_now().c_str(),
                     t_request.request_id.c_str(), what.c_str());
        reply_error(res, ApiError::internal());
      });

  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const auto latency =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t_request.start)
            .count();
    const std::string outcome =
        !t_request.outcome.empty() ? t_request.outcome : (res.status < 400 ? "ok" : "error");
    const std::string route = t_request.route.empty() ? "other" : t_request.route;
    metrics_.count_request(route, res.status, outcome);
    // One line per request; never a PIN or a token (PROTOCOL-sized data).
    const std::string line =
        utc_now() + " request_id=" + t_request.request_id +
        " client=" + (t_request.client_names.empty() ? "-" : t_request.client_names.front()) +
        " profile=" + (t_request.profile.empty() ? "-" : t_request.profile) +
        " method=" + req.method + " route=" + route + " status=" + std::to_string(res.status) +
        " outcome=" + outcome + " latency_us=" + std::to_string(latency) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    if (t_slot != nullptr) t_slot->in_request.store(false);
  });
}

SigningServer::~SigningServer() = default;

int SigningServer::bind() {
  const ServerConfig& s = config_.server;
  httplib::Server& http = *impl_->http;
  int port = s.port;
  if (s.port == 0) {
    port = http.bind_to_any_port(s.listen);
  } else if (!http.bind_to_port(s.listen, s.port)) {
    port = -1;
  }
  if (port < 0) {
    throw Error(ErrorCode::kIo, "cannot listen on " + s.listen + ":" + std::to_string(s.port));
  }
  return port;
}

void SigningServer::serve() { impl_->http->listen_after_bind(); }

void SigningServer::stop(std::chrono::milliseconds drain_timeout) {
  if (draining_.exchange(true)) return;
  const int listener = listen_fd_.load();
  if (listener < 0) {
    impl_->http->stop();  // never bound: nothing to drain
    return;
  }
  ::shutdown(listener, SHUT_RDWR);  // accept() fails, httplib's accept loop ends
  const auto deadline = Clock::now() + drain_timeout;
  // serve() returns once every connection job has ended.
  while (impl_->http->is_running()) {
    impl_->connections.close_connections(Clock::now() > deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool SigningServer::is_running() const { return impl_->http->is_running(); }

void SigningServer::reload(const Config& config) {
  try {
    if (keys_ == nullptr) throw Error(ErrorCode::kConfig, "no signing role to reload");
    auto ring = KeyRing::build(config, *keys_);
    ring->self_test();  // a ring whose key fails never replaces a working one
    ring_.set(std::move(ring));
    metrics_.count_reload(true);
  } catch (...) {
    metrics_.count_reload(false);
    throw;
  }
}

std::string SigningServer::readiness() const {
  if (keys_ == nullptr) return {};  // a pure verifier has no token to check
  CK_SESSION_INFO info{};
  const p11::Token& token = keys_->pool().token();
  const CK_RV rv = token.api()->C_GetSessionInfo(token.anchor_session(), &info);
  if (rv != CKR_OK) return "token session: " + p11::ckr_name(rv);
  if (info.state != CKS_RW_USER_FUNCTIONS && info.state != CKS_RO_USER_FUNCTIONS) {
    return "token is not logged in";
  }
  const auto ring = ring_.get();
  const stir::Sha256Digest digest = stir::sha256("sks readiness self-test");
  for (const auto& profile : ring->profiles()) {
    if (!profile.key) continue;  // no active key: 503 for that profile only
    try {
      const auto signature = profile.key->signer->sign_digest(digest);
      if (!stir::verify_es256_digest(profile.key->public_key.get(), digest, signature)) {
        return "key '" + profile.key->label + "' signed a self-test that does not verify";
      }
    } catch (const std::exception& e) {
      return "key '" + profile.key->label + "': " + e.what();
    }
  }
  return {};
}

}  // namespace sks::server
