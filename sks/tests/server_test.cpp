// The HTTPS signing API against a real SoftHSM token, with real TLS and
// mutual authentication: every ATIS error with its exact body and code,
// the client identity rules, keep-alive load, metrics, readiness and a key
// ring swap.
#include "sks/server/server.h"

#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "raw_clients.h"
#include "signing_server_setup.h"
#include "sks/server/api_error.h"
#include "sks/server/verification_api.h"
#include "softhsm_token.h"
#include "stir/error.h"
#include "stir/openssl.h"
#include "stir/verify.h"
#include "test_pki.h"

namespace sks::testing {
namespace {

using nlohmann::json;

// A signing server on 127.0.0.1, an ephemeral port, over the fixture's token.
class SigningServerTest : public SoftHsmTest {
 protected:
  void SetUp() override {
    // A client the server refused (TLS 1.3 alert after the client's
    // handshake ended) writes into a closed socket: an error, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    SoftHsmTest::SetUp();
    keys->generate("key-a");
    keys->generate("key-b");
    tls = stir::testing::make_tls_pki("sbc1.example.net");
    write_server_tls(dir.path(), tls);
    configure_signing_server(config, dir.path(), {"sbc1.example.net"});
    config.token.module = STIR_SOFTHSM_MODULE;
    config.token.label = kTokenLabel;
    config.server.io_threads = 24;
  }

  void TearDown() override {
    stop_server();
    SoftHsmTest::TearDown();
  }

  void start_server() {
    server = std::make_unique<server::ApiServer>(config, keys.get());
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }

  void stop_server() {
    if (server) server->stop();
    if (thread.joinable()) thread.join();
    server.reset();
  }

