// Hostile peers against `sks serve` (issue 17, items 2, 3 and 8), each an
// attack on a running server over real HTTPS with mutual TLS on 127.0.0.1:
//  - bodies that used to crash the process (deep nesting with the audit
//    log on) are refused before they become a tree, and the server lives;
//  - a hostile x5u host (tarpits that accept and never answer) cannot make
//    a verification whose certificate is cached wait, and costs one timeout
//    per failure_cache_s, not one per URL;
//  - the signer refuses what the network would refuse: more dest TNs than
//    fit an Identity header, repeated members; role lists for verification
//    and /metrics.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "signing_server_setup.h"
#include "sks/server/server.h"
#include "softhsm_token.h"
#include "stir/identity.h"
#include "stir/passport.h"
#include "stir/verify.h"
#include "test_pki.h"
#include "vs_test_support.h"

namespace sks::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kOrigTn = "12155550121";
constexpr const char* kDestTn = "12155550131";

// Polls `condition` until it holds or 60 s have passed; never sleeps to wait.
template <typename Condition>
bool eventually(Condition condition) {
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

// A TLS x5u host that accepts TCP connections on 127.0.0.HOST and never
// writes a byte (a tarpit): every fetch from it waits for its timeout.
// Counts the connections it accepted; close() drops them all, so the
// fetches still waiting fail at once.
class Tarpit {
 public:
  explicit Tarpit(int host) : address_("127.0.0." + std::to_string(host)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, address_.c_str(), &addr.sin_addr);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 128) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("tarpit on " + address_);
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Tarpit() { close(); }
  Tarpit(const Tarpit&) = delete;
  Tarpit& operator=(const Tarpit&) = delete;

  std::string url(const std::string& path) const {
    return "https://" + address_ + ":" + std::to_string(port_) + path;
  }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

  void close() {
    if (stop_.exchange(true)) return;
    thread_.join();
    ::close(fd_);
    std::lock_guard lock(mutex_);
    for (int held : held_) ::close(held);
    held_.clear();
  }

 private:
  void run() {
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int held = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (held < 0) continue;
      std::lock_guard lock(mutex_);
      held_.push_back(held);
      accepted_.fetch_add(1);
    }
  }

  std::string address_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<int> held_;
};

// `sks serve` with both roles over the fixture's token: signing for sbc1 and
// sbc2 (profile subscribers-a), verification trusting a test STI root whose
// certificate an x5u server on 127.0.0.1 serves.
class HostileTest : public SoftHsmTest {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    SoftHsmTest::SetUp();
    keys->generate("key-a");
    tls = stir::testing::make_tls_pki("sbc1.example.net");
    write_server_tls(dir.path(), tls);
    issue_client("sbc2", "sbc2.example.net");
    issue_client("prom", "prom.example.net");
    configure_signing_server(config, dir.path(), {"sbc1.example.net", "sbc2.example.net"});
    config.token.module = STIR_SOFTHSM_MODULE;
    config.token.label = kTokenLabel;
    config.server.io_threads = 2;

