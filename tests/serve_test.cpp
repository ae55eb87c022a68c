// `sks serve` as an operator runs it: the real binary with a config file,
// its "listening on" line, SIGTERM draining a request that is still being
// sent before exiting 0, and SIGHUP swapping the key ring without restart;
// /metrics on a listener of its own ([metrics]).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "process.h"
#include "test_files.h"
#include "test_pki.h"

namespace stir::testing {
namespace {

using nlohmann::json;

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto init = run({STIR_SKS_BINARY, "init", "--dir", dir.path() + "/dev"});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    config_path = init.out.substr(0, init.out.find('\n'));
    for (const char* label : {"key-a", "key-b"}) {
      const auto generate = sks({"keys", "generate", "--label", label});
      ASSERT_EQ(generate.exit_code, 0) << generate.describe();
    }
    tls = make_tls_pki("sbc1.example.net");
    write_tls_pki(tls, dir.path() + "/tls/");
    base_config = read_file(config_path);
    write_profile("key-a", "https://cr.example.net/a.pem");
  }

  void write_profile(const std::string& key, const std::string& x5u) {
    const std::string d = dir.path() + "/tls/";
    write_file(config_path, base_config + "\n[server]\nlisten = \"127.0.0.1\"\nport = 0\n" +
                                "tls_cert = \"" + d + "server.pem\"\ntls_key = \"" + d +
                                "server.key\"\nclient_ca = \"" + d + "clients-ca.pem\"\n" +
                                "\n[[profile]]\nname = \"subscribers\"\nkey = \"" + key +
                                "\"\nx5u = \"" + x5u +
                                "\"\norigid = \"de305d54-75b4-431b-adb2-eb6b9e546014\"\n"
                                "clients = [\"sbc1.example.net\"]\n");
  }

  ProcessResult sks(std::vector<std::string> args) {
    args.insert(args.begin(), STIR_SKS_BINARY);
    args.push_back("--config");
    args.push_back(config_path);
    return run(args);
  }

