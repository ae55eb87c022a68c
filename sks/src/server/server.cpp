#include "sks/server/server.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "sks/server/admin_api.h"
#include "sks/server/api_error.h"
#include "sks/server/signing_api.h"
#include "sks/server/verification_api.h"
#include "stir/error.h"
#include "stir/http/listener.h"

namespace sks::server {

namespace {

using stir::Error;
using stir::ErrorCode;
using stir::http::Request;
using stir::http::RequestContext;
using stir::http::Response;
using Clock = std::chrono::steady_clock;

// A random (version 4) UUID. The random bytes come from OpenSSL's DRBG 64
// ids at a time per thread: one RAND_bytes call per request cost about 4 us
// of a signing request's CPU (its locks and reseed checks), the bytes
// themselves almost nothing (bench/README.md, issue 20).
std::string random_request_id() {
  constexpr std::size_t kIds = 64;
  thread_local unsigned char pool[kIds * 16];
  thread_local std::size_t used = kIds;
  if (used == kIds) {
    if (RAND_bytes(pool, sizeof pool) != 1) return "unknown";
    used = 0;
  }
  unsigned char* b = pool + 16 * used++;
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(36, '-');
  std::size_t at = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
    text[at++] = kHex[b[i] >> 4];
    text[at++] = kHex[b[i] & 0x0F];
  }
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

// A response for `route` carrying the request's id: the caller's
// X-RequestID when sane, else a fresh UUID.
Response begin_response(const Request& request, std::string route) {
  Response response;
  const auto given = request.header("X-RequestID");
  response.request_id =
      given && is_sane_request_id(std::string(*given)) ? std::string(*given) : random_request_id();
  response.header("X-RequestID", response.request_id);
  response.route = std::move(route);
  return response;
}

// The one road from a failure to HTTP: the table in api_error.cpp gives
// the status, the ATIS body, the outcome the access log records and
// Retry-After.
Response& reply_error(Response& response, const stir::Error& error) {
  const ApiAnswer answer = api_answer(error);
  response.status = answer.status;
  response.body = answer.body;
  response.header("Content-Type", "application/json");
  if (answer.retry_after_s > 0)
    response.header("Retry-After", std::to_string(answer.retry_after_s));
  response.outcome = answer.message_id;
  return response;
}

// A response begun for `route`, filled by `handle`; a request it refuses
// (stir::RequestError) is answered by reply_error(). Other exceptions
// reach the server's internal_error answer.
template <class Handle>
Response respond(const Request& request, std::string route, Handle&& handle) {
  Response response = begin_response(request, std::move(route));
  try {
    handle(response);
  } catch (const stir::RequestError& refused) {
    reply_error(response, refused);
  }
  return response;
}

Response& reply_json(Response& response, std::string body, std::string outcome) {
  response.body = std::move(body);
  response.header("Content-Type", "application/json");
  response.outcome = std::move(outcome);
  return response;
}

// Whether a client may use a route with an optional role list: no list
// means any client certificate of client_ca; names compare as exact bytes.
bool listed(const std::optional<std::vector<std::string>>& list,
            const std::vector<std::string>& client_names) {
  return !list || stir::http::client_listed(*list, client_names);
}

void warn_on_stderr(std::string_view warning) {
  std::fprintf(stderr, "%.*s\n", static_cast<int>(warning.size()), warning.data());
}

// The header rules every JSON POST route shares (signing_api.h); throws
// stir::RequestError.
void require_json_headers(const Request& request) {
  const auto content_type = request.header("Content-Type");
  const auto accept = request.header("Accept");
  const std::string content_type_text(content_type.value_or(""));
  const std::string accept_text(accept.value_or(""));
  check_json_headers(request.header("Content-Length").has_value(),
                     content_type ? &content_type_text : nullptr, accept ? &accept_text : nullptr);
}

}  // namespace

ApiServer::ApiServer(const Config& config, p11::KeyStore* keys)
    : config_(apply_rotation_state(config)), keys_(keys), rate_limiter_(config.rate_limit) {
  check_roles();
  if (!config_.audit.file.empty()) audit_ = std::make_unique<AuditLog>(config_.audit);
  http_ = std::make_unique<stir::http::Server>(http_options());
  if (config_.metrics.present) {
    metrics_http_ = std::make_unique<stir::http::Server>(metrics_options());
  }
}

ApiServer::~ApiServer() = default;

// The roles the config asks for, and what each needs: profiles and the
// token for signing, a [verifier] table for verification.
void ApiServer::check_roles() {
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
    const std::int64_t now = std::time(nullptr);
    report_.generation = config_.rotation.loaded_generation;
    report_.loaded_at = report_.reload_time = now;
    for (const auto& p : config_.profiles) report_.since[p.name] = now;
  }
}

