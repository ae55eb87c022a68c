// Issue 17 (items 1, 4, 6, 7) against `sks serve` in process: a real
// SoftHSM token, real HTTPS with mutual TLS on 127.0.0.1:0. A spoofed CN
// (NUL, newline) gets nothing; the name that matched the profile is the one
// logged and rate limited; an idle-socket flood does not keep an SBC from
// signing; endless chunk framing and smuggled requests are refused.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "hostile_peers.h"
#include "raw_clients.h"
#include "signing_server_setup.h"
#include "sks/server/server.h"
#include "softhsm_token.h"
#include "test_pki.h"

namespace sks::testing {
namespace {

using nlohmann::json;
using std::chrono::steady_clock;
using stir::testing::HostileTlsClient;
using stir::testing::status_of;

template <typename Condition>
bool eventually(Condition condition) {
  const auto deadline = steady_clock::now() + std::chrono::seconds(30);
  while (steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

class HostilePeerServerTest : public SoftHsmTest {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    SoftHsmTest::SetUp();
    keys->generate("key-a");
    tls = stir::testing::make_tls_pki("sbc1.example.net");
    write_server_tls(dir.path(), tls);
    configure_signing_server(config, dir.path(), {"sbc1.example.net"});
    config.server.admins = {"sbc1.example.net"};
    config.token.module = STIR_SOFTHSM_MODULE;
    config.token.label = kTokenLabel;
    config.server.io_threads = 2;
  }
  void TearDown() override {
    if (server) server->stop();
    if (thread.joinable()) thread.join();
    server.reset();
    SoftHsmTest::TearDown();
  }

  void issue_client(const std::string& file, const std::string& cn,
                    std::vector<std::string> dns = {}) const {
    stir::testing::CertSpec spec;
    spec.common_name = cn;
    spec.dns_names = std::move(dns);
    spec.tls_client = true;
    write_tls_client(dir.path(), file, stir::testing::issue(spec, &tls.client_ca));
  }
  std::string prefix(const std::string& name) const { return dir.path() + "/tls/" + name; }

  void start_server() {
    server = std::make_unique<server::ApiServer>(config, keys.get());
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }

  static std::string body() {
    return json{
        {"signingRequest",
         {{"attest", "A"}, {"dest", {{"tn", {"12155550131"}}}}, {"orig", {{"tn", "12155550121"}}}}}}
        .dump();
  }
  std::string signing_request() const {
    const std::string b = body();
    return "POST /stir/v1/signing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Accept: application/json\r\nConnection: close\r\nContent-Length: " +
           std::to_string(b.size()) + "\r\n\r\n" + b;
  }

  // `request` on a new connection as client `name`; the answer to the close.
  std::string exchange(const std::string& request, const std::string& name = "client") {
    HostileTlsClient c(port, prefix("server-ca.pem"), prefix(name + ".pem"), prefix(name + ".key"));
    if (!c.handshake() || !c.write(request)) return {};
    c.finish_sending();
    return c.read_to_end();
  }

  stir::testing::TlsPki tls;
  Config config;
  std::unique_ptr<server::ApiServer> server;
  std::thread thread;
  int port = 0;
};

// Item 4: `sbc1.example.net\0.attacker.net` and a CN with a newline are
// neither the SBC nor the admin: the handshake fails, nothing is signed.
TEST_F(HostilePeerServerTest, SpoofedClientNamesGetNothing) {
  issue_client("nul", std::string("sbc1.example.net\0.attacker.net", 30));
  issue_client("newline", "sbc1.example.net\nrequest_id=x client=ops");  // at most 64
  start_server();
  const std::string admin = "GET /admin/v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (const std::string name : {"nul", "newline"}) {
    EXPECT_EQ(exchange(signing_request(), name), "") << name;
    EXPECT_EQ(exchange(admin, name), "") << name;
  }
  EXPECT_EQ(status_of(exchange(signing_request())), 200);
  EXPECT_EQ(status_of(exchange(admin)), 200);
}

// Item 4: a profile matched by a DNS SAN: that name is the client in the
// access log and the key of its rate limit, whatever the CN says.
TEST_F(HostilePeerServerTest, NameThatMatchedTheProfileIsLoggedAndRateLimited) {
  issue_client("cn-a", "a.attacker.net", {"sbc1.example.net"});
  issue_client("cn-b", "b.attacker.net", {"sbc1.example.net"});
  config.rate_limit = {1, 1};  // 1/s, bursts of 1
  start_server();
  ::testing::internal::CaptureStderr();
  const std::string first = exchange(signing_request(), "cn-a");
  const std::string second = exchange(signing_request(), "cn-b");
  server->stop();
  thread.join();
  server.reset();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status_of(first), 200) << first;
  // Another CN, the same identity: the bucket is already empty.
  EXPECT_EQ(status_of(second), 429) << second;
  EXPECT_NE(second.find("client 'sbc1.example.net' is over its rate limit"), std::string::npos)
      << second;
  EXPECT_NE(log.find("client=sbc1.example.net profile=subscribers-a"), std::string::npos) << log;
  EXPECT_EQ(log.find("attacker"), std::string::npos) << log;
}

// Item 6: 160 idle sockets from eight addresses, more than max_connections,
// that would stay a minute: the SBC's signing request is still answered.
TEST_F(HostilePeerServerTest, IdleFloodDoesNotKeepAnAuthenticatedSbcFromSigning) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  config.server.max_connections = 64;
  config.server.max_handshakes_per_address = 8;
  config.server.first_byte_timeout_ms = 60000;
  config.server.handshake_timeout_ms = 60000;
  start_server();
  std::vector<int> idle;
  for (int i = 0; i < 160; ++i) {
    const int fd = stir::testing::connect_from(port, "127.0.0." + std::to_string(2 + i % 8));
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  ASSERT_TRUE(eventually([&] { return server->connection_stats().accepted_connections >= 160; }));
  const std::string answer = exchange(signing_request());
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_LE(server->connection_stats().pending_connections, 64u);
  EXPECT_GE(server->connection_stats().evicted_connections, 160u - 64u);
  for (int fd : idle) ::close(fd);
}

// Items 1 and 7 on the signing route: endless chunk extension, and a
// framing that would smuggle a second request, are 400 and close.
TEST_F(HostilePeerServerTest, EndlessChunkExtensionAndSmuggledRequestsAreRefused) {
  start_server();
  const std::size_t before = stir::testing::resident_bytes();
  {
    HostileTlsClient c(port, prefix("server-ca.pem"), prefix("client.pem"), prefix("client.key"));
    ASSERT_TRUE(c.handshake());
    const auto result = c.flood(
        "POST /stir/v1/signing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5;a=",
        std::string(16384, 'a'), std::size_t{16} << 20);
    EXPECT_EQ(status_of(result.answer), 400) << result.answer;
    EXPECT_LT(result.sent, std::size_t{16} << 20);
  }
  const std::size_t after = stir::testing::resident_bytes();
  std::printf("[ figures  ] sks serve RSS %zu KiB -> %zu KiB after an endless chunk extension\n",
              before / 1024, after / 1024);
  if (stir::testing::kRssMeasuresTheCode) {
    EXPECT_LT(after, before + (std::size_t{2} << 20));
  }
  const std::string smuggled = signing_request();
  const std::string answer = exchange(
      "POST /stir/v1/signing HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" +
      smuggled);
  EXPECT_EQ(status_of(answer), 400) << answer;
  EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << answer;
  EXPECT_NE(answer.find("SVC4006"), std::string::npos) << answer;
  // A GET with a body framing is refused the same way.
  EXPECT_EQ(status_of(exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                               "chunked\r\n\r\n0\r\n\r\n")),
            400);
}

}  // namespace
}  // namespace sks::testing