  // Starts `sks serve` and returns the port from its "listening on" line.
  int start() {
    server = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_SKS_BINARY, "serve", "--config", config_path},
        dir.path() + "/serve.log");
    const auto line = server->read_line(20000);
    EXPECT_TRUE(line) << "no 'listening on' line; log:\n" << read_file(dir.path() + "/serve.log");
    if (!line) return 0;
    std::smatch match;
    const std::regex pattern(R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/signing$)");
    EXPECT_TRUE(std::regex_match(*line, match, pattern)) << *line;
    return match.empty() ? 0 : std::stoi(match[1]);
  }

  // After start() with [metrics]: the port of its "metrics on" line.
  int metrics_port(const std::string& scheme) {
    const auto line = server->read_line(20000);
    EXPECT_TRUE(line) << "no 'metrics on' line; log:\n" << read_file(dir.path() + "/serve.log");
    if (!line) return 0;
    std::smatch match;
    const std::regex pattern("^metrics on " + scheme + R"(://127\.0\.0\.1:(\d+)/metrics$)");
    EXPECT_TRUE(std::regex_match(*line, match, pattern)) << *line;
    return match.empty() ? 0 : std::stoi(match[1]);
  }

  // The config of write_profile() with `metrics` (a [metrics] table) added.
  void write_metrics(const std::string& metrics) {
    write_profile("key-a", "https://cr.example.net/a.pem");
    write_file(config_path, read_file(config_path) + "\n[metrics]\n" + metrics);
  }

  // A client of its own CA (the ops CA of the metrics listener, say).
  std::unique_ptr<httplib::SSLClient> client_of(int port, const std::string& name) {
    const std::string d = dir.path() + "/tls/";
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port, d + name + ".pem",
                                                  d + name + ".key");
    c->set_ca_cert_path((d + "server-ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(20);
    return c;
  }

  std::unique_ptr<httplib::SSLClient> client(int port) {
    const std::string d = dir.path() + "/tls/";
    auto c =
        std::make_unique<httplib::SSLClient>("127.0.0.1", port, d + "client.pem", d + "client.key");
    c->set_ca_cert_path((d + "server-ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(20);
    return c;
  }

  static constexpr const char* kMetrics404 =
      R"({"requestError":{"serviceException":{"messageId":"SVC4003","text":"Resource '%1' not found","variables":["/metrics"]}}})";

  static std::string request_body() {
    return json{
        {"signingRequest",
         {{"attest", "A"}, {"dest", {{"tn", {"12155550131"}}}}, {"orig", {{"tn", "12155550121"}}}}}}
        .dump();
  }

  static std::string x5u_of(const std::string& response_body) {
    const auto identity =
        json::parse(response_body)["signingResponse"]["identity"].get<std::string>();
    const auto start = identity.find(";info=<") + 7;
    return identity.substr(start, identity.find('>', start) - start);
  }

  TempDir dir;
  TlsPki tls;
  std::string config_path;
  std::string base_config;
  std::unique_ptr<BackgroundProcess> server;
};

TEST_F(ServeTest, ConfigChecksAndServesTokensThatSecsipidxAccepts) {
  const auto check = sks({"check-config"});
  ASSERT_EQ(check.exit_code, 0) << check.describe();
  const int port = start();
  ASSERT_GT(port, 0);
  auto result = client(port)->Post("/stir/v1/signing", request_body(), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const auto identity = json::parse(result->body)["signingResponse"]["identity"].get<std::string>();
  const auto pub = sks({"keys", "public", "--label", "key-a"});
  ASSERT_EQ(pub.exit_code, 0);
  write_file(dir.path() + "/key-a.pub", pub.out);
  const auto peer = run({"secsipidx", "-c", "-fpubkey", dir.path() + "/key-a.pub", "-identity",
                         identity, "-expire", "60"});
  EXPECT_EQ(peer.exit_code, 0) << peer.describe();
  // The access log names the request, client and profile, and never the token.
  server->signal(SIGTERM);
  ASSERT_EQ(server->wait(20000), 0);
  const auto log = read_file(dir.path() + "/serve.log");
  EXPECT_NE(log.find("client=sbc1.example.net profile=subscribers method=POST route=signing "
                     "status=200 outcome=ok"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find(identity.substr(0, 40)), std::string::npos);
  EXPECT_EQ(log.find(read_file(dir.path() + "/dev/user.pin").substr(0, 16)), std::string::npos);
}

TEST_F(ServeTest, SigtermDrainsARequestInFlightThenExitsZero) {
  ::signal(SIGPIPE, SIG_IGN);  // a failure must show as an error, not kill the test
  const int port = start();
  ASSERT_GT(port, 0);
  const std::string body = request_body();
  std::promise<void> half_sent;
  std::promise<void> may_finish;
  auto finish = may_finish.get_future().share();
  auto in_flight = std::async(std::launch::async, [&] {
    return client(port)->Post(
        "/stir/v1/signing", body.size(),
        [&](std::size_t offset, std::size_t, httplib::DataSink& sink) {
          if (offset == 0) {
            sink.write(body.data(), body.size() / 2);
            half_sent.set_value();
            finish.wait();
            return true;
          }
          sink.write(body.data() + offset, body.size() - offset);
          return true;
        },
        "application/json");
  });
  half_sent.get_future().wait();
  server->signal(SIGTERM);
  // Wait until the server has stopped accepting new connections.
  bool refused = false;
  for (int attempt = 0; attempt < 2000 && !refused; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    refused = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0;
    ::close(fd);
    if (!refused) ::poll(nullptr, 0, 5);
  }
  EXPECT_TRUE(refused) << "the server kept accepting after SIGTERM";
  may_finish.set_value();
  const auto result = in_flight.get();
  ASSERT_TRUE(result) << httplib::to_string(result.error()) << "\n"
                      << read_file(dir.path() + "/serve.log");
  EXPECT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(server->wait(20000), 0);
}

TEST_F(ServeTest, SighupSwapsTheKeyRingWithoutRestart) {
  const int port = start();
  ASSERT_GT(port, 0);
  auto c = client(port);
  auto before = c->Post("/stir/v1/signing", request_body(), "application/json");
  ASSERT_TRUE(before);
  EXPECT_EQ(x5u_of(before->body), "https://cr.example.net/a.pem");
  write_profile("key-b", "https://cr.example.net/b.pem");
  server->signal(SIGHUP);
  std::string x5u;
  for (int attempt = 0; attempt < 400 && x5u != "https://cr.example.net/b.pem"; ++attempt) {
    auto result = c->Post("/stir/v1/signing", request_body(), "application/json");
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << result->body;
    x5u = x5u_of(result->body);
    if (x5u != "https://cr.example.net/b.pem") ::poll(nullptr, 0, 10);
  }
  EXPECT_EQ(x5u, "https://cr.example.net/b.pem");
  const auto metrics = c->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sks_keyring_reloads_total{result=\"ok\"} 1"), std::string::npos);
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(20000), 0);
}

// A config that no longer parses: the reload fails before the key ring is
// touched; it is counted (the SksReloadFailed alert reads it) and the old
// ring keeps signing.
TEST_F(ServeTest, SighupWithABrokenConfigCountsAFailedReloadAndKeepsSigning) {
  const int port = start();
  ASSERT_GT(port, 0);
  auto c = client(port);
  write_file(config_path, read_file(config_path) + "\nthis is = not toml [\n");
  server->signal(SIGHUP);
  std::string body;
  for (int attempt = 0; attempt < 400; ++attempt) {
    const auto metrics = c->Get("/metrics");
    ASSERT_TRUE(metrics);
    body = metrics->body;
    if (body.find("sks_keyring_reloads_total{result=\"failed\"} 1\n") != std::string::npos) break;
    ::poll(nullptr, 0, 10);
  }
  EXPECT_NE(body.find("sks_keyring_reloads_total{result=\"failed\"} 1\n"), std::string::npos)
      << body;
  EXPECT_NE(body.find("sks_keyring_reloads_total{result=\"ok\"} 0\n"), std::string::npos);
  const auto after = c->Post("/stir/v1/signing", request_body(), "application/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
  EXPECT_EQ(x5u_of(after->body), "https://cr.example.net/a.pem");
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(20000), 0);
  EXPECT_NE(
      read_file(dir.path() + "/serve.log").find("reload failed, keeping the current key ring"),
      std::string::npos);
}

TEST_F(ServeTest, MissingTlsSettingsAreAConfigErrorBeforeAnythingStarts) {
  write_file(config_path, base_config +
                              "\n[server]\nport = 0\n[[profile]]\nname = \"p\"\n"
                              "key = \"key-a\"\nx5u = \"https://a/b.pem\"\n");
  const auto result = sks({"serve"});
  EXPECT_EQ(result.exit_code, 78) << result.describe();
  EXPECT_NE(result.err.find("server.tls_cert and server.tls_key are required"), std::string::npos);
}

// Start-up refusals: exit 77 with the exact reason, before anything listens.
TEST_F(ServeTest, PinFileReadableByGroupStopsServeWithExit77BeforeListening) {
  const std::string pin = dir.path() + "/dev/user.pin";
  std::filesystem::permissions(pin, std::filesystem::perms(0640));
  const auto result = sks({"serve"});
  EXPECT_EQ(result.exit_code, 77) << result.describe();
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("PIN file " + pin +
                            " has mode 0640; it must be readable by its owner only (chmod 600)"),
            std::string::npos)
      << result.err;
}

TEST_F(ServeTest, WrongPinStopsServeWithExit77AndNamesCkrPinIncorrect) {
  const std::string pin_file = dir.path() + "/dev/user.pin";
  const std::string pin = read_file(pin_file).substr(0, 16);
  write_file(pin_file, "wrong-pin-0000\n", 0600);
  const auto result = sks({"serve"});
  EXPECT_EQ(result.exit_code, 77) << result.describe();
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("CKR_PIN_INCORRECT"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("wrong-pin-0000"), std::string::npos);
  EXPECT_EQ(result.err.find(pin), std::string::npos);
}

TEST_F(ServeTest, TlsKeyOfAnotherOwnerStopsServeWithExit77BeforeListening) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's owner needs root";
  const std::string key = dir.path() + "/tls/server.key";
  ASSERT_EQ(::chown(key.c_str(), 65534, 65534), 0);
  const auto result = sks({"serve"});
  EXPECT_EQ(result.exit_code, 77) << result.describe();
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("TLS key " + key +
                            " is owned by uid 65534; it must be owned by the user sks runs as "
                            "(uid 0) or root"),
            std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace stir::testing

namespace stir::testing {
namespace {

// ---- [metrics]: /metrics on a listener of its own ----------------------------

// Plain HTTP on loopback: the metrics listener answers with the server's
// metrics (the signing request just made is counted there), and the SBCs'
// port answers /metrics 404 like any unknown path.
TEST_F(ServeTest, MetricsListenerOnLoopbackServesTheMetricsAndTheSigningPort404s) {
  write_metrics("listen = \"127.0.0.1\"\nport = 0\n");
  const auto check = sks({"check-config"});
  ASSERT_EQ(check.exit_code, 0) << check.describe();
  const int port = start();
  ASSERT_GT(port, 0);
  const int metrics = metrics_port("http");
  ASSERT_GT(metrics, 0);
  auto c = client(port);
  const auto signed_ok = c->Post("/stir/v1/signing", request_body(), "application/json");
  ASSERT_TRUE(signed_ok);
  ASSERT_EQ(signed_ok->status, 200) << signed_ok->body;
  const auto on_signing_port = c->Get("/metrics");
  ASSERT_TRUE(on_signing_port);
  EXPECT_EQ(on_signing_port->status, 404);
  EXPECT_EQ(on_signing_port->body, kMetrics404);

  httplib::Client scraper("127.0.0.1", metrics);
  // The access log counts a request after its response is written: poll.
  const std::string counted =
      "sks_requests_total{route=\"signing\",code=\"200\",outcome=\"ok\"} 1\n";
  auto scraped = scraper.Get("/metrics");
  for (int attempt = 0; attempt < 400; ++attempt) {
    ASSERT_TRUE(scraped);
    ASSERT_EQ(scraped->status, 200) << scraped->body;
    if (scraped->body.find(counted) != std::string::npos) break;
    ::poll(nullptr, 0, 10);
    scraped = scraper.Get("/metrics");
  }
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_NE(scraped->body.find(counted), std::string::npos) << scraped->body;
  EXPECT_NE(scraped->body.find("sks_profile_active_key{profile=\"subscribers\",key=\"key-a\""),
            std::string::npos);
  // Nothing else is served there.
  const auto other = scraper.Get("/readyz");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(20000), 0);
  // Both listeners are closed once it exited.
  EXPECT_FALSE(httplib::Client("127.0.0.1", metrics).Get("/metrics"));
}

// Mutual TLS with the listener's own CA and allow-list: a listed identity
// reads the metrics, another of that CA gets 403 POL4003 naming
// metrics.clients, an SBC (another CA) cannot even connect.
TEST_F(ServeTest, MetricsListenerWithMutualTlsServesOnlyItsAllowList) {
  CertSpec ca_spec;
  ca_spec.common_name = "ops CA";
  ca_spec.ca = true;
  const auto ops_ca = issue(ca_spec, nullptr);
  for (const std::string name : {"prom", "grafana"}) {
    CertSpec spec;
    spec.common_name = name + ".example.net";
    spec.dns_names = {spec.common_name};
    spec.tls_client = true;
    const auto client_cert = issue(spec, &ops_ca);
    write_file(dir.path() + "/tls/" + name + ".pem", client_cert.certificate_pem());
    write_file(dir.path() + "/tls/" + name + ".key", client_cert.private_key_pem());
  }
  write_file(dir.path() + "/tls/ops-ca.pem", ops_ca.certificate_pem());
  const std::string d = dir.path() + "/tls/";
  write_metrics("listen = \"127.0.0.1\"\nport = 0\ntls_cert = \"" + d +
                "server.pem\"\ntls_key = \"" + d + "server.key\"\nclient_ca = \"" + d +
                "ops-ca.pem\"\nclients = [\"prom.example.net\"]\n");
  const int port = start();
  ASSERT_GT(port, 0);
  const int metrics = metrics_port("https");
  ASSERT_GT(metrics, 0);

  const auto scraped = client_of(metrics, "prom")->Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200) << scraped->body;
  EXPECT_NE(scraped->body.find("sks_requests_total"), std::string::npos);
  const auto refused = client_of(metrics, "grafana")->Get("/metrics");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  EXPECT_EQ(
      refused->body,
      R"({"requestError":{"policyException":{"messageId":"POL4003","text":"Not permitted: %1","variables":["this client identity is not in metrics.clients"]}}})");
  EXPECT_FALSE(client(metrics)->Get("/metrics"));  // the SBCs' CA is not this listener's
  // The SBC port: 404, for Prometheus's identity too (it cannot connect there).
  const auto on_signing_port = client(port)->Get("/metrics");
  ASSERT_TRUE(on_signing_port);
  EXPECT_EQ(on_signing_port->status, 404);
  EXPECT_EQ(on_signing_port->body, kMetrics404);
  EXPECT_FALSE(client_of(port, "prom")->Get("/metrics"));
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(20000), 0);
}

