// `sks serve` on a token reached over a PKCS#11 connection, as with a
// network HSM: the test's SoftHSM2 token is served by `p11-kit server`
// (Debian's p11-kit) and sks loads p11-kit's client module,
// p11-kit-client.so, with P11_KIT_SERVER_ADDRESS in [token.module_env].
// Every program here is started as systemd or a shell would start it:
// SIGPIPE at its default, so only the program itself can protect itself.
//
// What this file proves:
//  - the remote side going away (the p11-kit server's whole process group
//    killed, as when the HSM or the network to it fails) under signing load
//    over mutual TLS does not end `sks serve` (before the fix it died with
//    status 141, SIGPIPE, as the client module wrote to the closed socket);
//  - while it is gone every signing request is answered 503 POL5003 with
//    Retry-After, and /readyz answers 503;
//  - once it is back, signing returns without restarting sks; the time from
//    the remote token's return to the first signed request is measured and
//    printed (RecordProperty "recovery_ms"), not asserted;
//  - every token handed out, before and after, verifies against the chain
//    at its own x5u (our STI-VS fetching it from the TN-CR over HTTPS);
//  - the `sks` CLI fails with the token error's exit code, never a signal,
//    both when nothing listens at the address and when the peer hangs up
//    in the middle of the conversation.
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

#include "rotation_fixture.h"
#include "stack_verifier.h"

namespace stir::testing {
namespace {

constexpr int kClients = 4;
constexpr auto kDeadline = std::chrono::seconds(60);

// The value of `name = '...'` (or "...") in a TOML text written by `sks init`.
std::string toml_string(const std::string& text, const std::string& name) {
  std::smatch match;
  const std::regex pattern("(^|\n)" + name + R"re( = ['"]([^'"]*)['"])re");
  if (!std::regex_search(text, match, pattern)) return "";
  return match[2];
}

// What one signing request got back.
struct Answer {
  int status = 0;            // 0: no HTTP answer at all
  std::string code;          // the ATIS error code of an error answer
  bool retry_after = false;  // a Retry-After header was sent
  std::string identity;
  std::string orig;
  std::int64_t iat = 0;
  Clock::time_point at;
};

// Accepts connections on a Unix socket and answers each with the one-byte
// version of p11-kit's RPC handshake, then hangs up: a PKCS#11 server that
// goes away in the middle of the conversation (pkcs11-tool, which does not
// ignore SIGPIPE, dies with 141 against it every time). Stops when
// destroyed.
class HangingUpPeer {
 public:
  explicit HangingUpPeer(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    std::filesystem::remove(path);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd_, 16) != 0) {
      throw std::runtime_error("cannot listen on " + path);
    }
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        pollfd ready{fd_, POLLIN, 0};
        if (::poll(&ready, 1, 50) <= 0) continue;
        const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        char version = 0;
        if (::recv(client, &version, 1, 0) == 1) {
          // Reading shut before the answer goes out: the client's next write,
          // made after it read the answer, always meets a peer that is gone
          // (EPIPE on a Unix socket), whatever the scheduling.
          ::shutdown(client, SHUT_RD);
          ::send(client, &version, 1, MSG_NOSIGNAL);
          ++answered_;
        }
        ::close(client);
      }
    });
  }
  ~HangingUpPeer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  HangingUpPeer(const HangingUpPeer&) = delete;  // owns the socket and thread
  HangingUpPeer& operator=(const HangingUpPeer&) = delete;
  int answered() const { return answered_.load(); }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