  // A client with the given certificate prefix (empty: no client certificate).
  std::unique_ptr<httplib::SSLClient> client(const std::string& prefix = "") {
    const std::string p = prefix.empty() ? "" : prefix;
    auto c = p.empty()
                 ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
                 : std::make_unique<httplib::SSLClient>("127.0.0.1", port, p + ".pem", p + ".key");
    c->set_ca_cert_path((dir.path() + "/tls/server-ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5);
    c->set_read_timeout(10);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    return c;
  }
  std::unique_ptr<httplib::SSLClient> sbc() { return client(dir.path() + "/tls/client"); }

  static std::string body(const json& request) { return json{{"signingRequest", request}}.dump(); }
  static json claims() {
    return {{"attest", "A"},
            {"dest", {{"tn", {"12155550131"}}}},
            {"iat", std::time(nullptr)},
            {"orig", {{"tn", "12155550121"}}},
            {"origid", "123e4567-e89b-12d3-a456-426655440000"}};
  }

  stir::VerifyResult verify_identity(const std::string& response_body, const std::string& key) {
    const auto identity =
        json::parse(response_body)["signingResponse"]["identity"].get<std::string>();
    const auto public_key = stir::load_public_key_pem(keys->public_key_pem(key));
    stir::VerifyOptions options;
    options.now = std::time(nullptr);
    return stir::verify_identity(identity, public_key.get(), options);
  }

  stir::testing::TlsPki tls;
  Config config;
  std::unique_ptr<server::ApiServer> server;
  std::thread thread;
  int port = 0;
};

void expect_error(const httplib::Result& result, int status, const std::string& expected_body) {
  ASSERT_TRUE(result) << "no response: " << httplib::to_string(result.error());
  EXPECT_EQ(result->status, status);
  EXPECT_EQ(result->body, expected_body);
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
}

TEST_F(SigningServerTest, SignsAndTheTokenVerifiesWithTheKeysX5u) {
  start_server();
  auto c = sbc();
  httplib::Headers headers = {{"X-RequestID", "req-42"}, {"Accept", "application/json"}};
  auto result = c->Post("/stir/v1/signing", headers, body(claims()), "application/json");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("X-RequestID"), "req-42");
  const auto verified = verify_identity(result->body, "key-a");
  ASSERT_TRUE(verified.valid) << verified.detail;
  EXPECT_EQ(verified.passport->header.x5u, kX5u);
  EXPECT_EQ(verified.passport->claims.attest, "A");
  const auto identity = json::parse(result->body)["signingResponse"]["identity"].get<std::string>();
  EXPECT_NE(identity.find(std::string(";info=<") + kX5u + ">;alg=ES256;ppt=shaken"),
            std::string::npos);
}

TEST_F(SigningServerTest, DefaultsIatAndOrigidAndIgnoresUnknownMembers) {
  start_server();
  json request = claims();
  request.erase("iat");
  request.erase("origid");
  request["ppt"] = "shaken";  // Oracle SBC sends this
  request["x-vendor"] = {{"anything", 1}};
  const auto before = std::time(nullptr);
  auto result = sbc()->Post("/stir/v1/signing", body(request), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const auto verified = verify_identity(result->body, "key-a");
  ASSERT_TRUE(verified.valid) << verified.detail;
  EXPECT_EQ(verified.passport->claims.origid, kOrigid);
  EXPECT_GE(verified.passport->claims.iat, before);
  EXPECT_LE(verified.passport->claims.iat, std::time(nullptr));
  // A request id is generated when the caller sends none.
  EXPECT_TRUE(stir::is_uuid(result->get_header_value("X-RequestID")));
}

TEST_F(SigningServerTest, EveryServiceErrorHasItsExactBodyAndCode) {
  start_server();
  auto c = sbc();
  const std::string path = "/stir/v1/signing";
  auto post = [&](const json& request) {
    return c->Post(path.c_str(), body(request), "application/json");
  };
  auto without = [](const char* name) {
    json r = claims();
    r.erase(name);
    return r;
  };
  auto with = [](const char* name, json value) {
    json r = claims();
    r[name] = std::move(value);
    return r;
  };
  auto svc4001 = [](const std::string& name) {
    return R"({"requestError":{"serviceException":{"messageId":"SVC4001","text":"Missing mandatory parameter '%1'","variables":[")" +
           name + R"("]}}})";
  };
  auto svc4005 = [](const std::string& name, const std::string& why) {
    return R"({"requestError":{"serviceException":{"messageId":"SVC4005","text":"Invalid '%1' parameter value: %2","variables":[")" +
           name + R"(",")" + why + R"("]}}})";
  };

  expect_error(
      c->Post(path.c_str(), "", "application/json"), 400,
      R"({"requestError":{"serviceException":{"messageId":"SVC4000","text":"Missing request body"}}})");
  expect_error(post(without("attest")), 400, svc4001("attest"));
  expect_error(post(without("orig")), 400, svc4001("orig"));
  expect_error(post(without("dest")), 400, svc4001("dest"));
  expect_error(c->Post(path.c_str(), R"({"other":{}})", "application/json"), 400,
               svc4001("signingRequest"));
  expect_error(post(json::object()), 400, svc4001("attest"));  // an SBC heartbeat
  expect_error(
      c->Post(path.c_str(), {{"Accept", "text/html"}}, body(claims()), "application/json"), 406,
      R"({"requestError":{"serviceException":{"messageId":"SVC4002","text":"Requested response body type '%1' is not supported","variables":["text/html"]}}})");
  expect_error(
      c->Post(path.c_str(), {{"Accept", "application/json;q=0"}}, body(claims()),
              "application/json"),
      406,
      R"({"requestError":{"serviceException":{"messageId":"SVC4002","text":"Requested response body type '%1' is not supported","variables":["application/json;q=0"]}}})");
  expect_error(
      c->Post("/stir/v1/nothing", body(claims()), "application/json"), 404,
      R"({"requestError":{"serviceException":{"messageId":"SVC4003","text":"Resource '%1' not found","variables":["/stir/v1/nothing"]}}})");
  expect_error(
      c->Post(path.c_str(), body(claims()), "text/plain"), 415,
      R"({"requestError":{"serviceException":{"messageId":"SVC4004","text":"Unsupported request body type, expected '%1'","variables":["application/json"]}}})");
  expect_error(post(with("attest", "D")), 400,
               svc4005("attest", R"(must be \"A\", \"B\" or \"C\")"));
  expect_error(post(with("orig", {{"tn", "+12155550121"}})), 400,
               svc4005("orig", "orig.tn must be digits only, country code included"));
  expect_error(post(with("orig", "12155550121")), 400,
               svc4005("orig", R"(must be {\"tn\":\"<canonical TN>\"})"));
  expect_error(post(with("dest", {{"tn", "12155550131"}})), 400,
               svc4005("dest", R"(must be {\"tn\":[\"<canonical TN>\", ...]})"));
  expect_error(post(with("dest", {{"tn", {"1-215-555-0131"}}})), 400,
               svc4005("dest", "dest.tn entries must be digits only"));
  expect_error(post(with("iat", std::time(nullptr) - 120)), 400,
               svc4005("iat", "more than 60 s from the server's clock"));
  expect_error(post(with("iat", std::time(nullptr) + 120)), 400,
               svc4005("iat", "more than 60 s from the server's clock"));
  expect_error(post(with("iat", "1632412033")), 400,
               svc4005("iat", "must be an integer NumericDate"));
  expect_error(post(with("origid", "not-a-uuid")), 400, svc4005("origid", "must be a UUID"));
  expect_error(
      c->Post(path.c_str(), "{\"signingRequest\":", "application/json"), 400,
      R"({"requestError":{"serviceException":{"messageId":"SVC4006","text":"Failed to parse message body: %1","variables":["not valid JSON"]}}})");
  // Chunked upload: no Content-Length.
  auto chunked = c->Post(
      path.c_str(),
      [&](std::size_t, httplib::DataSink& sink) {
        const std::string b = body(claims());
        sink.write(b.data(), b.size());
        sink.done();
        return true;
      },
      "application/json");
  expect_error(
      chunked, 411,
      R"({"requestError":{"serviceException":{"messageId":"SVC4007","text":"Missing Content-Length header"}}})");
  auto get = c->Get(path.c_str());
  expect_error(
      get, 405,
      R"({"requestError":{"policyException":{"messageId":"POL4050","text":"Method not allowed: '%1'","variables":["GET"]}}})");
  EXPECT_EQ(get->get_header_value("Allow"), "POST");
  expect_error(
      c->Post(path.c_str(), std::string(17 * 1024, ' '), "application/json"), 413,
      R"({"requestError":{"serviceException":{"messageId":"SVC4006","text":"Failed to parse message body: %1","variables":["body larger than 16384 bytes"]}}})");
  // After all of that the connection and the service still sign.
  auto ok = post(claims());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// Found by fuzz/sign_request_fuzz (corpus/sign_request_fuzz/accept-not-utf8):