    shaken = stir::testing::make_shaken_pki("1234");
    x5u_server = std::make_unique<stir::vs::testing::TestHttpsServer>(tls);
    x5u_server->get("/sp\\.pem", [this](const std::smatch&) {
      ++x5u_hits;
      return stir::vs::testing::TestHttpsServer::ok(shaken.chain_pem(),
                                                    "application/pem-certificate-chain",
                                                    {{"Cache-Control", "max-age=86400"}});
    });
    x5u_server->start();
    const std::string anchors =
        stir::testing::write_file(dir.path() + "/root.pem", shaken.root.certificate_pem());
    const std::string x5u_ca =
        stir::testing::write_file(dir.path() + "/x5u-ca.pem", tls.server_ca.certificate_pem());
    stir::vs::VerifierConfig v;
    v.trust_anchor_files = {anchors};
    v.tls_ca_file = x5u_ca;
    v.allow_loopback = true;
    v.allowed_ports = {static_cast<std::uint16_t>(x5u_server->port())};
    v.connect_timeout_ms = 30000;
    v.total_timeout_ms = 30000;
    config.verifier = v;
    config.server.verification = true;
  }

  void TearDown() override {
    for (auto& t : tarpits) t->close();
    stop_server();
    x5u_server->stop();
    SoftHsmTest::TearDown();
  }

  std::string prefix(const std::string& name) const { return dir.path() + "/tls/" + name; }

  void issue_client(const std::string& name, const std::string& identity) const {
    stir::testing::CertSpec spec;
    spec.common_name = identity;
    spec.dns_names = {identity};
    spec.tls_client = true;
    write_tls_client(dir.path(), name, stir::testing::issue(spec, &tls.client_ca));
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

  std::unique_ptr<httplib::SSLClient> client(const std::string& name = "client") {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port, prefix(name) + ".pem",
                                                  prefix(name) + ".key");
    c->set_ca_cert_path((prefix("server-ca.pem")).c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(30);
    c->set_read_timeout(120);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);  // no 40 ms Nagle / delayed-ACK stall in the latency measured
    return c;
  }

  httplib::Result sign(httplib::SSLClient& c, const std::string& body) {
    return c.Post("/stir/v1/signing", body, "application/json");
  }

  static std::string signing_body(const json& dest_tns = json::array({kDestTn})) {
    return json{{"signingRequest",
                 {{"attest", "A"}, {"dest", {{"tn", dest_tns}}}, {"orig", {{"tn", kOrigTn}}}}}}
        .dump();
  }

  // An Identity header signed by the test SHAKEN leaf, with this x5u.
  std::string identity(const std::string& x5u) const {
    stir::ShakenClaims c;
    c.attest = "A";
    c.orig_tn = kOrigTn;
    c.dest_tn = {kDestTn};
    c.iat = std::time(nullptr);
    c.origid = kOrigid;
    stir::PassportHeader header;
    header.x5u = x5u;
    const stir::vs::testing::KeySigner signer(shaken.leaf.key.get());
    return stir::compose_identity_header(stir::sign_passport(header, c, signer), x5u);
  }

  static std::string verification_body(const std::string& identity_value) {
    return json{{"verificationRequest",
                 {{"from", {{"tn", kOrigTn}}},
                  {"to", {{"tn", {kDestTn}}}},
                  {"time", std::time(nullptr)},
                  {"identity", identity_value}}}}
        .dump();
  }

  httplib::Result verify(httplib::SSLClient& c, const std::string& x5u) {
    return c.Post("/stir/v1/verification", verification_body(identity(x5u)), "application/json");
  }

  static std::string verstat(const httplib::Result& result) {
    if (!result || result->status != 200) return "";
    const json body = json::parse(result->body, nullptr, false);
    return body.is_object() ? body.value("/verificationResponse/verstat"_json_pointer, "")
                            : std::string();
  }

  static int reasoncode(const httplib::Result& result) {
    if (!result || result->status != 200) return -1;
    const json body = json::parse(result->body, nullptr, false);
    return body.is_object() ? body.value("/verificationResponse/reasoncode"_json_pointer, 0) : -1;
  }

  // Opens `count` tarpits on 127.0.0.1, .2, ... and allows their ports.
  void open_tarpits(int count) {
    for (int i = 1; i <= count; ++i) {
      tarpits.push_back(std::make_unique<Tarpit>(i));
      config.verifier->allowed_ports.push_back(static_cast<std::uint16_t>(tarpits.back()->port()));
    }
  }

  int tarpit_connections() const {
    int total = 0;
    for (const auto& t : tarpits) total += t->accepted();
    return total;
  }

  stir::testing::TlsPki tls;
  stir::testing::ShakenPki shaken;
  std::unique_ptr<stir::vs::testing::TestHttpsServer> x5u_server;
  std::atomic<int> x5u_hits{0};
  std::vector<std::unique_ptr<Tarpit>> tarpits;
  Config config;
  std::unique_ptr<server::ApiServer> server;
  std::thread thread;
  int port = 0;
};

std::string nested_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

std::string message_id(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("requestError")) return "";
  for (const auto& [kind, exception] : parsed["requestError"].items()) {
    if (exception.is_object() && exception.contains("messageId")) {
      return exception["messageId"].get<std::string>();
    }
  }
  return "";
}

// ---- item 2: no body crashes the process -----------------------------------