stir::http::Options ApiServer::http_options() {
  const ServerConfig& s = config_.server;
  scheme_ = s.lab_plain_http ? "http" : "https";
  stir::http::Options o =
      stir::http::listener_options(s, stir::http::make_listener_tls(s, "sks", warn_on_stderr));
  // One signing worker per token session: more workers than sessions would
  // only wait for a session. A signature runs on the I/O thread that read
  // the request while a worker (so a session) is idle, without the hop to
  // the pool and back; on the pool otherwise (Run::kInlineWhenIdle).
  o.workers = keys_ != nullptr ? keys_->pool().size() : 0;
  o.worker_queue = s.signing_queue_depth;
  // Verification and readiness have pools of their own, so a burst of
  // verifications (x5u fetches wait on the network) never fills the signing
  // queue, and /readyz never answers 503 because signing is busy. The
  // verifier lets at most max_fetches_in_flight workers wait on fetches
  // (waiting for another's fetch included) and refuses more at once, so
  // 2 x cores workers always remain for verifications whose certificate is
  // cached: those never queue behind a slow x5u host.
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t fetching = config_.verifier ? config_.verifier->max_fetches_in_flight : 0;
  o.pools = {{"verification", {2 * cores + fetching, s.signing_queue_depth}},
             {"readiness", {1, 8}}};
  add_routes(o.router);
  o.busy = [this, signing_path = s.api_root + "/signing"](const Request& request,
                                                          const RequestContext& context) {
    Response response = begin_response(request, "busy");
    reply_error(response, Error(ErrorCode::kUnavailable, "the worker pool's queue is full"));
    if (request.path() == signing_path) audit(request, context, response, {});
    return response;
  };
  add_error_answers(o);
  return o;
}

// [metrics]: GET /metrics alone, with the same answers as the signing port
// for everything else (404, 405, malformed requests).
stir::http::Options ApiServer::metrics_options() {
  const MetricsConfig& m = config_.metrics;
  stir::http::Options o = stir::http::listener_options(
      m, m.plain_http() ? nullptr : stir::http::make_listener_tls(m, "sks", warn_on_stderr));
  o.workers = 1;  // no blocking route: the pool stays idle
  o.worker_queue = 8;
  add_metrics_route(o.router, m.clients, "metrics.clients");
  add_refusals(o.router, {}, {});
  add_error_answers(o);
  return o;
}

// What both listeners answer to a request refused unread, a handler's
// exception, and the access log (one line and sks_requests_total each).
void ApiServer::add_error_answers(stir::http::Options& o) {
  o.protocol_error = [max_body = o.body_limit](const stir::http::ProtocolError& refused) {
    using Problem = stir::RequestError::Problem;
    Response response = begin_response(Request{}, "other");
    if (refused.status == 413) {
      return reply_error(
          response, stir::RequestError(Problem::kBodyTooLarge, "",
                                       "body larger than " + std::to_string(max_body) + " bytes"));
    }
    if (refused.status == 431) {  // "request header larger than N bytes"
      return reply_error(response,
                         stir::RequestError(Problem::kHeaderTooLarge, "", refused.reason));
    }
    return reply_error(response, stir::RequestError::parse_failure("malformed HTTP request"));
  };
  o.internal_error = [this](const Request& request, const RequestContext&, std::string_view what) {
    Response response = begin_response(request, "other");
    log_.write(rfc3339_millis(std::chrono::system_clock::now()) + " request_id=" +
               response.request_id + " internal error: " + std::string(what) + "\n");
    return reply_error(response, Error(ErrorCode::kInternal, std::string(what)));
  };
  o.access_log = [this](const stir::http::AccessRecord& record) { log_access(record); };
}

void ApiServer::add_routes(stir::http::Router& router) {
  using stir::http::Run;
  const ServerConfig& s = config_.server;
  const std::string signing_path = s.api_root + "/signing";
  const std::string verification_path = s.api_root + "/verification";
  if (s.signing) {
    router.add(
        "POST", signing_path,
        [this](const Request& request, const RequestContext& context) {
          return signing_route(request, context);
        },
        Run::kInlineWhenIdle);
  }
  if (s.verification) {
    // x5u fetches may wait on the network: a worker, not an I/O thread.
    router.add(
        "POST", verification_path,
        [this](const Request& request, const RequestContext& context) {
          return verify(request, context);
        },
        Run::kBlocking, "verification");
  }
  add_operations_routes(router);
  add_refusals(router, signing_path, verification_path);
}