// an error body echoing bytes that are not UTF-8 threw, and a throw from
// the not-found handler ended the whole process. They are answered with
// U+FFFD in their place, and the server keeps signing.
TEST_F(SigningServerTest, BytesThatAreNotUtf8InAnErrorAreReplacedNotFatal) {
  start_server();
  auto c = sbc();
  expect_error(
      c->Post("/stir/v1/signing", {{"Accept", "text/\xff"}}, body(claims()), "application/json"),
      406,
      R"({"requestError":{"serviceException":{"messageId":"SVC4002","text":"Requested response body type '%1' is not supported","variables":["text/)"
      "\xEF\xBF\xBD"
      R"("]}}})");
  // The target is echoed as it came, percent-encoding and all: the server
  // decodes nothing it does not route.
  expect_error(
      c->Get("/stir/v1/%FF"), 404,
      R"({"requestError":{"serviceException":{"messageId":"SVC4003","text":"Resource '%1' not found","variables":["/stir/v1/%FF"]}}})");
  auto ok = c->Post("/stir/v1/signing", body(claims()), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(SigningServerTest, OrigidIsMandatoryWhenTheProfileHasNone) {
  config.profiles[0].origid.clear();
  start_server();
  json request = claims();
  request.erase("origid");
  expect_error(
      sbc()->Post("/stir/v1/signing", body(request), "application/json"), 400,
      R"({"requestError":{"serviceException":{"messageId":"SVC4001","text":"Missing mandatory parameter '%1'","variables":["origid"]}}})");
}

TEST_F(SigningServerTest, NoClientCertificateIsRefusedAtTls) {
  start_server();
  auto result = client()->Post("/stir/v1/signing", body(claims()), "application/json");
  EXPECT_FALSE(result && result->status == 200);
  if (result)
    ADD_FAILURE() << "got an HTTP response without a client certificate: " << result->status;
}

TEST_F(SigningServerTest, CertificateFromAnotherCaIsRefusedAtTls) {
  start_server();
  auto foreign = stir::testing::make_tls_pki("sbc1.example.net");  // same name, other CA
  write_tls_client(dir.path(), "foreign", foreign.client);
  auto result = client(dir.path() + "/tls/foreign")
                    ->Post("/stir/v1/signing", body(claims()), "application/json");
  EXPECT_FALSE(result) << "status " << (result ? result->status : 0);
}

TEST_F(SigningServerTest, AllowedCaButUnlistedIdentityIsForbidden) {
  start_server();
  stir::testing::CertSpec spec;
  spec.common_name = "intruder.example.net";
  spec.dns_names = {"intruder.example.net"};
  spec.tls_client = true;
  write_tls_client(dir.path(), "intruder", stir::testing::issue(spec, &tls.client_ca));
  expect_error(
      client(dir.path() + "/tls/intruder")
          ->Post("/stir/v1/signing", body(claims()), "application/json"),
      403,
      R"({"requestError":{"policyException":{"messageId":"POL4003","text":"Not permitted: %1","variables":["client 'intruder.example.net' has no signing profile"]}}})");
}

TEST_F(SigningServerTest, AttestationOutsideTheProfileIsForbidden) {
  start_server();
  json request = claims();
  request["attest"] = "C";
  expect_error(
      sbc()->Post("/stir/v1/signing", body(request), "application/json"), 403,
      R"({"requestError":{"policyException":{"messageId":"POL4003","text":"Not permitted: %1","variables":["attestation level 'C' is not permitted for profile 'subscribers-a'"]}}})");
}

TEST_F(SigningServerTest, ProfileFollowsTheClientIdentity) {
  SigningProfile b;
  b.name = "wholesale-b";
  b.key_label = "key-b";
  b.x5u = "https://cr.example.net/sks-b.pem";
  b.origid = "11111111-2222-4333-8444-555555555555";
  b.attest = {"C"};
  b.clients = {"trunk-b.example.net"};
  config.profiles.push_back(b);
  start_server();
  stir::testing::CertSpec spec;
  spec.common_name = "trunk-b.example.net";
  spec.tls_client = true;
  write_tls_client(dir.path(), "trunk-b", stir::testing::issue(spec, &tls.client_ca));
  json request = claims();
  request["attest"] = "C";
  request.erase("origid");
  auto result = client(dir.path() + "/tls/trunk-b")
                    ->Post("/stir/v1/signing", body(request), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const auto verified = verify_identity(result->body, "key-b");
  ASSERT_TRUE(verified.valid) << verified.detail;
  EXPECT_EQ(verified.passport->header.x5u, "https://cr.example.net/sks-b.pem");
  EXPECT_EQ(verified.passport->claims.origid, b.origid);
  EXPECT_FALSE(verify_identity(result->body, "key-a").valid);
}

TEST_F(SigningServerTest, ThousandRequestsOverSixteenKeepAliveConnectionsAllVerify) {
  start_server();
  constexpr int kConnections = 16;
  constexpr int kPerConnection = 1000 / kConnections + 1;
  std::vector<std::vector<std::string>> bodies(kConnections);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kConnections; ++t) {
    threads.emplace_back([&, t] {
      auto c = sbc();
      for (int i = 0; i < kPerConnection; ++i) {
        auto result = c->Post("/stir/v1/signing", body(claims()), "application/json");
        if (!result || result->status != 200) {
          failures.fetch_add(1);
          continue;
        }
        bodies[t].push_back(result->body);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  int verified = 0;
  for (const auto& per_connection : bodies) {
    for (const auto& b : per_connection) verified += verify_identity(b, "key-a").valid ? 1 : 0;
  }
  EXPECT_EQ(verified, kConnections * kPerConnection);
  // Keep-alive held: far fewer TLS handshakes than requests would show as
  // the same count of requests; metrics count every request.
  const auto metrics = server->metrics().render();
  EXPECT_NE(metrics.find("sks_requests_total{route=\"signing\",code=\"200\",outcome=\"ok\"} " +
                         std::to_string(kConnections * kPerConnection)),
            std::string::npos)
      << metrics;
}

TEST_F(SigningServerTest, HealthReadinessAndMetrics) {
  start_server();
  auto c = sbc();
  auto health = c->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = c->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  EXPECT_EQ(json::parse(ready->body)["ready"], true);
  ASSERT_TRUE(c->Post("/stir/v1/signing", body(claims()), "application/json"));
  auto metrics = c->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* needle :
       {"sks_requests_total{route=\"signing\",code=\"200\",outcome=\"ok\"} 1",
        "sks_requests_total{route=\"healthz\",code=\"200\",outcome=\"ok\"} 1",
        "sks_sign_duration_seconds_count 1", "sks_session_wait_seconds_bucket{le=\"+Inf\"}",
        "# TYPE sks_pkcs11_errors_total counter"}) {
    EXPECT_NE(metrics->body.find(needle), std::string::npos) << needle << "\n" << metrics->body;
  }
}

TEST_F(SigningServerTest, ReloadSwapsKeyAndX5uTogether) {
  start_server();
  auto c = sbc();
  auto before = c->Post("/stir/v1/signing", body(claims()), "application/json");
  ASSERT_TRUE(before);
  ASSERT_TRUE(verify_identity(before->body, "key-a").valid);
  Config next = config;
  next.profiles[0].key_label = "key-b";
  next.profiles[0].x5u = "https://cr.example.net/sks-b.pem";
  server->reload(next);
  auto after = c->Post("/stir/v1/signing", body(claims()), "application/json");
  ASSERT_TRUE(after);
  const auto verified = verify_identity(after->body, "key-b");
  ASSERT_TRUE(verified.valid) << verified.detail;
  EXPECT_EQ(verified.passport->header.x5u, "https://cr.example.net/sks-b.pem");
  // A reload naming a key the token lacks fails and keeps the current ring.
  Config broken = config;
  broken.profiles[0].key_label = "no-such-key";
  EXPECT_THROW(server->reload(broken), stir::Error);
  auto still = c->Post("/stir/v1/signing", body(claims()), "application/json");
  ASSERT_TRUE(still);
  EXPECT_TRUE(verify_identity(still->body, "key-b").valid);
}

TEST_F(SigningServerTest, FullSigningQueueAnswers503Pol5003WithRetryAfter) {
  config.server.signing_queue_depth = 0;  // one signing worker per token session, no queue
  start_server();
  // Every token session is taken, so each signing worker waits in C_Sign's
  // session checkout: the pool is full without a timing assumption.
  std::vector<p11::SessionPool::Lease> held;
  const std::size_t sessions = pool->size();
  for (std::size_t i = 0; i < sessions; ++i) held.push_back(pool->acquire());
  std::vector<std::future<httplib::Result>> waiting;
  for (std::size_t i = 0; i < sessions; ++i) {
    waiting.push_back(std::async(std::launch::async, [this] {
      return sbc()->Post("/stir/v1/signing", body(claims()), "application/json");
    }));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server->connection_stats().workers_busy < sessions &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(server->connection_stats().workers_busy, sessions);
  auto refused = sbc()->Post("/stir/v1/signing", body(claims()), "application/json");
  expect_error(
      refused, 503,
      R"({"requestError":{"policyException":{"messageId":"POL5003","text":"Service temporarily unavailable, please try again later"}}})");
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  // /healthz is answered on an I/O thread meanwhile; /readyz has a thread
  // of its own: it waits for a session (held here), never for the full
  // signing queue, so it is not refused.
  auto health = sbc()->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = std::async(std::launch::async, [this] { return sbc()->Get("/readyz"); });
  held.clear();
  const auto readiness = ready.get();
  ASSERT_TRUE(readiness);
  EXPECT_EQ(readiness->status, 200) << readiness->body;
  for (auto& request : waiting) {
    auto result = request.get();
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200) << result->body;
  }
  EXPECT_NE(server->metrics().render().find("sks_requests_total{route=\"busy\",code=\"503\","
                                            "outcome=\"POL5003\"} 1"),
            std::string::npos);
}

TEST_F(SigningServerTest, KeepAliveSignsOverOneAcceptedConnection) {
  start_server();
  auto c = sbc();
  for (int i = 0; i < 20; ++i) {
    auto result = c->Post("/stir/v1/signing", body(claims()), "application/json");
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200);
  }
  EXPECT_EQ(server->connection_stats().accepted_connections, 1u);
  auto metrics = c->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sks_connections_accepted_total 1\n"), std::string::npos)
      << metrics->body;
}

// ATIS-1000082 over mutual TLS: 500 new connections at once, none refused
// (the listen queue holds them), every one signs.
TEST_F(SigningServerTest, BurstOfFiveHundredNewTlsConnectionsAllSign) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  // 500 SBCs, all on 127.0.0.1 here, each sending its ClientHello only
  // when a client thread gets to it: no per-address cap, and the first
  // byte may take as long as the handshake. Each client thread takes its 20
  // connections in turn, so the last waits for 19 handshakes and signatures
  // before its own: a minute, not the default 5 s, so a loaded machine does
  // not time out what this test does not measure.
  config.server.max_handshakes_per_address = 0;
  config.server.handshake_timeout_ms = 60000;
  config.server.first_byte_timeout_ms = config.server.handshake_timeout_ms;
  start_server();
  const std::string request_body = body(claims());
  const std::string request =
      "POST /stir/v1/signing HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(request_body.size()) + "\r\nConnection: close\r\n\r\n" + request_body;
  const std::string d = dir.path();
  const auto burst = stir::testing::tls_burst(port, 500, d + "/tls/server-ca.pem", request,
                                              d + "/tls/client.pem", d + "/tls/client.key");
  EXPECT_EQ(burst.refused, 0);
  EXPECT_EQ(burst.served, 500);
}

TEST_F(SigningServerTest, ThousandIdleConnectionsDoNotDelayASignature) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  config.server.handshake_timeout_ms = 500;
  start_server();
  const auto idle = stir::testing::open_idle_connections(port, 1000);
  ASSERT_EQ(idle.size(), 1000u) << "an idle connection was refused";
  auto result = sbc()->Post("/stir/v1/signing", body(claims()), "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(stir::testing::count_closed_by_peer(
                idle, std::chrono::steady_clock::now() + std::chrono::seconds(60)),
            1000);
}