// 70,000 nested arrays as `attest` (and 520,000, as deep as the body limit
// allows), max_body_bytes raised to 1 MiB and the audit log on: the old
// server answered 400 SVC4005 and then its audit writer copied the array and
// dumped it recursively, which overflowed the stack (SIGSEGV). Now
// the body is refused before it becomes a tree, the audit line holds only
// scalars, and the server goes on signing.
TEST_F(HostileTest, DeeplyNestedBodyWithTheAuditLogOnIs400AndTheServerLives) {
  fs::create_directories(dir.path() + "/audit");
  config.audit.file = dir.path() + "/audit/audit.jsonl";
  config.server.max_body_bytes = 1024 * 1024;
  start_server();
  auto c = client();
  // 70,000 as in the report; 520,000 as deep as a 1 MiB body allows.
  for (const std::size_t depth : {std::size_t{70000}, std::size_t{520000}}) {
    const std::string attack = R"({"signingRequest":{"attest":)" + nested_arrays(depth) +
                               R"(,"dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}})";
    auto refused = sign(*c, attack);
    ASSERT_TRUE(refused) << httplib::to_string(refused.error());
    EXPECT_EQ(refused->status, 400);
    EXPECT_EQ(
        refused->body,
        R"({"requestError":{"serviceException":{"messageId":"SVC4006","text":"Failed to parse message body: %1","variables":["nested deeper than 32 levels"]}}})");
  }
  // The same on the verification route, and with a depth the parser
  // allows (31) but no claim reader wants: 400 SVC4005 for attest, audited
  // without the array.
  auto verification =
      c->Post("/stir/v1/verification", R"({"verificationRequest":)" + nested_arrays(70000) + "}",
              "application/json");
  ASSERT_TRUE(verification);
  EXPECT_EQ(verification->status, 400);
  EXPECT_EQ(message_id(verification->body), "SVC4006");
  auto shallow = sign(*c, R"({"signingRequest":{"attest":)" + nested_arrays(29) +
                              R"(,"dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}})");
  ASSERT_TRUE(shallow);
  EXPECT_EQ(shallow->status, 400);
  EXPECT_EQ(message_id(shallow->body), "SVC4005");

  // Both refusals reach the audit file; the server still signs.
  auto signed_ok = sign(*c, signing_body());
  ASSERT_TRUE(signed_ok);
  EXPECT_EQ(signed_ok->status, 200);
  std::vector<json> lines;
  ASSERT_TRUE(eventually([&] {
    lines.clear();
    std::ifstream in(config.audit.file);
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    return lines.size() >= 4;
  }));
  ASSERT_EQ(lines.size(), 4u);
  for (int i : {0, 1}) {
    EXPECT_EQ(lines[i]["status"], 400);
    EXPECT_EQ(lines[i]["outcome"], "SVC4006");
    EXPECT_FALSE(lines[i].contains("attest")) << lines[i].dump().substr(0, 200);
  }
  EXPECT_EQ(lines[2]["outcome"], "SVC4005");
  EXPECT_FALSE(lines[2].contains("attest")) << lines[2].dump().substr(0, 200);  // not a scalar
  EXPECT_EQ(lines[2]["orig"], kOrigTn);
  EXPECT_EQ(lines[3]["status"], 200);
  EXPECT_EQ(lines[3]["attest"], "A");
}

// ---- item 8: the signer refuses what the network would refuse --------------

// 4,000 dest TNs made a 21.7 KB Identity header that our own verifier
// refuses (16 KiB); kMaxDestTns (100) keeps it under 8 KiB. 101 are refused
// with SVC4005 'dest' and nothing is signed.
TEST_F(HostileTest, MoreDestTnsThanFitAnIdentityHeaderAreRefused) {
  config.server.max_body_bytes = 1024 * 1024;
  start_server();
  auto c = client();
  const auto tns = [](std::size_t count) {
    json list = json::array();
    for (std::size_t i = 0; i < count; ++i) list.push_back(std::to_string(121555500000000 + i));
    return list;
  };
  for (const std::size_t count : {std::size_t{4000}, std::size_t{101}}) {
    auto refused = sign(*c, signing_body(tns(count)));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 400) << count;
    EXPECT_EQ(
        refused->body,
        R"({"requestError":{"serviceException":{"messageId":"SVC4005","text":"Invalid '%1' parameter value: %2","variables":["dest","more than 100 dest.tn entries"]}}})");
  }
  auto at_limit = sign(*c, signing_body(tns(100)));
  ASSERT_TRUE(at_limit);
  ASSERT_EQ(at_limit->status, 200) << at_limit->body;
  const std::string identity =
      json::parse(at_limit->body)["signingResponse"]["identity"].get<std::string>();
  EXPECT_LT(identity.size(), 8192u);
  const auto key = stir::load_public_key_pem(keys->public_key_pem("key-a"));
  stir::VerifyOptions options;
  options.now = std::time(nullptr);
  const auto verdict = stir::verify_identity(identity, key.get(), options);
  ASSERT_TRUE(verdict.valid) << verdict.detail;
  EXPECT_EQ(verdict.passport->claims.dest_tn.size(), 100u);
}

