// `sks serve` as an operator runs it: the real binary with a config file,
// its "listening on" line, SIGTERM draining a request that is still being
// sent before exiting 0, and SIGHUP swapping the key ring without restart.
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

  std::unique_ptr<httplib::SSLClient> client(int port) {
    const std::string d = dir.path() + "/tls/";
    auto c =
        std::make_unique<httplib::SSLClient>("127.0.0.1", port, d + "client.pem", d + "client.key");
    c->set_ca_cert_path((d + "server-ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(20);
    return c;
  }

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