// 405 with Allow for a known path (the access log's route: the API route's
// name, else the path), 404 SVC4003 for any other.
void ApiServer::add_refusals(stir::http::Router& router, std::string signing_path,
                             std::string verification_path) {
  router.method_not_allowed(
      [signing_path = std::move(signing_path), verification_path = std::move(verification_path)](
          const Request& request, const RequestContext&, const std::string& allow) {
        const std::string_view path = request.path();
        std::string route = "other";
        if (!signing_path.empty() && path == signing_path) {
          route = "signing";
        } else if (!verification_path.empty() && path == verification_path) {
          route = "verification";
        } else if (!path.empty()) {
          route = std::string(path.substr(1));
        }
        Response response = begin_response(request, route);
        reply_error(response, stir::RequestError::method_not_allowed(std::string(request.method)));
        return response.header("Allow", allow);
      });
  router.fallback([](const Request& request, const RequestContext&) {
    Response response = begin_response(request, "other");
    return reply_error(response, stir::RequestError::not_found(std::string(request.path())));
  });
}

// GET /metrics for the clients `clients` lists (absent: any client
// certificate); others get 403 POL4003 naming `list_name`.
void ApiServer::add_metrics_route(stir::http::Router& router,
                                  const std::optional<std::vector<std::string>>& clients,
                                  const std::string& list_name) {
  router.add("GET", "/metrics",
             [this, clients, refusal = "this client identity is not in " + list_name](
                 const Request& request, const RequestContext& context) {
               return respond(request, "metrics", [&](Response& response) {
                 if (!listed(clients, context.connection.client_names)) {
                   throw stir::RequestError::forbidden(refusal);
                 }
                 response.body = render_metrics();
                 response.outcome = "ok";
                 response.header("Content-Type", "text/plain; version=0.0.4");
               });
             });
}

// Health, readiness, metrics and the admin API.
void ApiServer::add_operations_routes(stir::http::Router& router) {
  router.add("GET", "/healthz", [](const Request& request, const RequestContext&) {
    Response response = begin_response(request, "healthz");
    response.body = "ok\n";
    response.outcome = "ok";
    return response.header("Content-Type", "text/plain");
  });
  // Signs a self-test with every key: token work, on a thread of its own.
  router.add(
      "GET", "/readyz",
      [this](const Request& request, const RequestContext&) {
        Response response = begin_response(request, "readyz");
        const std::string reason = draining_.load() ? "draining" : readiness();
        response.status = reason.empty() ? 200 : 503;
        return reply_json(response,
                          nlohmann::json{{"ready", reason.empty()}, {"reason", reason}}.dump(),
                          reason.empty() ? "ok" : "not_ready");
      },
      stir::http::Run::kBlocking, "readiness");
  // With [metrics], /metrics is on its own listener only: 404 here.
  if (!config_.metrics.present) {
    add_metrics_route(router, config_.server.metrics_clients, "server.metrics_clients");
  }
  router.add("GET", "/admin/v1/keys",
             [this](const Request& request, const RequestContext& context) {
               return respond(request, "admin/v1/keys", [&](Response& response) {
                 const auto ring = ring_.get();
                 if (!ring) throw stir::RequestError::not_found(std::string(request.path()));
                 RingReport report;
                 {
                   const std::lock_guard lock(report_mutex_);
                   report = report_;
                 }
                 reply_json(response,
                            admin_keys(context.connection.client_names, *ring, report,
                                       config_.server.admins, std::time(nullptr)),
                            "ok");
               });
             });
}

std::string ApiServer::render_metrics() const {
  std::string body = metrics_.render() + Metrics::render_connections(http_->stats());
  if (verifier_) body += Metrics::render_verification(verifier_->metrics());
  if (const auto ring = ring_.get()) body += ring->render_metrics(std::time(nullptr));
  body += rate_limiter_.render_metrics();
  if (audit_) body += audit_->render_metrics();
  if (keys_ != nullptr) {
    body += keys_->pool().breaker().render_metrics();
    body += keys_->signature_check().render_metrics();
  }
  return body;
}

// The name logs, audit records and rate limits know the client by (the
// one that matched its profile), or the remote address.
std::string ApiServer::client_identity(const stir::http::ConnectionInfo& connection) const {
  const auto ring = ring_.get();
  const std::string* name =
      ring ? ring->client_identity(connection.client_names)
           : (connection.client_names.empty() ? nullptr : &connection.client_names.front());
  return name != nullptr ? *name : connection.remote_address;
}

