// End to end over HTTPS with the real binaries, the way run_demo in
// scripts/dev.sh does it but on ephemeral loopback ports: a fresh SoftHSM2
// token (`sks init`), a signing key in it, the test STI PKI whose CA keys
// live in the same token (`sti-dev-ca`), a certificate issued from a CSR the
// token signed, the chain published on a TN-CR (`tn-cr serve`) under a
// digest-named URL, and `sks serve` signing with that URL as x5u.
//
// What this file proves:
//  - 1,000 signing requests over 16 concurrent keep-alive mutual-TLS
//    connections all return 200 and a token that verifies (stir::verify_identity)
//    against the leaf of the chain fetched once from the x5u URL over HTTPS;
//    that chain is served as application/pem-certificate-chain with a
//    max-age of at least a day and chains to the test STI root according to
//    the openssl command.
//  - secsipidx, an independent verifier (the library Kamailio uses), accepts
//    a token by fetching its x5u from the TN-CR over HTTPS, checks the fetched
//    certificate against the test STI root, and rejects a tampered signature.
//  - `sks verify --cert` accepts a token against the fetched chain, whose
//    leaf is "SHAKEN 1234" with TNAuthList SPC 1234 and the token's key.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "process.h"
#include "stir/hex.h"
#include "stir/openssl.h"
#include "stir/verify.h"
#include "stir/x509.h"
#include "test_files.h"
#include "test_pki.h"

namespace stir::testing {
namespace {

using nlohmann::json;

constexpr const char* kLabel = "shaken-e2e";
constexpr const char* kSpc = "1234";
constexpr const char* kClientName = "sbc1.example.net";
constexpr int kStartTimeoutMs = 20000;

// Connects to 127.0.0.1:port once; true when something accepted.
bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

// A port the kernel considers free on 127.0.0.1 right now: bind to port 0,
// read the port, close. For programs that cannot report the port they bound
// (secsipidx takes a fixed address). Another process could take the port
// between the close and the child's bind; the caller retries on that.
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

std::string common_name(const X509* certificate) {
  char buffer[256] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName,
                                          buffer, sizeof buffer);
  return n < 0 ? "" : std::string(buffer, static_cast<std::size_t>(n));
}

// The value of the info parameter of an Identity header value, without <>.
std::string info_of(const std::string& identity) {
  const auto start = identity.find(";info=<");
  if (start == std::string::npos) return "";
  const auto end = identity.find('>', start);
  return end == std::string::npos ? "" : identity.substr(start + 7, end - start - 7);
}

// The body of a signing request for call number `n` (distinct numbers per
// call, so each token can be matched with its request).
std::string signing_request(int n) {
  return json{{"signingRequest",
               {{"attest", "A"},
                {"dest", {{"tn", {"12155550131"}}}},
                {"iat", static_cast<std::int64_t>(std::time(nullptr))},
                {"orig", {{"tn", std::to_string(12155550000LL + n)}}}}}}
      .dump();
}

struct Fetched {
  int status = 0;
  std::string content_type;
  std::string cache_control;
  std::string body;
};

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir.path();
    const auto init = run({STIR_SKS_BINARY, "init", "--dir", d + "/dev"});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    token_config = init.out.substr(0, init.out.find('\n'));
    ASSERT_NO_FATAL_FAILURE(
        must({STIR_SKS_BINARY, "keys", "generate", "--label", kLabel, "--config", token_config}));
    ASSERT_NO_FATAL_FAILURE(
        must({STIR_DEV_CA_BINARY, "init", "--config", token_config, "--dir", d + "/pki",
              "--crl-url", "https://127.0.0.1/crl/sti-pa-test.crl"}));
    ASSERT_NO_FATAL_FAILURE(
        must({STIR_SKS_BINARY, "keys", "csr", "--label", kLabel, "--spc", kSpc, "--subject",
              "/C=US/O=E2E Test", "--out", d + "/leaf.csr", "--config", token_config}));
    const std::string chain = d + "/leaf.chain.pem";
    ASSERT_NO_FATAL_FAILURE(must({STIR_DEV_CA_BINARY, "issue", "--config", token_config, "--dir",
                                  d + "/pki", "--csr", d + "/leaf.csr", "--out", chain}));
    ASSERT_NO_FATAL_FAILURE(must({STIR_SKS_BINARY, "keys", "install-cert", "--label", kLabel,
                                  "--chain", chain, "--config", token_config}));