TEST_F(SigningServerTest, ConnectionsOverTheCapAreClosedAtOnceAndCounted) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  config.server.max_connections = 10;
  // The hard cap alone: no pending connection is evicted for a newer one.
  config.server.reserved_connection_percent = 0;
  config.server.max_handshakes_per_address = 0;
  config.server.first_byte_timeout_ms = config.server.handshake_timeout_ms;
  start_server();
  std::vector<int> idle;
  for (int i = 0; i < 30; ++i) idle.push_back(stir::testing::connect_loopback(port));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server->connection_stats().rejected_connections < 20 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(server->connection_stats().rejected_connections, 20u);
  for (int fd : idle) ::close(fd);
}

// The verification route's body rules, each with its exact ATIS body from
// the one error table.
TEST(VerificationApi, EveryBodyProblemIsARequestErrorOfTheTable) {
  auto body_of = [](std::string_view text) {
    try {
      (void)server::parse_verification_body(text);
    } catch (const stir::Error& e) {
      const server::ApiAnswer answer = server::api_answer(e);
      return std::to_string(answer.status) + " " + answer.body;
    }
    return std::string("no error");
  };
  EXPECT_EQ(
      body_of(""),
      R"(400 {"requestError":{"serviceException":{"messageId":"SVC4000","text":"Missing request body"}}})");
  EXPECT_EQ(
      body_of("{"),
      R"(400 {"requestError":{"serviceException":{"messageId":"SVC4006","text":"Failed to parse message body: %1","variables":["not valid JSON"]}}})");
  EXPECT_EQ(
      body_of(R"({"verificationRequest":{"from":{"tn":"1"},"to":{"tn":["2"]}}})"),
      R"(400 {"requestError":{"serviceException":{"messageId":"SVC4001","text":"Missing mandatory parameter '%1'","variables":["identity"]}}})");
  EXPECT_EQ(
      body_of(
          R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":["2"]},"time":"now"}})"),
      R"(400 {"requestError":{"serviceException":{"messageId":"SVC4005","text":"Invalid '%1' parameter value: %2","variables":["time","not an integer"]}}})");
  const auto ok = server::parse_verification_body(
      R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":"2"}}})");
  EXPECT_EQ(ok.to_tns, std::vector<std::string>{"2"});
}

}  // namespace
}  // namespace sks::testing