// `"attest":"Z","attest":"A"` was signed with the last value while the
// verifier refuses repeated members: now 400 SVC4005 naming the member, on
// both routes, at any depth.
TEST_F(HostileTest, RepeatedMembersAreRefusedOnBothRoutes) {
  start_server();
  auto c = client();
  const std::string duplicate =
      R"({"signingRequest":{"attest":"Z","attest":"A","dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}})";
  auto refused = sign(*c, duplicate);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(
      refused->body,
      R"({"requestError":{"serviceException":{"messageId":"SVC4005","text":"Invalid '%1' parameter value: %2","variables":["attest","member appears more than once"]}}})");
  auto inner = sign(*c, R"({"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},)"
                        R"("orig":{"tn":"12155550121","tn":"12155550999"}}})");
  ASSERT_TRUE(inner);
  EXPECT_EQ(inner->status, 400);
  EXPECT_NE(inner->body.find(R"("variables":["tn","member appears more than once"])"),
            std::string::npos)
      << inner->body;
  auto outer = c->Post("/stir/v1/verification",
                       R"({"verificationRequest":{"identity":"a"},"verificationRequest":{}})",
                       "application/json");
  ASSERT_TRUE(outer);
  EXPECT_EQ(outer->status, 400);
  EXPECT_NE(
      outer->body.find(R"("variables":["verificationRequest","member appears more than once"])"),
      std::string::npos)
      << outer->body;
  auto good = sign(*c, signing_body());
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
}

// Without role lists every client certificate of the CA may verify and read
// /metrics (the behaviour before the lists existed); with them, only the
// listed names, by exact bytes: others get 403 POL4003 and nothing else.
TEST_F(HostileTest, RoleListsDecideWhoMayVerifyAndReadMetrics) {
  start_server();
  EXPECT_EQ(client("sbc2")->Get("/metrics")->status, 200);
  EXPECT_EQ(verstat(verify(*client("sbc2"), x5u_server->url("/sp.pem"))), "TN-Validation-Passed");
  stop_server();

  config.server.metrics_clients = std::vector<std::string>{"prom.example.net"};
  config.server.verification_clients = std::vector<std::string>{"sbc1.example.net"};
  start_server();
  auto metrics_refused = client()->Get("/metrics");
  ASSERT_TRUE(metrics_refused);
  EXPECT_EQ(metrics_refused->status, 403);
  EXPECT_EQ(
      metrics_refused->body,
      R"({"requestError":{"policyException":{"messageId":"POL4003","text":"Not permitted: %1","variables":["this client identity is not in server.metrics_clients"]}}})");
  auto metrics_ok = client("prom")->Get("/metrics");
  ASSERT_TRUE(metrics_ok);
  EXPECT_EQ(metrics_ok->status, 200);
  EXPECT_NE(metrics_ok->body.find("sks_requests_total"), std::string::npos);

  const int hits_before = x5u_hits.load();
  auto verify_refused = verify(*client("prom"), x5u_server->url("/sp.pem"));
  ASSERT_TRUE(verify_refused);
  EXPECT_EQ(verify_refused->status, 403);
  EXPECT_EQ(message_id(verify_refused->body), "POL4003");
  EXPECT_NE(verify_refused->body.find("server.verification_clients"), std::string::npos);
  EXPECT_EQ(x5u_hits.load(), hits_before);  // refused before any fetch
  EXPECT_EQ(verstat(verify(*client(), x5u_server->url("/sp.pem"))), "TN-Validation-Passed");
  // Signing is unchanged by the lists: sbc2 still signs.
  EXPECT_EQ(sign(*client("sbc2"), signing_body())->status, 200);
}

// ---- item 3: verification isolation ----------------------------------------

