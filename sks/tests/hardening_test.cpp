// Hardening of `sks serve` (issue 11, items 3 and 4) against a real SoftHSM
// token over real HTTPS with mutual TLS: TLS versions and client
// certificates refused with their exact alerts, header and body limits,
// silent clients, per-client rate limits, the start-up checks of the TLS
// files, and the audit log (lines, rotation, drops).
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "raw_clients.h"
#include "signing_server_setup.h"
#include "sks/server/api_error.h"
#include "sks/server/audit_log.h"
#include "sks/server/rate_limiter.h"
#include "sks/server/server.h"
#include "sks/server/verification_api.h"
#include "softhsm_token.h"
#include "stir/base64url.h"
#include "stir/error.h"
#include "stir/exit_codes.h"
#include "stir/http/tls_files.h"
#include "stir/identity.h"
#include "stir/openssl.h"
#include "test_pki.h"

namespace sks::testing {
namespace {

using nlohmann::json;
using std::chrono::steady_clock;
using stir::testing::RawTlsClient;
namespace fs = std::filesystem;

// Polls `condition` until it holds or 30 s have passed.
template <typename Condition>
bool eventually(Condition condition) {
  const auto deadline = steady_clock::now() + std::chrono::seconds(30);
  while (steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string hex(const stir::Sha256Digest& digest) {
  std::string out;
  char byte[3];
  for (const auto b : digest) {
    std::snprintf(byte, sizeof byte, "%02x", b);
    out += byte;
  }
  return out;
}

// A signing server on 127.0.0.1:0 over the fixture's token, two clients of
// the client CA listed in one profile (sbc1, sbc2).
class HardeningTest : public SoftHsmTest {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // refused TLS clients write into closed sockets
    SoftHsmTest::SetUp();
    keys->generate("key-a");
    tls = stir::testing::make_tls_pki("sbc1.example.net");
    write_server_tls(dir.path(), tls);
    write_client("sbc1", tls.client);
    issue_client("sbc2", "sbc2.example.net");
    configure_signing_server(config, dir.path(), {"sbc1.example.net", "sbc2.example.net"});
    config.token.module = STIR_SOFTHSM_MODULE;
    config.token.label = kTokenLabel;
    config.server.io_threads = 4;
  }

  void TearDown() override {
    stop_server();
    SoftHsmTest::TearDown();
  }

  std::string prefix(const std::string& name) const { return dir.path() + "/tls/" + name; }
  std::string server_ca() const { return prefix("server-ca.pem"); }

  void write_client(const std::string& name, const stir::testing::TestCert& cert) const {
    write_tls_client(dir.path(), name, cert);
  }

  void issue_client(const std::string& name, const std::string& identity,
                    std::int64_t not_before = -3600, std::int64_t not_after = 86400) const {
    stir::testing::CertSpec spec;
    spec.common_name = identity;
    spec.dns_names = {identity};
    spec.tls_client = true;
    spec.not_before_offset_s = not_before;
    spec.not_after_offset_s = not_after;
    write_client(name, stir::testing::issue(spec, &tls.client_ca));
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

  std::unique_ptr<httplib::SSLClient> client(const std::string& name = "sbc1") {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port, prefix(name) + ".pem",
                                                  prefix(name) + ".key");
    c->set_ca_cert_path(server_ca().c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(10);
    c->set_read_timeout(20);
    c->set_keep_alive(true);
    return c;
  }

  static std::string body(const std::string& attest = "A") {
    return json{{"signingRequest",
                 {{"attest", attest},
                  {"dest", {{"tn", {"12155550131"}}}},
                  {"orig", {{"tn", "12155550121"}}}}}}
        .dump();
  }

  httplib::Result sign(httplib::SSLClient& c, const std::string& attest = "A") {
    return c.Post("/stir/v1/signing", body(attest), "application/json");
  }

  // Signs until the first answer that is not 200 (at most 50 times).
  httplib::Result sign_until_refused(httplib::SSLClient& c) {
    for (int i = 0;; ++i) {
      auto result = sign(c);
      if (!result || result->status != 200 || i == 49) return result;
    }
  }

  std::string metrics() {
    auto result = client()->Get("/metrics");
    return result ? result->body : std::string();
  }

  stir::testing::TlsPki tls;
  Config config;
  std::unique_ptr<server::ApiServer> server;
  std::thread thread;
  int port = 0;
};

// The OpenSSL reason a client offering only `version` ends its handshake
// with; 0 when the handshake succeeded. Security level 0, so that our own
// client is willing to speak TLS 1.0 and 1.1 at all.
int handshake_failure_with_only(int port, const std::string& ca_file, int version) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  SSL_CTX_set_security_level(ctx.get(), 0);
  SSL_CTX_set_cipher_list(ctx.get(), "ALL:@SECLEVEL=0");
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
  const int fd = stir::testing::connect_loopback(port);
  if (fd < 0) return -1;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), fd);
  ERR_clear_error();
  const int reason = SSL_connect(ssl.get()) == 1 ? 0 : ERR_GET_REASON(ERR_peek_last_error());
  ::close(fd);
  return reason;
}

// ---- TLS ------------------------------------------------------------------

TEST_F(HardeningTest, Tls10AndTls11ClientsGetTheProtocolVersionAlert) {
  start_server();
  EXPECT_EQ(handshake_failure_with_only(port, server_ca(), TLS1_VERSION),
            SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
  EXPECT_EQ(handshake_failure_with_only(port, server_ca(), TLS1_1_VERSION),
            SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
  // TLS 1.2 and 1.3 handshakes go through (mutual TLS then decides).
  RawTlsClient tls12(port, server_ca(), prefix("sbc1.pem"), prefix("sbc1.key"), TLS1_2_VERSION);
  ASSERT_TRUE(tls12.handshake());
  EXPECT_EQ(tls12.version(), TLS1_2_VERSION);
  RawTlsClient tls13(port, server_ca(), prefix("sbc1.pem"), prefix("sbc1.key"));
  ASSERT_TRUE(tls13.handshake());
  EXPECT_EQ(tls13.version(), TLS1_3_VERSION);  // preferred when the client offers it
  EXPECT_EQ(server->connection_stats().requests, 0u);
}

TEST_F(HardeningTest, ClientCertificateFromAnotherCaGetsTheUnknownCaAlert) {
  start_server();
  auto foreign = stir::testing::make_tls_pki("sbc1.example.net");  // same name, other CA
  write_client("foreign", foreign.client);
  RawTlsClient client(port, server_ca(), prefix("foreign.pem"), prefix("foreign.key"));
  ASSERT_TRUE(client.handshake());  // TLS 1.3: the client's side ends first
  client.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(client.read_to_end(), "");
  EXPECT_EQ(client.error_reason(), SSL_R_TLSV1_ALERT_UNKNOWN_CA);
  EXPECT_EQ(server->connection_stats().requests, 0u);
}

TEST_F(HardeningTest, ExpiredClientCertificateGetsTheCertificateExpiredAlert) {
  start_server();
  issue_client("expired", "sbc1.example.net", -7200, -60);  // the listed name, expired
  RawTlsClient client(port, server_ca(), prefix("expired.pem"), prefix("expired.key"));
  ASSERT_TRUE(client.handshake());
  client.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(client.read_to_end(), "");
  EXPECT_EQ(client.error_reason(), SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED);
  EXPECT_EQ(server->connection_stats().requests, 0u);
}

// ---- limits -----------------------------------------------------------------

TEST_F(HardeningTest, OversizeHeaderIs431AndOversizeBodyIs413WithAtisBodies) {
  start_server();
  auto c = client();
  httplib::Headers big{{"X-Padding", std::string(9 * 1024, 'a')}};
  auto header = c->Post("/stir/v1/signing", big, body(), "application/json");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->status, 431);
  EXPECT_EQ(
      header->body,
      R"({"requestError":{"serviceException":{"messageId":"SVC4006","text":"Failed to parse message body: %1","variables":["request header larger than 8192 bytes"]}}})");
  auto large = client()->Post("/stir/v1/signing", std::string(17 * 1024, ' '), "application/json");
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 413);
  EXPECT_EQ(
      large->body,
      R"({"requestError":{"serviceException":{"messageId":"SVC4006","text":"Failed to parse message body: %1","variables":["body larger than 16384 bytes"]}}})");
  auto ok = sign(*client());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// Slowloris: clients that finish the TLS handshake and then send nothing
// are closed by the header deadline (300 ms here; every other deadline is
// 60 s, longer than the test waits), while a real client is answered.
TEST_F(HardeningTest, SilentClientsAreClosedAtTheHeaderTimeoutWhileASignatureIsAnswered) {
  config.server.header_timeout_ms = 300;
  config.server.handshake_timeout_ms = 60000;
  config.server.body_timeout_ms = 60000;
  config.server.keep_alive_timeout_s = 60;
  start_server();
  std::vector<std::unique_ptr<RawTlsClient>> silent;
  for (int i = 0; i < 10; ++i) {
    silent.push_back(
        std::make_unique<RawTlsClient>(port, server_ca(), prefix("sbc1.pem"), prefix("sbc1.key")));
    ASSERT_TRUE(silent.back()->handshake());
  }
  auto ok = sign(*client("sbc2"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  const auto deadline = steady_clock::now() + std::chrono::seconds(30);
  for (const auto& s : silent) EXPECT_TRUE(stir::testing::closed_by_peer(s->fd(), deadline));
  EXPECT_EQ(server->connection_stats().requests, 1u);
}

// ---- rate limits (the limiter itself: server_unit_test.cpp) ----------------

TEST_F(HardeningTest, ClientOverItsRateLimitGets429WithRetryAfterWhileAnotherIsServed) {
  config.rate_limit = {1, 5};  // 1/s, bursts of 5
  start_server();
  auto refused = sign_until_refused(*client("sbc1"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(refused->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(
      refused->body,
      R"({"requestError":{"policyException":{"messageId":"POL4029","text":"Too many requests: %1","variables":["client 'sbc1.example.net' is over its rate limit of 1/s"]}}})");
  // Another client of the same profile is not affected.
  auto other = sign(*client("sbc2"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);
  // The access log counts a request after its response is written.
  std::string text;
  EXPECT_TRUE(eventually([&] {
    text = metrics();
    return text.find(
               "sks_requests_total{route=\"signing\",code=\"429\",outcome=\"POL4029\"} "
               "1\n") != std::string::npos;
  })) << text;
  EXPECT_NE(text.find("sks_rate_limited_total{client=\"sbc1.example.net\"} 1\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("sks_rate_limited_total{client=\"sbc2.example.net\"}"), std::string::npos);
}

// ---- start-up checks of the TLS files ---------------------------------------

// The exact refusal check_tls_files() gives, "" when it accepts.
std::string tls_files_refusal(const ServerConfig& s, uid_t euid) {
  try {
    stir::http::check_tls_files({s.tls_cert, s.tls_key, s.client_ca}, euid, "sks");
    return "";
  } catch (const stir::Error& e) {
    return std::to_string(stir::exit_code_for(e.code())) + " " + e.what();
  }
}

TEST_F(HardeningTest, TlsFilesOfAnotherOwnerOrWritableOrReadableKeysAreRefused) {
  const ServerConfig& s = config.server;
  const std::string key = s.tls_key;
  EXPECT_EQ(tls_files_refusal(s, ::geteuid()), "");

  fs::permissions(key, fs::perms(0644));
  EXPECT_EQ(tls_files_refusal(s, ::geteuid()),
            "77 TLS key " + key +
                " has mode 0644; it must not be readable by others (chmod 600, or 640 with "
                "owner root)");
  fs::permissions(key, fs::perms(0600));
  fs::permissions(s.client_ca, fs::perms(0664));
  EXPECT_EQ(tls_files_refusal(s, ::geteuid()),
            "77 client CA file " + s.client_ca +
                " has mode 0664; it must not be writable by group or others (chmod go-w)");
  fs::permissions(s.client_ca, fs::perms(0644));
  EXPECT_EQ(tls_files_refusal(s, ::geteuid()), "");

  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's owner needs root";
  // Owned by another user: refused, whatever the mode.
  ASSERT_EQ(::chown(key.c_str(), 65534, 65534), 0);
  EXPECT_EQ(tls_files_refusal(s, 0),
            "77 TLS key " + key +
                " is owned by uid 65534; it must be owned by the user sks runs as (uid 0) or root");
  // Owned by the service user (65534 here): 0600 only, never group-readable.
  EXPECT_EQ(tls_files_refusal(s, 65534), "");
  fs::permissions(key, fs::perms(0640));
  EXPECT_EQ(tls_files_refusal(s, 65534),
            "77 TLS key " + key +
                " has mode 0640; owned by the service user it must be readable by its owner only "
                "(chmod 600)");
  // root:group 0640 is how a root-managed key is handed to a service user.
  ASSERT_EQ(::chown(key.c_str(), 0, 65534), 0);
  EXPECT_EQ(tls_files_refusal(s, 65534), "");
  // The server refuses to start with such a file, before it listens.
  ASSERT_EQ(::chown(s.tls_cert.c_str(), 65534, 0), 0);
  try {
    server::ApiServer refused(config, keys.get());
    ADD_FAILURE() << "the server started with a certificate owned by uid 65534";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kPermission);
    EXPECT_EQ(std::string(e.what()),
              "TLS certificate chain " + s.tls_cert +
                  " is owned by uid 65534; it must be owned by the user sks runs as (uid 0) or "
                  "root");
  }
}

// ---- audit log --------------------------------------------------------------

TEST_F(HardeningTest, AuditLogHasALineForEverySignatureAndEveryRefusal) {
  fs::create_directories(dir.path() + "/audit");
  config.audit.file = dir.path() + "/audit/audit.jsonl";
  config.rate_limit = {1, 2};
  issue_client("intruder", "intruder.example.net");
  start_server();
  auto sbc1 = client("sbc1");
  auto signed_call = sign(*sbc1);
  ASSERT_TRUE(signed_call);
  ASSERT_EQ(signed_call->status, 200);
  auto forbidden = sign(*sbc1, "C");  // outside the profile's attestation levels
  ASSERT_TRUE(forbidden);
  ASSERT_EQ(forbidden->status, 403);
  auto limited = sign_until_refused(*sbc1);
  ASSERT_TRUE(limited);
  ASSERT_EQ(limited->status, 429);
  auto intruder = sign(*client("intruder"));
  ASSERT_TRUE(intruder);
  ASSERT_EQ(intruder->status, 403);
  const std::string text = metrics();
  stop_server();  // the writer finishes the queue before the server is gone

  const auto lines = lines_of(config.audit.file);
  ASSERT_GE(lines.size(), 4u);
  std::vector<json> records;
  for (const auto& line : lines) records.push_back(json::parse(line));

  // The signature: every member, the digest of the exact signing input.
  const json& first = records.front();
  const std::string identity =
      json::parse(signed_call->body)["signingResponse"]["identity"].get<std::string>();
  const auto parsed = stir::parse_identity_header(identity);
  ASSERT_TRUE(parsed.header);
  const json claims = json::parse(*stir::base64url_decode(parsed.header->payload_b64));
  EXPECT_EQ(first["client"], "sbc1.example.net");
  EXPECT_EQ(first["profile"], "subscribers-a");
  EXPECT_EQ(first["key"], "key-a");
  EXPECT_EQ(first["x5u"], kX5u);
  EXPECT_EQ(first["orig"], "12155550121");
  EXPECT_EQ(first["dest"], json::array({"12155550131"}));
  EXPECT_EQ(first["attest"], "A");
  EXPECT_EQ(first["origid"], kOrigid);
  EXPECT_EQ(first["iat"], claims["iat"]);
  EXPECT_EQ(first["status"], 200);
  EXPECT_EQ(first["outcome"], "ok");
  EXPECT_EQ(first["request_id"], signed_call->get_header_value("X-RequestID"));
  EXPECT_EQ(first["signing_input_sha256"],
            hex(stir::sha256(parsed.header->header_b64 + "." + parsed.header->payload_b64)));
  EXPECT_EQ(first["time"].get<std::string>().size(), 24u);  // 2026-12-02T01:55:00.123Z

  // The refusals: their outcome, what was asked, no digest.
  const json& attest_c = records[1];
  EXPECT_EQ(attest_c["status"], 403);
  EXPECT_EQ(attest_c["outcome"], "POL4003");
  EXPECT_EQ(attest_c["attest"], "C");
  EXPECT_EQ(attest_c["profile"], "subscribers-a");
  EXPECT_FALSE(attest_c.contains("signing_input_sha256"));
  const json& over = records[records.size() - 2];
  EXPECT_EQ(over["status"], 429);
  EXPECT_EQ(over["outcome"], "POL4029");
  EXPECT_EQ(over["client"], "sbc1.example.net");
  const json& unknown = records.back();
  EXPECT_EQ(unknown["status"], 403);
  EXPECT_EQ(unknown["outcome"], "POL4003");
  EXPECT_EQ(unknown["client"], "intruder.example.net");
  EXPECT_FALSE(unknown.contains("profile"));
  EXPECT_EQ(fs::status(config.audit.file).permissions(), fs::perms(0600));
  EXPECT_NE(text.find("sks_audit_records_total{result=\"dropped\"} 0\n"), std::string::npos)
      << text;
}

TEST_F(HardeningTest, AuditLogRotatesBySizeAndKeepsTheConfiguredNumberOfFiles) {
  fs::create_directories(dir.path() + "/audit");
  config.audit.file = dir.path() + "/audit/audit.jsonl";
  config.audit.max_file_bytes = 4096;
  config.audit.keep_files = 2;
  start_server();
  auto c = client();
  constexpr int kSignatures = 40;  // about 500 bytes a line: several files' worth
  for (int i = 0; i < kSignatures; ++i) {
    auto result = sign(*c);
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200);
  }
  std::string text;
  ASSERT_TRUE(eventually([&] {
    text = metrics();
    return text.find("sks_audit_records_total{result=\"written\"} " + std::to_string(kSignatures) +
                     "\n") != std::string::npos;
  })) << text;
  stop_server();
  const std::string base = config.audit.file;
  EXPECT_TRUE(fs::exists(base + ".1"));
  EXPECT_TRUE(fs::exists(base + ".2"));
  EXPECT_FALSE(fs::exists(base + ".3"));  // older ones are gone
  std::size_t kept = 0;
  for (const std::string& file : {base, base + ".1", base + ".2"}) {
    EXPECT_LE(fs::file_size(file), 4096u) << file;
    for (const auto& line : lines_of(file)) {
      EXPECT_EQ(json::parse(line)["outcome"], "ok");
      ++kept;
    }
  }
  // .1 and .2 are full files; the newest lines are all kept.
  EXPECT_GE(kept, 3u);
  EXPECT_LT(kept, static_cast<std::size_t>(kSignatures));
  EXPECT_EQ(text.find("sks_audit_rotations_total 0\n"), std::string::npos) << text;
}

// Every token session is held, so the signing workers wait and the next
// request is refused by the full queue (503 POL5003): audited as well.
TEST_F(HardeningTest, AuditLogHasTheRefusalOfAFullSigningQueue) {
  fs::create_directories(dir.path() + "/audit");
  config.audit.file = dir.path() + "/audit/audit.jsonl";
  config.server.signing_queue_depth = 0;
  start_server();
  std::vector<p11::SessionPool::Lease> held;
  const std::size_t sessions = pool->size();
  for (std::size_t i = 0; i < sessions; ++i) held.push_back(pool->acquire());
  std::vector<std::future<httplib::Result>> waiting;
  for (std::size_t i = 0; i < sessions; ++i) {
    waiting.push_back(std::async(std::launch::async, [this] { return sign(*client("sbc2")); }));
  }
  ASSERT_TRUE(eventually([&] { return server->connection_stats().workers_busy == sessions; }));
  auto refused = sign(*client("sbc1"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  held.clear();
  for (auto& request : waiting) {
    auto result = request.get();
    EXPECT_TRUE(result && result->status == 200);
  }
  stop_server();
  std::vector<json> busy;
  for (const auto& line : lines_of(config.audit.file)) {
    const json record = json::parse(line);
    if (record["status"] == 503) busy.push_back(record);
  }
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0]["outcome"], "POL5003");
  EXPECT_EQ(busy[0]["client"], "sbc1.example.net");
  EXPECT_EQ(busy[0]["profile"], "subscribers-a");
  EXPECT_EQ(busy[0]["key"], "key-a");
  EXPECT_EQ(busy[0]["attest"], "A");
  EXPECT_EQ(busy[0]["request_id"], refused->get_header_value("X-RequestID"));
  EXPECT_EQ(lines_of(config.audit.file).size(), sessions + 1);
}

// The audit file is a FIFO nobody reads: the writer blocks in open(), as
// on a hung file system. Requests are still answered at once; what the
// queue cannot hold is dropped and counted.
TEST_F(HardeningTest, AuditDropsAreCountedWhileTheWriterIsBlockedAndRequestsAreServed) {
  fs::create_directories(dir.path() + "/audit");
  config.audit.file = dir.path() + "/audit/audit.jsonl";
  config.audit.queue_depth = 2;
  ASSERT_EQ(::mkfifo(config.audit.file.c_str(), 0600), 0);
  start_server();
  auto c = client();
  for (int i = 0; i < 5; ++i) {
    auto result = sign(*c);
    EXPECT_TRUE(result && result->status == 200) << i;
  }
  const std::string text = metrics();
  EXPECT_NE(text.find("sks_audit_records_total{result=\"dropped\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sks_audit_queue_length 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sks_audit_records_total{result=\"written\"} 0\n"), std::string::npos);

  // A reader unblocks the writer: the two queued records arrive.
  const int reader = ::open(config.audit.file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  std::string received;
  EXPECT_TRUE(eventually([&] {
    char buffer[4096];
    const ssize_t n = ::read(reader, buffer, sizeof buffer);
    if (n > 0) received.append(buffer, static_cast<std::size_t>(n));
    return std::count(received.begin(), received.end(), '\n') == 2;
  })) << received;
  stop_server();
  ::close(reader);
}

TEST_F(HardeningTest, AuditFolderThatDoesNotExistIsRefusedAtStart) {
  config.audit.file = dir.path() + "/missing/audit.jsonl";
  try {
    server::ApiServer refused(config, keys.get());
    ADD_FAILURE() << "started without the audit folder";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()), "audit.file " + config.audit.file + ": the folder " +
                                         dir.path() + "/missing does not exist");
  }
}

// ---- configuration ------------------------------------------------------------

TEST_F(HardeningTest, RateLimitAndAuditTablesLoadWithDefaultsAndRangesChecked) {
  const std::string base = std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                           "\"\nlabel = \"sks\"\n"
                           "pin_env = \"SKS_PIN\"\n";
  const std::string path = dir.path() + "/c.toml";
  stir::testing::write_file(path, base);
  Config none = load_config(path);
  EXPECT_EQ(none.rate_limit.per_client_per_s, 0);  // off by default
  EXPECT_EQ(none.audit.file, "");                  // no audit log without [audit]

  stir::testing::write_file(path, base +
                                      "[rate_limit]\nper_client_per_s = 200\n[audit]\nfile = "
                                      "\"audit/audit.jsonl\"\n");
  Config some = load_config(path);
  EXPECT_EQ(some.rate_limit.per_client_per_s, 200);
  EXPECT_EQ(some.rate_limit.burst, 200);  // one second's worth
  EXPECT_EQ(some.audit.file, dir.path() + "/audit/audit.jsonl");
  EXPECT_EQ(some.audit.max_file_bytes, 64 << 20);
  EXPECT_EQ(some.audit.keep_files, 10);
  EXPECT_EQ(some.audit.queue_depth, 65536u);

  auto error_of = [&](const std::string& extra) {
    stir::testing::write_file(path, base + extra);
    try {
      load_config(path);
      return std::string("loaded");
    } catch (const stir::Error& e) {
      return std::to_string(stir::exit_code_for(e.code())) + " " + e.what();
    }
  };
  EXPECT_NE(error_of("[audit]\nkeep_files = 0\nfile = \"a\"\n")
                .find("audit.keep_files must be an integer from 1 to 1000"),
            std::string::npos);
  EXPECT_NE(error_of("[audit]\nmax_file_bytes = 10\n").find("78 "), std::string::npos);
  EXPECT_NE(error_of("[audit]\nkeep_files = 3\n").find("audit.file is required in [audit]"),
            std::string::npos);
  EXPECT_NE(error_of("[rate_limit]\nper_client_per_s = 5\nburst = 0\n")
                .find("rate_limit.burst must be at least 1 when the limit is on"),
            std::string::npos);
  EXPECT_NE(error_of("[rate_limit]\nrate = 5\n").find("unknown key 'rate' in [rate_limit]"),
            std::string::npos);
}

}  // namespace
}  // namespace sks::testing