    const TlsPki tls = make_tls_pki(kClientName);
    write_file(d + "/tls/server.pem", tls.server.certificate_pem());
    write_file(d + "/tls/server.key", tls.server.private_key_pem());
    write_file(d + "/tls/server-ca.pem", tls.server_ca.certificate_pem(), 0644);
    write_file(d + "/tls/clients-ca.pem", tls.client_ca.certificate_pem(), 0644);
    write_file(d + "/tls/client.pem", tls.client.certificate_pem());
    write_file(d + "/tls/client.key", tls.client.private_key_pem());

    // A new certificate gets a new URL: the name carries the chain's digest.
    name = std::string(kLabel) + "-" + hex(sha256(read_file(chain))).substr(0, 12) + ".pem";
    const std::string tncr_config = d + "/tn-cr.toml";
    write_file(tncr_config, "[repository]\ndir = \"" + d + "/cr\"\n[server]\n" +
                                "listen = \"127.0.0.1\"\nport = 0\ntls_cert = \"" + d +
                                "/tls/server.pem\"\ntls_key = \"" + d + "/tls/server.key\"\n");
    std::filesystem::create_directories(d + "/cr");
    ASSERT_NO_FATAL_FAILURE(must(
        {STIR_TNCR_BINARY, "publish", "--config", tncr_config, "--chain", chain, "--name", name}));
    tncr = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_TNCR_BINARY, "serve", "--config", tncr_config},
        d + "/tn-cr.log");
    tncr_port =
        listening_port(*tncr, R"(^listening on https://127\.0\.0\.1:(\d+)/$)", d + "/tn-cr.log");
    ASSERT_GT(tncr_port, 0);

    // Only now is the x5u known: the profile names the TN-CR's bound port.
    x5u = "https://127.0.0.1:" + std::to_string(tncr_port) + "/" + name;
    // Beside the token config, so the keyring folder (relative default) is the same.
    sks_config = d + "/dev/sks-e2e.toml";
    write_file(sks_config,
               read_file(token_config) + "\n\n[server]\nlisten = \"127.0.0.1\"\n" +
                   "port = 0\ntls_cert = \"" + d + "/tls/server.pem\"\n" + "tls_key = \"" + d +
                   "/tls/server.key\"\nclient_ca = \"" + d +
                   "/tls/clients-ca.pem\"\n\n[[profile]]\nname = \"e2e\"\n" + "key = \"" + kLabel +
                   "\"\nx5u = \"" + x5u + "\"\n" +
                   "origid = \"de305d54-75b4-431b-adb2-eb6b9e546014\"\n" +
                   "attest = [\"A\", \"B\", \"C\"]\nclients = [\"" + kClientName + "\"]\n" +
                   // The verification role, trusting the test STI root and
                   // fetching x5u from this TN-CR on loopback.
                   "\n[verifier]\ntrust_anchors = \"" + d + "/pki/root.pem\"\n" +
                   "tls_ca_file = \"" + d + "/tls/server-ca.pem\"\n" +
                   "allow_loopback = true\nallowed_ports = [" + std::to_string(tncr_port) + "]\n");
    {
      // Both roles on the same server.
      std::string text = read_file(sks_config);
      const std::string anchor = "[server]\n";
      text.insert(text.find(anchor) + anchor.size(), "roles = [\"signing\", \"verification\"]\n");
      write_file(sks_config, text);
    }
    ASSERT_NO_FATAL_FAILURE(must({STIR_SKS_BINARY, "check-config", "--config", sks_config}));
    sks = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_SKS_BINARY, "serve", "--config", sks_config}, d + "/sks.log");
    sks_port = listening_port(*sks, R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/signing$)",
                              d + "/sks.log");
    ASSERT_GT(sks_port, 0);
  }

  void TearDown() override {
    // A failed test leaves the rest to ~BackgroundProcess (SIGKILL).
    for (auto* server : {sks.get(), tncr.get()}) {
      if (server == nullptr) continue;
      server->signal(SIGTERM);
      EXPECT_EQ(server->wait(20000), 0)
          << "a server did not exit 0 on SIGTERM; logs in " << dir.path();
    }
  }

  void must(const std::vector<std::string>& argv) {
    const auto result = run(argv);
    ASSERT_EQ(result.exit_code, 0) << argv[0] << " " << argv[1] << ": " << result.describe();
  }

  // The port from a server's "listening on" line, or 0 (with a failure).
  static int listening_port(BackgroundProcess& server, const std::string& pattern,
                            const std::string& log) {
    const auto line = server.read_line(kStartTimeoutMs);
    EXPECT_TRUE(line) << "no 'listening on' line; log:\n" << read_file(log);
    if (!line) return 0;
    std::smatch match;
    const std::regex re(pattern);
    EXPECT_TRUE(std::regex_match(*line, match, re)) << *line;
    return match.empty() ? 0 : std::stoi(match[1]);
  }

  std::unique_ptr<httplib::SSLClient> sks_client() const {
    const std::string t = dir.path() + "/tls/";
    auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", sks_port, t + "client.pem",
                                                       t + "client.key");
    client->set_ca_cert_path((t + "server-ca.pem").c_str());
    client->enable_server_certificate_verification(true);
    client->set_connection_timeout(10);
    client->set_read_timeout(20);
    return client;
  }

  // One token from POST /stir/v1/signing; "" (with a failure) otherwise.
  std::string sign_one() const {
    const auto result =
        sks_client()->Post("/stir/v1/signing", signing_request(0), "application/json");
    EXPECT_TRUE(result) << httplib::to_string(result.error());
    if (!result) return "";
    EXPECT_EQ(result->status, 200) << result->body;
    if (result->status != 200) return "";
    return json::parse(result->body)["signingResponse"]["identity"].get<std::string>();
  }

  // GET x5u from the TN-CR over HTTPS, trusting only the TLS test CA.
  Fetched fetch_x5u() const {
    httplib::SSLClient client("127.0.0.1", tncr_port);
    client.set_ca_cert_path((dir.path() + "/tls/server-ca.pem").c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(10);
    client.set_read_timeout(10);
    const std::string prefix = "https://127.0.0.1:" + std::to_string(tncr_port);
    Fetched fetched;
    EXPECT_EQ(x5u.rfind(prefix, 0), 0u) << x5u;
    const auto result = client.Get(x5u.substr(prefix.size()));
    EXPECT_TRUE(result) << httplib::to_string(result.error());
    if (!result) return fetched;
    fetched.status = result->status;
    fetched.content_type = result->get_header_value("Content-Type");
    fetched.cache_control = result->get_header_value("Cache-Control");
    fetched.body = result->body;
    return fetched;
  }

  TempDir dir;
  std::string token_config;
  std::string sks_config;
  std::string name;
  std::string x5u;
  int tncr_port = 0;
  int sks_port = 0;
  std::unique_ptr<BackgroundProcess> tncr;
  std::unique_ptr<BackgroundProcess> sks;
};