Response ApiServer::signing_route(const Request& request, const RequestContext& context) {
  const std::string client = client_identity(context.connection);
  if (const auto wait = rate_limiter_.admit(client)) {
    Response response = begin_response(request, "signing");
    reply_error(response,
                stir::RequestError::too_many_requests(
                    "client '" + stir::http::loggable(client) + "' is over its rate limit of " +
                        std::to_string(config_.rate_limit.per_client_per_s) + "/s",
                    static_cast<int>(*wait)));
    audit(request, context, response, {});
    return response;
  }
  if (!audit_) return sign(request, context, nullptr);
  AuditRecord record;
  Response response = sign(request, context, &record);
  audit(request, context, response, std::move(record));
  return response;
}

void ApiServer::audit(const Request& request, const RequestContext& context,
                      const Response& response, AuditRecord record) {
  if (!audit_) return;
  record.time = std::chrono::system_clock::now();
  record.request_id = response.request_id;
  const auto& names = context.connection.client_names;
  if (!names.empty()) record.client = client_identity(context.connection);
  record.status = response.status;
  record.outcome = response.status == 200 ? "ok" : response.outcome;
  if (record.profile.empty()) {
    if (const auto ring = ring_.get()) {
      if (const Profile* profile = ring->profile_for(names)) {
        record.profile = profile->name;
        if (record.key.empty() && profile->key) {
          record.key = profile->key->label;
          record.x5u = profile->key->x5u;
        }
      }
    }
  }
  if (response.status != 200) record.request_body = std::string(request.body);
  audit_->submit(std::move(record));
}

Response ApiServer::sign(const Request& request, const RequestContext& context,
                         AuditRecord* record) {
  return respond(request, "signing", [&](Response& response) {
    require_json_headers(request);
    const auto ring = ring_.get();  // this request's snapshot, kept to the end
    // The access log names the profile of a refused request too.
    if (const Profile* profile = ring->profile_for(context.connection.client_names)) {
      response.detail = profile->name;
    }
    const auto start = Clock::now();
    SigningResult result;
    try {
      result = sign_request(request.body, context.connection.client_names, *ring,
                            static_cast<std::int64_t>(std::time(nullptr)),
                            config_.server.max_iat_skew_s);
    } catch (const stir::RequestError&) {
      throw;
    } catch (const Error& e) {
      token_failed(response, e);
      return;
    }
    metrics_.sign_duration().observe(Clock::now() - start);
    if (record != nullptr) {
      record->profile = result.profile->name;
      record->key = result.profile->key->label;
      record->x5u = result.profile->key->x5u;
      record->claims = std::move(result.claims);
      record->signing_input = std::move(result.signing_input);
    }
    reply_json(response, std::move(result.response_body), "ok");
  });
}

// A signature the token did not make: counted by CKR name; answered by
// the one table (503 POL5003 with Retry-After while the token is down,
// else 500 POL5000, logged). The recovery thread logs an outage once, not
// once per request.
void ApiServer::token_failed(Response& response, const Error& error) {
  if (const auto* failure = dynamic_cast<const p11::Pkcs11Error*>(&error)) {
    metrics_.count_pkcs11_error(failure->function(), failure->rv_name());
  }
  if (error.code() != ErrorCode::kUnavailable) {
    log_.write(rfc3339_millis(std::chrono::system_clock::now()) +
               " request_id=" + response.request_id + " signing failed: " + error.what() + "\n");
  }
  reply_error(response, error);
}

Response ApiServer::verify(const Request& request, const RequestContext& context) {
  return respond(request, "verification", [&](Response& response) {
    if (!listed(config_.server.verification_clients, context.connection.client_names)) {
      throw stir::RequestError::forbidden(
          "this client identity is not in server.verification_clients");
    }
    require_json_headers(request);
    auto result = verify_request(request.body, *verifier_);
    reply_json(response, std::move(result.response_body), std::move(result.outcome));
  });
}