class RemoteTokenTest : public RotationStackTest {
 protected:
  void SetUp() override {
    RotationStackTest::SetUp();
    if (HasFatalFailure()) return;
    // A key made, certified and published by the rotation manager: its
    // chain is served at its x5u, so every token can be checked there.
    const auto ran = rotate({"run"});
    ASSERT_EQ(ran.exit_code, 0) << ran.describe();
    x5u = state_keys()[0]["x5u"];
    key_label = state_keys()[0]["label"];

    const std::string token_text = read_file(token_config);
    token_label = toml_string(token_text, "label");
    softhsm2_conf = toml_string(token_text, "SOFTHSM2_CONF");
    ASSERT_FALSE(token_label.empty()) << token_text;
    ASSERT_FALSE(softhsm2_conf.empty()) << token_text;
    std::filesystem::create_directories(dir.path() + "/p11");
    std::filesystem::permissions(dir.path() + "/p11", std::filesystem::perms::owner_all);
    socket_path = dir.path() + "/p11/token.sock";

    // The same config with the token behind the client module. Nothing else
    // changes: label and PIN file are the same, the module talks to the
    // server instead of reading the token files.
    std::string remote = read_file(config);
    remote = std::regex_replace(remote, std::regex(R"re((^|\n)module = ['"][^'"]*['"])re"),
                                "$1module = " + quoted(STIR_P11KIT_CLIENT_MODULE));
    remote = std::regex_replace(remote, std::regex(R"re((^|\n)SOFTHSM2_CONF = ['"][^'"]*['"])re"),
                                "$1P11_KIT_SERVER_ADDRESS = " + quoted("unix:path=" + socket_path));
    ASSERT_NE(remote.find("P11_KIT_SERVER_ADDRESS"), std::string::npos) << remote;
    remote_config = dir.path() + "/dev/sks-remote.toml";
    write_file(remote_config, remote);
  }

  void TearDown() override {
    const bool failed = HasFailure();
    RotationStackTest::TearDown();
    token_server.reset();
    if (failed || HasFailure()) {  // the logs go with the folder
      for (const char* log : {"/sks.log", "/p11-kit.log"}) {
        // Everything but the access log's lines: what the token layer said.
        std::string text, line;
        std::istringstream in(read_file(dir.path() + log));
        while (std::getline(in, line)) {
          if (line.find(" route=") == std::string::npos) text += line + "\n";
        }
        std::printf("--- last of %s, access lines left out ---\n%s\n", log,
                    text.substr(text.size() > 6000 ? text.size() - 6000 : 0).c_str());
      }
    }
  }

  // `p11-kit server` for the token, in a process group of its own; returns
  // once it has printed its address (it listens by then).
  void start_token_server() {
    std::filesystem::remove(socket_path);  // a killed server leaves its socket file
    token_server = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{"p11-kit", "server", "-f", "-n", socket_path, "--provider",
                                 STIR_SOFTHSM_MODULE, "pkcs11:token=" + token_label},
        dir.path() + "/p11-kit.log", EnvChanges{{"SOFTHSM2_CONF", softhsm2_conf}},
        /*own_group=*/true);
    const auto line = token_server->read_line(kStartTimeoutMs);
    ASSERT_TRUE(line) << "p11-kit server printed no address; log:\n"
                      << read_file(dir.path() + "/p11-kit.log");
    ASSERT_NE(line->find("P11_KIT_SERVER_ADDRESS=unix:path=" + socket_path), std::string::npos)
        << *line;
  }

  // The remote token goes away: SIGKILL to the server and every process it
  // forked for a connection.
  void kill_token_server() {
    token_server->signal_group(SIGKILL);
    ASSERT_TRUE(token_server->wait(kStartTimeoutMs)) << "p11-kit server did not die";
    token_server.reset();
  }

  ProcessResult sks_cli(std::vector<std::string> args) {
    args.insert(args.begin(), STIR_SKS_BINARY);
    args.insert(args.end(), {"--config", remote_config});
    return run(args);
  }

  // Starts `sks serve` on the remote config; its port, or 0.
  int start_remote_sks() {
    sks = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_SKS_BINARY, "serve", "--config", remote_config},
        dir.path() + "/sks.log");
    return listening_port(*sks, R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/signing$)");
  }

  // The exit code of `sks serve` if it has ended, as a failure message.
  std::string sks_ended() {
    const auto code = sks->wait(0);
    if (!code) return "";
    const std::string text = "sks serve ended with status " + std::to_string(*code) +
                             (*code == 128 + SIGPIPE ? " (SIGPIPE)" : "");
    sks.reset();  // nothing left for TearDown to stop
    return text;
  }

  vs::VerifierConfig verifier_config() const {
    return stack_verifier_config(dir.path(), tncr_port);
  }

  static Answer sign(httplib::SSLClient& client, const std::string& orig) {
    Answer answer;
    answer.orig = orig;
    answer.iat = std::time(nullptr);
    const std::string body = json{{"signingRequest",
                                   {{"attest", "A"},
                                    {"dest", {{"tn", {"12155550131"}}}},
                                    {"iat", answer.iat},
                                    {"orig", {{"tn", orig}}}}}}
                                 .dump();
    const auto response = client.Post("/stir/v1/signing", body, "application/json");
    answer.at = Clock::now();
    if (!response) return answer;
    answer.status = response->status;
    answer.retry_after = response->has_header("Retry-After");
    const json parsed = json::parse(response->body, nullptr, false);
    if (response->status == 200) {
      answer.identity = parsed["signingResponse"]["identity"];
    } else if (parsed.contains("requestError")) {
      const json& error = parsed["requestError"];
      for (const char* kind : {"policyException", "serviceException"}) {
        if (error.contains(kind)) answer.code = error[kind].value("messageId", "");
      }
    }
    return answer;
  }

  int readyz_status(int port) {
    const auto response = sks_client(port)->Get("/readyz");
    return response ? response->status : 0;
  }

  std::string x5u;
  std::string key_label;
  std::string token_label;
  std::string softhsm2_conf;
  std::string socket_path;
  std::string remote_config;
  std::unique_ptr<BackgroundProcess> token_server;
};