struct Outcome {
  bool transported = false;
  std::string error;
  int status = 0;
  std::string identity;
};

TEST_F(EndToEndTest, ThousandSignaturesOverSixteenKeepAliveConnectionsVerifyAgainstTheX5u) {
  constexpr int kRequests = 1000;
  constexpr int kConnections = 16;
  std::vector<Outcome> outcomes(kRequests);
  std::atomic<int> next{0};
  std::atomic<int> sockets_opened{0};
  std::vector<std::thread> workers;
  workers.reserve(kConnections);
  for (int c = 0; c < kConnections; ++c) {
    workers.emplace_back([&] {
      auto client = sks_client();
      client->set_tcp_nodelay(true);
      client->set_keep_alive(true);
      // Called once per new TCP connection: counts reconnects.
      client->set_socket_options([&](socket_t) { ++sockets_opened; });
      for (int i = next++; i < kRequests; i = next++) {
        auto result = client->Post("/stir/v1/signing", signing_request(i), "application/json");
        Outcome& o = outcomes[static_cast<std::size_t>(i)];
        o.transported = static_cast<bool>(result);
        if (!result) {
          o.error = httplib::to_string(result.error());
          continue;
        }
        o.status = result->status;
        if (o.status == 200) {
          o.identity = json::parse(result->body)["signingResponse"]["identity"].get<std::string>();
        } else {
          o.error = result->body;
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  int ok = 0;
  for (int i = 0; i < kRequests; ++i) {
    const Outcome& o = outcomes[static_cast<std::size_t>(i)];
    EXPECT_TRUE(o.transported && o.status == 200)
        << "request " << i << ": status " << o.status << " " << o.error;
    ok += o.status == 200 ? 1 : 0;
  }
  ASSERT_EQ(ok, kRequests);
  EXPECT_EQ(sockets_opened.load(), kConnections) << "keep-alive connections were not reused";

  // The x5u, fetched once, as a verifier sees it.
  const Fetched fetched = fetch_x5u();
  ASSERT_EQ(fetched.status, 200) << fetched.body;
  EXPECT_EQ(fetched.content_type, "application/pem-certificate-chain");
  std::smatch max_age;
  ASSERT_TRUE(std::regex_search(fetched.cache_control, max_age, std::regex(R"(max-age=(\d+))")))
      << fetched.cache_control;
  EXPECT_GE(std::stol(max_age[1]), 86400) << fetched.cache_control;
  const auto chain = parse_pem_chain(fetched.body);
  ASSERT_EQ(chain.size(), 2u);  // leaf, STI-CA
  EXPECT_NO_THROW(check_chain_links(chain));
  const std::string chain_path = write_file(dir.path() + "/fetched.pem", fetched.body);
  const auto openssl = run({"openssl", "verify", "-CAfile", dir.path() + "/pki/root.pem",
                            "-untrusted", chain_path, chain_path});
  EXPECT_EQ(openssl.exit_code, 0) << openssl.describe();
  EXPECT_EQ(openssl.out, chain_path + ": OK\n") << openssl.describe();

  EvpPkeyPtr leaf_key(X509_get_pubkey(chain[0].get()));
  ASSERT_NE(leaf_key, nullptr);
  VerifyOptions options;
  options.now = static_cast<std::int64_t>(std::time(nullptr));
  int valid = 0;
  for (int i = 0; i < kRequests; ++i) {
    const std::string& identity = outcomes[static_cast<std::size_t>(i)].identity;
    const VerifyResult result = verify_identity(identity, leaf_key.get(), options);
    EXPECT_TRUE(result.valid) << "token " << i << ": " << static_cast<int>(result.reason) << " "
                              << result.detail;
    if (!result.valid) continue;
    const auto& passport = *result.passport;
    EXPECT_EQ(passport.header.x5u, x5u) << "token " << i;
    EXPECT_EQ(info_of(identity), x5u) << "token " << i;
    EXPECT_EQ(passport.claims.orig_tn, std::to_string(12155550000LL + i)) << "token " << i;
    EXPECT_EQ(passport.claims.dest_tn, std::vector<std::string>{"12155550131"});
    EXPECT_EQ(passport.claims.attest, "A");
    const bool matches = passport.header.x5u == x5u && info_of(identity) == x5u &&
                         passport.claims.orig_tn == std::to_string(12155550000LL + i);
    valid += matches ? 1 : 0;
  }
  EXPECT_EQ(valid, kRequests);
}

TEST_F(EndToEndTest, SecsipidxVerifiesByFetchingTheX5uFromTheTnCrOverHttps) {
  const std::string identity = sign_one();
  ASSERT_FALSE(identity.empty());
  ASSERT_EQ(info_of(identity), x5u);

  // secsipidx takes a fixed address, so a free port is picked for it; the
  // loop retries when another process took that port before secsipidx bound it.
  // -cert-verify 5: time validity (1) + the custom root CA file (4), so it
  // also checks the fetched chain against the test STI root, not only TLS.
  std::unique_ptr<BackgroundProcess> secsipidx;
  int port = 0;
  for (int attempt = 0; attempt < 3 && secsipidx == nullptr; ++attempt) {
    port = free_loopback_port();
    ASSERT_GT(port, 0);
    auto child = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{"secsipidx", "-http-srv", "127.0.0.1:" + std::to_string(port),
                                 "-timeout", "3", "-expire", "300", "-cert-verify", "5", "-ca-file",
                                 dir.path() + "/pki/root.pem"},
        dir.path() + "/secsipidx.log",
        // Go's crypto/x509 reads SSL_CERT_FILE: the HTTPS fetch trusts the TLS test CA.
        EnvChanges{{"SSL_CERT_FILE", dir.path() + "/tls/server-ca.pem"}});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool ready = false;
    std::optional<int> exited;
    while (!ready && !exited && std::chrono::steady_clock::now() < deadline) {
      ready = accepts_connections(port);
      if (!ready) exited = child->wait(10);  // polls the child for up to 10 ms
    }
    if (ready) {
      secsipidx = std::move(child);
    } else {
      ASSERT_TRUE(exited) << "secsipidx did not accept connections within 10 s";
    }
  }
  ASSERT_NE(secsipidx, nullptr) << "secsipidx could not bind; log:\n"
                                << read_file(dir.path() + "/secsipidx.log");

  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  const auto good = client.Post("/v1/check", identity, "text/plain");
  ASSERT_TRUE(good) << httplib::to_string(good.error());
  EXPECT_EQ(good->status, 200) << good->body;
  EXPECT_NE(good->body.find("OK"), std::string::npos) << good->body;

  // One character of the signature segment changed: same header, same x5u.
  std::string tampered = identity;
  const auto signature = tampered.find('.', tampered.find('.') + 1) + 1;
  const std::size_t at = signature + 10;
  ASSERT_LT(at, tampered.find(';'));
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  const auto bad = client.Post("/v1/check", tampered, "text/plain");
  ASSERT_TRUE(bad) << httplib::to_string(bad.error());
  EXPECT_NE(bad->status, 200) << bad->body;
  EXPECT_NE(bad->body.find("FAILED"), std::string::npos) << bad->body;

  secsipidx->signal(SIGTERM);
  EXPECT_TRUE(secsipidx->wait(10000).has_value());
  std::string out;
  while (const auto line = secsipidx->read_line(0)) out += *line + "\n";
  EXPECT_NE(out.find("valid identity"), std::string::npos) << out;
  EXPECT_NE(out.find("ECDSA verification failed"), std::string::npos) << out;
}

TEST_F(EndToEndTest, SksVerifyAcceptsATokenAgainstTheFetchedChain) {
  const std::string identity = sign_one();
  ASSERT_FALSE(identity.empty());
  const Fetched fetched = fetch_x5u();
  ASSERT_EQ(fetched.status, 200) << fetched.body;
  const std::string chain_path = write_file(dir.path() + "/fetched.pem", fetched.body);

  const auto verify =
      run({STIR_SKS_BINARY, "verify", "--identity", identity, "--cert", chain_path});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_EQ(verify.out.rfind("valid: attest=A orig=12155550000 dest=12155550131 ", 0), 0u)
      << verify.describe();
  EXPECT_NE(verify.out.find(" x5u=" + x5u + "\n"), std::string::npos) << verify.describe();

  const auto chain = parse_pem_chain(fetched.body);
  ASSERT_FALSE(chain.empty());
  EXPECT_EQ(common_name(chain[0].get()), "SHAKEN 1234");
  EXPECT_EQ(tn_auth_list_spc(chain[0].get()), std::optional<std::string>(kSpc));
  // The served leaf is for the key in the token.
  const auto pub =
      run({STIR_SKS_BINARY, "keys", "public", "--label", kLabel, "--config", token_config});
  ASSERT_EQ(pub.exit_code, 0) << pub.describe();
  EvpPkeyPtr leaf_key(X509_get_pubkey(chain[0].get()));
  EXPECT_TRUE(same_public_key(leaf_key.get(), load_public_key_pem(pub.out).get()));
}

}  // namespace
}  // namespace stir::testing

namespace stir::testing {
namespace {

// The verification endpoint and `sks verify --from --to` are one verifier:
// for the same token and the same call they give byte-identical answers,
// passed and failed alike, with the x5u fetched from the TN-CR.
TEST_F(EndToEndTest, SksVerifyAndTheVerificationEndpointGiveTheSameAnswer) {
  const std::string good = sign_one();
  ASSERT_FALSE(good.empty());
  const std::string jws = good.substr(0, good.find(';'));
  const std::string params = good.substr(good.find(';'));
  std::string tampered = jws;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  const std::string compact =
      "." + jws.substr(jws.find('.') + 1).substr(jws.substr(jws.find('.') + 1).find('.'));
  struct Case {
    std::string name, identity, from, to, verstat;
  };
  const std::vector<Case> cases = {
      {"valid", good, "12155550000", "12155550131", "TN-Validation-Passed"},
      {"signature (E18)", tampered + params, "12155550000", "12155550131", "TN-Validation-Failed"},
      {"orig differs (E16)", good, "12155559999", "12155550131", "No-TN-Validation"},
      {"dest differs (E16)", good, "12155550000", "12155559999", "No-TN-Validation"},
      {"info differs (E10)",
       jws + ";info=<https://127.0.0.1:" + std::to_string(tncr_port) +
           "/other.pem>;alg=ES256;ppt=shaken",
       "12155550000", "12155550131", "No-TN-Validation"},
      {"compact form (E4)", compact + params, "12155550000", "12155550131", "No-TN-Validation"},
  };
  auto client = sks_client();
  for (const auto& c : cases) {
    const json request = {{"verificationRequest",
                           {{"from", {{"tn", c.from}}},
                            {"to", {{"tn", {c.to}}}},
                            {"time", static_cast<std::int64_t>(std::time(nullptr))},
                            {"identity", c.identity}}}};
    const auto endpoint = client->Post("/stir/v1/verification", request.dump(), "application/json");
    ASSERT_TRUE(endpoint) << c.name;
    EXPECT_EQ(endpoint->status, 200) << c.name << ": " << endpoint->body;
    const auto cli = run({STIR_SKS_BINARY, "verify", "--config", sks_config, "--identity",
                          c.identity, "--from", c.from, "--to", c.to, "--json"});
    EXPECT_EQ(cli.exit_code, c.verstat == "TN-Validation-Passed" ? 0 : 1)
        << c.name << ": " << cli.describe();
    EXPECT_EQ(cli.out, endpoint->body + "\n") << c.name;
    EXPECT_EQ(json::parse(endpoint->body)["verificationResponse"]["verstat"], c.verstat)
        << c.name << ": " << endpoint->body;
  }
  // Missing identity is a request error, not a verification result.
  const auto missing = client->Post(
      "/stir/v1/verification",
      R"({"verificationRequest":{"from":{"tn":"12155550000"},"to":{"tn":["12155550131"]},"time":1}})",
      "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_NE(missing->body.find("SVC4001"), std::string::npos) << missing->body;
  // The verifier's counters reach /metrics.
  const auto metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sks_verifications_total{verstat=\"TN-Validation-Passed\"} 1"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sks_x5u_cache_total{result=\"miss\"}"), std::string::npos);
}

}  // namespace
}  // namespace stir::testing

namespace stir::testing {
namespace {

// A terminating carrier's verifier has no HSM: a config with only [server]
// (role "verification") and [verifier] runs without any token, and
// answers like the combined server.
TEST_F(EndToEndTest, VerificationOnlyServerNeedsNoToken) {
  const std::string good = sign_one();
  ASSERT_FALSE(good.empty());
  const std::string d = dir.path();
  const std::string config = d + "/verifier-only.toml";
  write_file(config,
             "[server]\nlisten = \"127.0.0.1\"\nport = 0\nroles = [\"verification\"]\n"
             "tls_cert = \"" +
                 d + "/tls/server.pem\"\ntls_key = \"" + d + "/tls/server.key\"\nclient_ca = \"" +
                 d + "/tls/clients-ca.pem\"\n\n" + "[verifier]\ntrust_anchors = \"" + d +
                 "/pki/root.pem\"\n" + "tls_ca_file = \"" + d +
                 "/tls/server-ca.pem\"\nallow_loopback = true\n" + "allowed_ports = [" +
                 std::to_string(tncr_port) + "]\n");
  const auto check = run({STIR_SKS_BINARY, "check-config", "--config", config});
  ASSERT_EQ(check.exit_code, 0) << check.describe();
  BackgroundProcess verifier({STIR_SKS_BINARY, "serve", "--config", config}, d + "/vs.log");
  const int port = listening_port(
      verifier, R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/verification$)", d + "/vs.log");
  ASSERT_GT(port, 0);
  const std::string t = d + "/tls/";
  httplib::SSLClient client("127.0.0.1", port, t + "client.pem", t + "client.key");
  client.set_ca_cert_path((t + "server-ca.pem").c_str());
  client.enable_server_certificate_verification(true);
  const json request = {
      {"verificationRequest",
       {{"from", {{"tn", "12155550000"}}}, {"to", {{"tn", {"12155550131"}}}}, {"identity", good}}}};
  const auto result = client.Post("/stir/v1/verification", request.dump(), "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->body, R"({"verificationResponse":{"verstat":"TN-Validation-Passed"}})");
  // No signing role: the signing path does not exist here.
  const auto signing = client.Post("/stir/v1/signing", signing_request(0), "application/json");
  ASSERT_TRUE(signing);
  EXPECT_EQ(signing->status, 404);
  const auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  verifier.signal(SIGTERM);
  EXPECT_EQ(verifier.wait(20000), 0);
}

}  // namespace
}  // namespace stir::testing