// Refused [metrics] tables: exit 78 naming the key, before anything listens.
TEST_F(ServeTest, MetricsListenerConfigErrorsExit78BeforeAnythingListens) {
  const std::string d = dir.path() + "/tls/";
  const std::pair<std::string, std::string> cases[] = {
      {"listen = \"0.0.0.0\"\nport = 0\n",
       "metrics.listen = \"0.0.0.0\" is not a loopback address: plain HTTP is served on loopback "
       "only; give metrics.tls_cert, metrics.tls_key and metrics.client_ca (mutual TLS) and "
       "metrics.clients"},
      {"listen = \"127.0.0.1\"\nport = 0\ntls_cert = \"" + d + "server.pem\"\ntls_key = \"" + d +
           "server.key\"\n",
       "metrics.tls_cert, metrics.tls_key and metrics.client_ca go together (mutual TLS), or "
       "none of them (plain HTTP, on a loopback address only)"},
      {"port = 0\nclients = [\"prom.example.net\"]\n",
       "metrics.clients needs mutual TLS (metrics.tls_cert, metrics.tls_key and "
       "metrics.client_ca): plain HTTP has no client identities"},
      {"port = 0\nlab_plain_http = true\n", "unknown key 'lab_plain_http' in [metrics]"},
  };
  for (const auto& [table, message] : cases) {
    write_metrics(table);
    for (const char* command : {"serve", "check-config"}) {
      const auto result = sks({command});
      EXPECT_EQ(result.exit_code, 78) << command << ": " << result.describe();
      EXPECT_EQ(result.out, "") << command;
      EXPECT_NE(result.err.find(message), std::string::npos) << command << ": " << result.err;
    }
  }
  // server.metrics_clients is for the signing port's /metrics only.
  write_profile("key-a", "https://cr.example.net/a.pem");
  std::string text = read_file(config_path);
  text.insert(text.find("\n[[profile]]"), "\nmetrics_clients = [\"prom.example.net\"]\n");
  write_file(config_path, text + "\n[metrics]\nport = 0\n");
  const auto both = sks({"check-config"});
  EXPECT_EQ(both.exit_code, 78) << both.describe();
  EXPECT_NE(both.err.find("server.metrics_clients is for /metrics on the signing port; with "
                          "[metrics] /metrics is on its own listener: list the identities in "
                          "metrics.clients"),
            std::string::npos)
      << both.err;
}