// Was DISABLED for one run in ten under load: a thread stuck for good in
// C_Sign inside p11-kit-client.so after the connection broke (its RPC
// client's shared reply reader, sks/pkcs11/module.h), the recovery waiting
// for it, SIGTERM not ending sks. sks now calls that module one call at a
// time, so the break fails every call instead; the check that sks was never
// restarted is sks_ended() staying empty to the end.
TEST_F(RemoteTokenTest, ServerOutlivesTheRemoteTokenAndSignsAgainWhenItReturns) {
  ASSERT_NO_FATAL_FAILURE(start_token_server());
  const int port = start_remote_sks();
  ASSERT_GT(port, 0) << read_file(dir.path() + "/sks.log");
  ASSERT_EQ(readyz_status(port), 200) << read_file(dir.path() + "/sks.log");

  std::mutex mutex;
  std::vector<Answer> answers;
  std::atomic<bool> stop{false};
  const auto count = [&](auto predicate) {
    std::lock_guard lock(mutex);
    return std::count_if(answers.begin(), answers.end(), predicate);
  };
  // Polls `done` until it holds or the deadline passes, failing the test
  // as soon as `sks serve` ends.
  const auto await = [&](auto done, const std::string& what) {
    for (const auto until = Clock::now() + kDeadline; Clock::now() < until;) {
      if (done()) return true;
      const std::string ended = sks_ended();
      if (!ended.empty()) {
        ADD_FAILURE() << ended << " while waiting for " << what;
        return false;
      }
      ::poll(nullptr, 0, 20);
    }
    ADD_FAILURE() << "timed out waiting for " << what;
    return false;
  };

  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = sks_client(port);
      client->set_keep_alive(true);
      client->set_read_timeout(20);
      for (long n = 0; !stop.load(); ++n) {
        Answer answer = sign(*client, std::to_string(12150000000LL + c * 10000000LL + n));
        const bool failed = answer.status == 0;
        {
          std::lock_guard lock(mutex);
          answers.push_back(std::move(answer));
        }
        // A connection the server ended is not retried in a tight loop.
        if (failed) ::poll(nullptr, 0, 10);
      }
    });
  }
  const auto signed_ok = [](const Answer& a) { return a.status == 200; };

  bool ok = await([&] { return count(signed_ok) >= 50; }, "50 signed requests");
  std::size_t before_kill = 0;
  {
    std::lock_guard lock(mutex);
    before_kill = answers.size();
  }
  // No ASSERT while the clients run: they must be joined first.
  if (ok) {
    EXPECT_NO_FATAL_FAILURE(kill_token_server());
    ok = !HasFailure();
  }

  // While it is gone: 503 POL5003 with Retry-After, /readyz 503, sks alive.
  std::size_t refused_since = 0;
  const auto refused = [&] {
    std::lock_guard lock(mutex);
    return std::count_if(answers.begin() + static_cast<std::ptrdiff_t>(before_kill), answers.end(),
                         [](const Answer& a) { return a.status == 503; });
  };
  // The outage lasts a few seconds (the scenario's schedule, not a wait for
  // a condition): long enough for the recovery thread's back-off to reach
  // its 2 s ceiling, so the recovery time measured below is the real one.
  const auto killed_at = Clock::now();
  ok = ok &&
       await([&] { return refused() >= 20 && Clock::now() - killed_at >= std::chrono::seconds(4); },
             "20 answers 503 while the token is gone");
  if (ok) {
    EXPECT_EQ(readyz_status(port), 503);
  }
  // The CLI, meanwhile: a token error, not a signal.
  if (ok) {
    const auto listed = sks_cli({"keys", "list"});
    EXPECT_EQ(listed.exit_code, 69) << listed.describe();
    const auto signed_cli = sks_cli({"sign", "--label", key_label, "--x5u", x5u, "--orig",
                                     "12155550121", "--dest", "12155550131", "--attest", "A"});
    EXPECT_EQ(signed_cli.exit_code, 69) << signed_cli.describe();
  }
  ok = ok && sks_ended().empty();
  {
    std::lock_guard lock(mutex);
    refused_since = answers.size();
  }

  // It comes back; the first signed request after that is timed.
  Clock::time_point returned{};
  if (ok) {
    EXPECT_NO_FATAL_FAILURE(start_token_server());
    ok = !HasFailure();
    returned = Clock::now();
  }
  Clock::time_point first_signed{};
  ok = ok && await(
                 [&] {
                   std::lock_guard lock(mutex);
                   for (std::size_t i = refused_since; i < answers.size(); ++i) {
                     if (answers[i].status == 200 && answers[i].at >= returned) {
                       first_signed = answers[i].at;
                       return true;
                     }
                   }
                   return false;
                 },
                 "a signed request after the token's return");
  ok = ok && await([&] { return count(signed_ok) >= static_cast<long>(before_kill) + 100; },
                   "100 more signed requests");
  if (ok) {
    EXPECT_EQ(readyz_status(port), 200);
  }
  stop = true;
  for (auto& t : clients) t.join();

  const std::string ended = sks ? sks_ended() : "";
  EXPECT_EQ(ended, "");
  if (!ok) return;
  const auto recovery_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(first_signed - returned).count();
  RecordProperty("recovery_ms", static_cast<int>(recovery_ms));
  std::printf("remote token back -> first signed request: %lld ms\n",
              static_cast<long long>(recovery_ms));

  // Every answer is a signed token or the documented refusal; none is lost.
  std::size_t signed_count = 0, unavailable = 0;
  std::string unexpected;
  for (const Answer& a : answers) {
    if (a.status == 200) {
      ++signed_count;
    } else if (a.status == 503 && a.code == "POL5003" && a.retry_after) {
      ++unavailable;
    } else if (unexpected.empty()) {
      unexpected = "status " + std::to_string(a.status) + " code '" + a.code + "'" +
                   (a.retry_after ? "" : " without Retry-After");
    }
  }
  std::printf("%zu signed, %zu answered 503 POL5003 while the token was gone\n", signed_count,
              unavailable);
  EXPECT_EQ(unexpected, "");
  EXPECT_GE(unavailable, 20u);

  // Every token, against the chain at its own x5u.
  vs::Verifier verifier(verifier_config());
  std::string problem;
  for (const Answer& a : answers) {
    if (a.status != 200) continue;
    EXPECT_EQ(info_of(a.identity), x5u);
    vs::VerificationRequest request;
    request.identity = a.identity;
    request.from_tn = a.orig;
    request.to_tns = {"12155550131"};
    request.now = a.iat + 1;  // what is checked here is the key and x5u, not the clock
    const auto result = verifier.verify(request);
    if (!result.passed()) {
      problem = result.error_case_id() + ": " + result.detail;
      break;
    }
  }
  EXPECT_EQ(problem, "");
}

TEST_F(RemoteTokenTest, CliFailsWithTheTokenErrorWhenThePeerIsGoneOrHangsUp) {
  // Nothing listens at the address.
  const auto nobody = sks_cli({"keys", "list"});
  EXPECT_EQ(nobody.exit_code, 69) << nobody.describe();
  EXPECT_EQ(nobody.err,
            "sks: the module lists no token at all (is the HSM, or the server behind a remote "
            "module, reachable?): no token with label '" +
                token_label + "' in " + STIR_P11KIT_CLIENT_MODULE + "\n");

  // A peer that answers the handshake and hangs up: the client module's
  // next write meets a closed socket (EPIPE; SIGPIPE killed the old CLI).
  HangingUpPeer peer(socket_path);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const auto listed = sks_cli({"keys", "list"});
    ASSERT_LT(listed.exit_code, 128) << "attempt " << attempt << ": " << listed.describe();
    EXPECT_EQ(listed.exit_code, 69) << listed.describe();
  }
  EXPECT_GT(peer.answered(), 0);
}

}  // namespace
}  // namespace stir::testing