// 32 verifications whose x5u are tarpits (8 hosts, 4 URLs each: the default
// bounds of 32 in flight and 4 per host), all fetching at once. The old
// server had 2 x cores verification workers, so a verification whose
// certificate was cached waited behind them until the fetches timed out
// (4.7 s behind 4). Now it answers at once while all 32 are in flight.
TEST_F(HostileTest, CachedVerificationAnswersWhile32TarpitFetchesAreInFlight) {
  open_tarpits(8);
  start_server();
  auto sbc = client();
  const std::string good = x5u_server->url("/sp.pem");
  ASSERT_EQ(verstat(verify(*sbc, good)), "TN-Validation-Passed");  // now cached
  ASSERT_EQ(x5u_hits.load(), 1);

  std::vector<std::thread> attackers;
  std::atomic<int> answered{0};
  for (int i = 0; i < 32; ++i) {
    attackers.emplace_back([&, i] {
      auto c = client("sbc2");
      const auto result =
          verify(*c, tarpits[static_cast<std::size_t>(i % 8)]->url("/x" + std::to_string(i)));
      if (result) answered.fetch_add(1);
    });
  }
  const bool all_in_flight = eventually([&] { return tarpit_connections() == 32; });
  EXPECT_TRUE(all_in_flight) << tarpit_connections() << " tarpit connections";

  const auto start = Clock::now();
  const auto cached = verify(*sbc, good);
  const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  const int in_flight_after = tarpit_connections();
  const int answered_after = answered.load();
  EXPECT_EQ(verstat(cached), "TN-Validation-Passed");
  EXPECT_EQ(answered_after, 0);  // every tarpit fetch still waiting
  EXPECT_EQ(in_flight_after, 32);
  EXPECT_EQ(x5u_hits.load(), 1);
  std::printf("cached verification with 32 tarpit fetches in flight: %lld us\n",
              static_cast<long long>(latency.count()));
  // The done-when bound (100 ms), scaled like every test timeout for the
  // sanitizer build (STIR_TEST_TIMEOUT_SCALE). The assertions above are the
  // real property: it answered while all 32 fetches were still waiting.
  EXPECT_LT(latency.count(), 100000LL * STIR_TEST_TIMEOUT_SCALE);

  // A 33rd tarpit URL is refused at once (436), without a connection.
  auto extra = client("sbc2");
  EXPECT_EQ(reasoncode(verify(*extra, tarpits[0]->url("/extra"))), 436);
  EXPECT_EQ(tarpit_connections(), 32);

  for (auto& t : tarpits) t->close();  // the waiting fetches fail now
  for (auto& t : attackers) t.join();
  EXPECT_EQ(answered.load(), 32);
}

// One tarpit host: at most max_fetches_per_host (4) fetches reach it, the
// other verifications naming it answer 436 at once; once its fetches have
// timed out, a new URL of that host answers 436 without a connection (the
// host's failure is cached), while a verification from another x5u host
// goes through.
TEST_F(HostileTest, OneTarpitHostGetsFourFetchesAndOneTimeoutPerFailurePeriod) {
  open_tarpits(1);
  config.verifier->total_timeout_ms = 1500;
  config.verifier->connect_timeout_ms = 1500;
  start_server();
  std::vector<std::thread> attackers;
  std::atomic<int> answered{0};
  for (int i = 0; i < 12; ++i) {
    attackers.emplace_back([&, i] {
      auto c = client("sbc2");
      if (reasoncode(verify(*c, tarpits[0]->url("/u" + std::to_string(i)))) == 436) {
        answered.fetch_add(1);
      }
    });
  }
  for (auto& t : attackers) t.join();
  EXPECT_EQ(answered.load(), 12);
  // 4 when the 12 arrive within the timeout; fewer on a slow machine, where
  // late ones find the host already failed. Never more.
  const int connections = tarpit_connections();
  EXPECT_LE(connections, 4);
  EXPECT_GE(connections, 1);

  auto c = client("sbc2");
  EXPECT_EQ(reasoncode(verify(*c, tarpits[0]->url("/after-timeout"))), 436);
  EXPECT_EQ(tarpit_connections(), connections);  // the host's failure is cached
  EXPECT_EQ(verstat(verify(*c, x5u_server->url("/sp.pem"))), "TN-Validation-Passed");
}

}  // namespace
}  // namespace sks::testing