void ApiServer::log_access(const stir::http::AccessRecord& record) {
  const Response& response = record.response;
  const std::string_view outcome = !response.outcome.empty()
                                       ? std::string_view(response.outcome)
                                       : (response.status < 400 ? "ok" : "error");
  const std::string_view route =
      response.route.empty() ? std::string_view("other") : std::string_view(response.route);
  metrics_.count_request(std::string(route), response.status, std::string(outcome));
  const auto& names = record.connection.client_names;
  // One line per request; never a PIN or a token (PROTOCOL-sized data).
  // The client is the name that matched its profile, escaped. Appended to
  // one string: a chain of `+` made a string per field.
  const auto or_dash = [](std::string_view text) { return text.empty() ? "-" : text; };
  std::string line = rfc3339_millis(std::chrono::system_clock::now());
  line.reserve(256);
  line.append(" request_id=").append(or_dash(response.request_id));
  line.append(" client=")
      .append(names.empty() ? "-" : stir::http::loggable(client_identity(record.connection)));
  line.append(" profile=").append(or_dash(response.detail));
  line.append(" method=").append(record.method);
  line.append(" route=").append(route);
  line.append(" status=").append(std::to_string(response.status));
  line.append(" outcome=").append(outcome);
  line.append(" latency_us=").append(std::to_string(record.latency.count())).append("\n");
  log_.write(line);  // batched: one write() per batch, not per request
}

int ApiServer::bind() {
  const int port = http_->bind();
  if (metrics_http_) metrics_port_ = metrics_http_->bind();
  return port;
}

void ApiServer::serve() {
  // The metrics listener on a thread of its own, stopped with the signing
  // one (stop(), or the signing listener's serve() ending by itself).
  std::thread metrics;
  if (metrics_http_) metrics = std::thread([this] { metrics_http_->serve(); });
  http_->serve();
  if (metrics_http_) {
    metrics_http_->stop(std::chrono::seconds(1));
    metrics.join();
  }
}

void ApiServer::stop(std::chrono::milliseconds drain_timeout) {
  draining_.store(true);
  http_->stop(drain_timeout);
  if (metrics_http_) metrics_http_->stop(drain_timeout);
}

std::string ApiServer::metrics_url() const {
  if (!metrics_http_ || metrics_port_ < 0) return {};
  stir::http::ListenerConfig shown = config_.metrics;
  shown.lab_plain_http = config_.metrics.plain_http();  // the URL's scheme
  return stir::http::listener_url(shown, metrics_port_) + "/metrics";
}

stir::http::Stats ApiServer::connection_stats() const { return http_->stats(); }

void ApiServer::reload(const Config& fresh) {
  // Every failure from here on, a rotation state that cannot be read
  // included, is reported here once; the caller reports only a config it
  // could not read (reload_failed()).
  try {
    const Config config = apply_rotation_state(fresh);
    if (keys_ == nullptr) throw Error(ErrorCode::kConfig, "no signing role to reload");
    auto ring = KeyRing::build(config, *keys_);
    ring->self_test();  // a ring whose key fails never replaces a working one
    const std::int64_t now = std::time(nullptr);
    const std::lock_guard lock(report_mutex_);
    // A profile's switch time moves only when its (key, x5u) changes.
    std::map<std::string, std::pair<std::string, std::string>> before;
    if (const auto old = ring_.get()) {
      for (const auto& p : old->profiles()) {
        before[p.name] =
            p.key ? std::pair{p.key->label, p.key->x5u} : std::pair<std::string, std::string>{};
      }
    }
    std::map<std::string, std::int64_t> since;
    for (const auto& p : ring->profiles()) {
      const auto now_signs =
          p.key ? std::pair{p.key->label, p.key->x5u} : std::pair<std::string, std::string>{};
      const auto it = before.find(p.name);
      const auto kept = report_.since.find(p.name);
      since[p.name] = it != before.end() && it->second == now_signs && kept != report_.since.end()
                          ? kept->second
                          : now;
    }
    ring_.set(std::move(ring));
    report_.since = std::move(since);
    report_.generation = config.rotation.loaded_generation;
    report_.loaded_at = report_.reload_time = now;
    report_.reload_ok = true;
    report_.error.clear();
    ++report_.reloads;
    metrics_.count_reload(true);
  } catch (const std::exception& e) {
    reload_failed(e.what());
    throw;
  }
}

void ApiServer::reload_failed(const std::string& error) {
  metrics_.count_reload(false);
  const std::lock_guard lock(report_mutex_);
  report_.reload_ok = false;
  report_.error = error;
  report_.reload_time = std::time(nullptr);
  ++report_.reloads;
}

nlohmann::json ApiServer::ring_report() const {
  RingReport report;
  {
    const std::lock_guard lock(report_mutex_);
    report = report_;
  }
  const auto ring = ring_.get();
  if (!ring) return nlohmann::json::object();
  return describe_ring(*ring, report, std::time(nullptr));
}

std::string ApiServer::readiness() const {
  if (keys_ == nullptr) return {};  // a pure verifier has no token to check
  if (auto reason = keys_->pool().readiness(); !reason.empty()) return reason;
  try {
    ring_.get()->self_test();  // a profile without an active key is skipped: 503 for it alone
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

}  // namespace sks::server
