// `sks serve` on a token whose PKCS#11 calls stop returning: a fresh dev
// token seen through sks_faultp11 (sks/tools/faultp11) with `hang_sign = 1`,
// every C_Sign waiting inside the module without end, as a network HSM's
// client library does when its reply never comes (p11-kit-client.so did
// exactly this, issue 22). The real binary, as an operator runs it.
//
// What this file proves (sks/pkcs11/recovery.h, TokenWatchdog):
//  - a call that has not returned within token.call_timeout_ms is a dead
//    token: signing answers 503 POL5003 with Retry-After at once and
//    /readyz 503, while the stuck thread is still inside the module;
//  - SIGTERM still ends `sks serve` within its drain bound, with exit 75
//    (stir::kExitTokenWedged), the stuck thread abandoned;
//  - left alone, the process ends by itself with exit 75 once the call has
//    been stuck for token.wedged_exit_s, so its supervisor restarts it;
//  - a call that is only slow (it returns after the breaker opened) is
//    recovered in-process: signing comes back without a restart.
// On the code before the watchdog, the first case hung: no answer, and
// SIGTERM did not end the process.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>

#include <chrono>
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
using Clock = std::chrono::steady_clock;

constexpr int kExitTokenWedged = 75;  // signer/include/stir/exit_codes.h
constexpr auto kDeadline = std::chrono::seconds(60);

class TokenHangTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    const auto init = run({STIR_SKS_BINARY, "init", "--dir", dir.path() + "/dev"});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    config_path = init.out.substr(0, init.out.find('\n'));
    const auto generate =
        run({STIR_SKS_BINARY, "keys", "generate", "--label", "key-a", "--config", config_path});
    ASSERT_EQ(generate.exit_code, 0) << generate.describe();
    tls = make_tls_pki("sbc1.example.net");
    write_tls_pki(tls, dir.path() + "/tls/");
    faults_path = dir.path() + "/faults.conf";
  }

  void TearDown() override {
    if (server && !server->wait(0)) {
      server->signal(SIGKILL);
      server->wait(20000);
    }
    if (HasFailure()) std::printf("--- serve.log ---\n%s\n", read_file(log_path()).c_str());
  }

  std::string log_path() const { return dir.path() + "/serve.log"; }

  // The dev config with the token behind faultp11 and the given bounds.
  void write_config(int call_timeout_ms, int wedged_exit_s) {
    std::string text = read_file(config_path);
    const std::regex module_line(R"re((^|\n)module = ['"][^'"]*['"])re");
    ASSERT_TRUE(std::regex_search(text, module_line)) << text;
    text = std::regex_replace(text, module_line,
                              "$1module = \"" + std::string(STIR_FAULTP11_MODULE) +
                                  "\"\ncall_timeout_ms = " + std::to_string(call_timeout_ms) +
                                  "\nwedged_exit_s = " + std::to_string(wedged_exit_s));
    text = std::regex_replace(text, std::regex(R"re((^|\n)sessions = \d+)re"), "$1sessions = 2");
    const std::regex env_line(R"re((^|\n)(SOFTHSM2_CONF = ['"][^'"]*['"]))re");
    ASSERT_TRUE(std::regex_search(text, env_line)) << text;
    text = std::regex_replace(text, env_line,
                              "$1$2\nFAULTP11_MODULE = \"" + std::string(STIR_SOFTHSM_MODULE) +
                                  "\"\nFAULTP11_CONFIG = \"" + faults_path + "\"");
    const std::string d = dir.path() + "/tls/";
    text += "\n[server]\nlisten = \"127.0.0.1\"\nport = 0\ntls_cert = \"" + d +
            "server.pem\"\ntls_key = \"" + d + "server.key\"\nclient_ca = \"" + d +
            "clients-ca.pem\"\n\n[[profile]]\nname = \"subscribers\"\nkey = \"key-a\"\n"
            "x5u = \"https://cr.example.net/a.pem\"\n"
            "origid = \"de305d54-75b4-431b-adb2-eb6b9e546014\"\n"
            "clients = [\"sbc1.example.net\"]\n";
    write_file(config_path, text);
  }

  void set_faults(const std::string& text) {
    write_file(faults_path + ".new", text, 0644);
    ASSERT_EQ(std::rename((faults_path + ".new").c_str(), faults_path.c_str()), 0);
  }

  int start() {
    server = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_SKS_BINARY, "serve", "--config", config_path}, log_path());
    const auto line = server->read_line(30000);
    EXPECT_TRUE(line) << "no 'listening on' line";
    if (!line) return 0;
    std::smatch match;
    const std::regex pattern(R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/signing$)");
    EXPECT_TRUE(std::regex_match(*line, match, pattern)) << *line;
    return match.empty() ? 0 : std::stoi(match[1]);
  }

  std::unique_ptr<httplib::SSLClient> client(int port, int read_timeout_s = 20) {
    const std::string d = dir.path() + "/tls/";
    auto c =
        std::make_unique<httplib::SSLClient>("127.0.0.1", port, d + "client.pem", d + "client.key");
    c->set_ca_cert_path((d + "server-ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(read_timeout_s);
    return c;
  }

  struct Answer {
    int status = 0;
    std::string code;
    bool retry_after = false;
  };

  Answer sign(int port) {
    const std::string body = json{{"signingRequest",
                                   {{"attest", "A"},
                                    {"dest", {{"tn", {"12155550131"}}}},
                                    {"orig", {{"tn", "12155550121"}}}}}}
                                 .dump();
    Answer answer;
    const auto response = client(port)->Post("/stir/v1/signing", body, "application/json");
    if (!response) return answer;
    answer.status = response->status;
    answer.retry_after = response->has_header("Retry-After");
    const json parsed = json::parse(response->body, nullptr, false);
    if (parsed.contains("requestError")) {
      answer.code = parsed["requestError"]["policyException"].value("messageId", "");
    }
    return answer;
  }

  int readyz(int port) {
    const auto response = client(port)->Get("/readyz");
    return response ? response->status : 0;
  }

  // Polls `done` every 50 ms until it holds; false at the deadline.
  template <class Done>
  static bool await(Done done, std::chrono::seconds deadline = kDeadline) {
    for (const auto until = Clock::now() + deadline; Clock::now() < until;) {
      if (done()) return true;
      ::poll(nullptr, 0, 50);
    }
    return done();
  }

  // A signing request whose C_Sign does not return, on a thread of its
  // own; returns once the watchdog has seen it (the breaker is open, so no
  // other request reaches the module after it).
  std::future<Answer> hang_one(int port) {
    set_faults("hang_sign = 1\n");
    auto stuck = std::async(std::launch::async, [this, port] { return sign(port); });
    EXPECT_TRUE(await([&] {
      return read_file(log_path()).find("C_Sign has not returned for") != std::string::npos;
    })) << "the watchdog did not report the stuck C_Sign";
    return stuck;
  }

  TempDir dir;
  TlsPki tls;
  std::string config_path;
  std::string faults_path;
  std::unique_ptr<BackgroundProcess> server;
};

TEST_F(TokenHangTest, AStuckCallIsADeadTokenAndSigtermStillEndsServe) {
  ASSERT_NO_FATAL_FAILURE(write_config(/*call_timeout_ms=*/500, /*wedged_exit_s=*/600));
  const int port = start();
  ASSERT_GT(port, 0);
  ASSERT_EQ(sign(port).status, 200);
  ASSERT_EQ(readyz(port), 200);

  auto stuck = hang_one(port);
  // Within about call_timeout_ms the watchdog opens the breaker: 503
  // POL5003 with Retry-After at once, /readyz 503, the process alive.
  Answer refused;
  ASSERT_TRUE(await([&] {
    refused = sign(port);
    return refused.status == 503;
  })) << "no 503 while C_Sign is stuck";
  EXPECT_EQ(refused.code, "POL5003");
  EXPECT_TRUE(refused.retry_after);
  EXPECT_EQ(readyz(port), 503);
  EXPECT_FALSE(server->wait(0)) << "sks serve ended by itself";

  // SIGTERM: the drain (10 s) cannot finish the stuck request; the process
  // still ends, with the documented code.
  const auto signalled = Clock::now();
  server->signal(SIGTERM);
  const auto code = server->wait(30000);
  ASSERT_TRUE(code) << "SIGTERM did not end sks serve";
  EXPECT_EQ(*code, kExitTokenWedged);
  EXPECT_LT(Clock::now() - signalled, std::chrono::seconds(25));
  EXPECT_NE(read_file(log_path()).find("sks: the drain did not end: a call into the token module"),
            std::string::npos);
  EXPECT_NE(stuck.get().status, 200);  // its connection closed unanswered
}

TEST_F(TokenHangTest, AWedgedModuleEndsServeWithItsExitCode) {
  ASSERT_NO_FATAL_FAILURE(write_config(/*call_timeout_ms=*/500, /*wedged_exit_s=*/3));
  const int port = start();
  ASSERT_GT(port, 0);
  ASSERT_EQ(sign(port).status, 200);
  auto stuck = hang_one(port);
  // No signal: the watchdog ends the process once C_Sign has been stuck
  // for wedged_exit_s.
  std::optional<int> code;
  ASSERT_TRUE(await([&] { return (code = server->wait(0)).has_value(); }))
      << "sks serve did not end by itself";
  EXPECT_EQ(*code, kExitTokenWedged);
  EXPECT_NE(read_file(log_path()).find("sks: the token module is stuck: C_Sign has not returned"),
            std::string::npos);
  EXPECT_NE(stuck.get().status, 200);
}

TEST_F(TokenHangTest, ASlowCallThatReturnsIsRecoveredWithoutRestart) {
  ASSERT_NO_FATAL_FAILURE(write_config(/*call_timeout_ms=*/500, /*wedged_exit_s=*/600));
  const int port = start();
  ASSERT_GT(port, 0);
  ASSERT_EQ(sign(port).status, 200);
  auto stuck = hang_one(port);
  ASSERT_EQ(sign(port).status, 503);
  // The call returns (the HSM answers at last): the recovery reconnects,
  // signing and /readyz come back, the same process.
  set_faults("");
  EXPECT_TRUE(await([&] { return sign(port).status == 200; })) << "signing did not come back";
  EXPECT_EQ(readyz(port), 200);
  EXPECT_FALSE(server->wait(0));
  stuck.get();
  server->signal(SIGTERM);
  const auto code = server->wait(30000);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace stir::testing