// A reload never touches the listeners: a refused [metrics] fails the
// reload (counted) and changes nothing; a valid new one is reported to take
// effect at the next restart, and the running listener keeps answering.
TEST_F(ServeTest, SighupKeepsTheMetricsListenerAndARefusedMetricsTableChangesNothing) {
  write_metrics("listen = \"127.0.0.1\"\nport = 0\n");
  const int port = start();
  ASSERT_GT(port, 0);
  const int metrics = metrics_port("http");
  ASSERT_GT(metrics, 0);
  httplib::Client scraper("127.0.0.1", metrics);
  auto wait_for = [&](const std::string& needle) {
    std::string body;
    for (int attempt = 0; attempt < 400; ++attempt) {
      const auto scraped = scraper.Get("/metrics");
      if (scraped && scraped->status == 200) body = scraped->body;
      if (body.find(needle) != std::string::npos) return true;
      ::poll(nullptr, 0, 10);
    }
    ADD_FAILURE() << "no " << needle << " in\n" << body;
    return false;
  };
  write_metrics("listen = \"0.0.0.0\"\nport = 0\n");
  server->signal(SIGHUP);
  ASSERT_TRUE(wait_for("sks_keyring_reloads_total{result=\"failed\"} 1\n"));
  const auto after = client(port)->Post("/stir/v1/signing", request_body(), "application/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
  EXPECT_EQ(client(port)->Get("/metrics")->status, 404);  // still on its own listener only

  write_metrics("listen = \"127.0.0.1\"\nport = 1\n");
  server->signal(SIGHUP);
  ASSERT_TRUE(wait_for("sks_keyring_reloads_total{result=\"ok\"} 1\n"));
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(20000), 0);
  const auto log = read_file(dir.path() + "/serve.log");
  EXPECT_NE(log.find("metrics.listen = \"0.0.0.0\" is not a loopback address"), std::string::npos)
      << log;
  EXPECT_NE(log.find("[metrics] differs from the running listener's: it takes effect at the "
                     "next restart"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace stir::testing
