// The tn-cr command line as an operator and a script see it: exit codes,
// output, config errors, and `serve` stopping cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "process.h"
#include "stir/x509.h"
#include "support/test_pki.h"
#include "test_files.h"
#include "tls_test_client.h"

namespace tn_cr {
namespace {

using stir::testing::ProcessResult;
using stir::testing::TempDir;

// Writes a file (creating folders) and returns its path.
std::string put_file(const std::string& path, const std::string& content, unsigned mode = 0644) {
  return stir::testing::write_file(path, content, mode);
}

ProcessResult tn_cr(std::vector<std::string> args) {
  args.insert(args.begin(), TN_CR_BINARY);
  return stir::testing::run(args);
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new stir::testing::ShakenPki(stir::testing::make_shaken_pki("1234"));
    other_ = new stir::testing::ShakenPki(stir::testing::make_shaken_pki("5678"));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_;
  }
  void SetUp() override {
    dir_ = temp_.path() + "/repo";
    chain_ = put_file(temp_.path() + "/chain.pem", pki_->chain_pem());
    other_chain_ = put_file(temp_.path() + "/other.pem", other_->chain_pem());
  }
  std::string write_config(const std::string& text) {
    return put_file(temp_.path() + "/tn-cr.toml", text, 0644);
  }

  static stir::testing::ShakenPki* pki_;
  static stir::testing::ShakenPki* other_;
  TempDir temp_;
  std::string dir_, chain_, other_chain_;
};

stir::testing::ShakenPki* CliTest::pki_ = nullptr;
stir::testing::ShakenPki* CliTest::other_ = nullptr;

TEST_F(CliTest, PublishListUnpublishWithExitCodes) {
  auto r = tn_cr({"publish", "--chain", chain_, "--name", "sp-1.pem", "--dir", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "published sp-1.pem\n");
  EXPECT_EQ(stir::testing::read_file(dir_ + "/sp-1.pem"),
            stir::chain_to_pem(stir::parse_pem_chain(pki_->chain_pem())));

  r = tn_cr({"publish", "--chain", chain_, "--name", "sp-1.pem", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "already published sp-1.pem\n");

  r = tn_cr({"publish", "--chain", other_chain_, "--name", "sp-1.pem", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 73) << r.describe();
  EXPECT_NE(r.err.find("never changes"), std::string::npos) << r.err;

  r = tn_cr({"list", "--json", "--dir", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "sp-1.pem");
  EXPECT_EQ(list[0]["spc"], "1234");
  EXPECT_EQ(list[0]["certificates"], 2);
  EXPECT_EQ(list[0]["sha256"].get<std::string>().size(), 64u);
  EXPECT_FALSE(list[0].contains("error"));

  r = tn_cr({"list", "--dir", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("sp-1.pem\t", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("spc=1234"), std::string::npos) << r.out;

  r = tn_cr({"unpublish", "sp-1.pem", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 65) << r.describe();
  EXPECT_NE(r.err.find("--yes"), std::string::npos);
  r = tn_cr({"unpublish", "sp-1.pem", "--yes", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  r = tn_cr({"unpublish", "sp-1.pem", "--yes", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 66) << r.describe();
  r = tn_cr({"list", "--json", "--dir", dir_});
  EXPECT_EQ(r.out, "[]\n");
}

TEST_F(CliTest, PublishRefusesBadInput) {
  const std::string with_key =
      put_file(temp_.path() + "/with-key.pem", pki_->chain_pem() + pki_->leaf.private_key_pem());
  const std::string reversed = put_file(temp_.path() + "/reversed.pem",
                                        pki_->ca.certificate_pem() + pki_->leaf.certificate_pem());
  EXPECT_EQ(tn_cr({"publish", "--chain", with_key, "--name", "a.pem", "--dir", dir_}).exit_code,
            65);
  EXPECT_EQ(tn_cr({"publish", "--chain", reversed, "--name", "a.pem", "--dir", dir_}).exit_code,
            65);
  EXPECT_EQ(tn_cr({"publish", "--chain", chain_, "--name", "../a.pem", "--dir", dir_}).exit_code,
            65);
  EXPECT_EQ(
      tn_cr({"publish", "--chain", temp_.path() + "/missing.pem", "--name", "a.pem", "--dir", dir_})
          .exit_code,
      66);
  EXPECT_EQ(tn_cr({"publish", "--chain", chain_, "--dir", dir_}).exit_code, 64);
  EXPECT_EQ(
      tn_cr({"publish", "--chain", chain_, "--name", "a.pem", "--dir", dir_, "--config", "x.toml"})
          .exit_code,
      64);
  EXPECT_EQ(tn_cr({}).exit_code, 64);
  EXPECT_EQ(tn_cr({"frobnicate"}).exit_code, 64);
  EXPECT_EQ(tn_cr({"--help"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/a.pem"));
}

TEST_F(CliTest, PublishThroughTheConfigFile) {
  const std::string config = write_config("[repository]\ndir = \"repo\"\n");
  auto r = tn_cr({"publish", "--chain", chain_, "--name", "a.pem", "--config", config});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/a.pem"));
}

TEST_F(CliTest, ConfigErrorsExit78NamingTheKey) {
  const std::string config = write_config("[server]\nlab_plain_http = true\nmax_age_s = 3600\n");
  auto r = tn_cr({"check-config", "--config", config});
  EXPECT_EQ(r.exit_code, 78) << r.describe();
  EXPECT_NE(r.err.find("tn-cr.toml:3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("server.max_age_s"), std::string::npos) << r.err;
  r = tn_cr({"serve", "--config", config});
  EXPECT_EQ(r.exit_code, 78) << r.describe();

  write_config("[server]\nlab_plain_http = true\nmaxage = 86400\n");
  r = tn_cr({"serve", "--config", config});
  EXPECT_EQ(r.exit_code, 78) << r.describe();
  EXPECT_NE(r.err.find("unknown key 'maxage'"), std::string::npos) << r.err;

  write_config("[repository]\ndir = \"repo\"\n");
  r = tn_cr({"serve", "--config", config});
  EXPECT_EQ(r.exit_code, 78) << r.describe();
  EXPECT_NE(r.err.find("[server]"), std::string::npos) << r.err;

  r = tn_cr({"serve", "--config", temp_.path() + "/missing.toml"});
  EXPECT_EQ(r.exit_code, 78) << r.describe();
}

// A child process whose stdout we read line by line and which we signal.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& config) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<std::string> args = {TN_CR_BINARY, "serve", "--config", config};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, TN_CR_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
    if (rc != 0) throw std::runtime_error("posix_spawn failed");
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }
  ServeProcess(const ServeProcess&) = delete;  // owns the child
  ServeProcess& operator=(const ServeProcess&) = delete;

  // The first stdout line ("" when stdout closes first).
  std::string read_line() {
    std::string line;
    char c = 0;
    while (::read(out_, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }
  // Sends `signal_number` and waits; returns the exit status (128 + n if killed).
  int signal_and_wait(int signal_number) {
    ::kill(pid_, signal_number);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string stderr_text() {
    std::string text;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(err_, buffer, sizeof buffer)) > 0) text.append(buffer, n);
    return text;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
};

TEST_F(CliTest, ServeAnswersThenStopsCleanlyOnSigterm) {
  const auto tls = stir::testing::make_tls_pki();
  put_file(temp_.path() + "/tls/server.pem",
           tls.server.certificate_pem() + tls.server_ca.certificate_pem());
  put_file(temp_.path() + "/tls/server.key", tls.server.private_key_pem(), 0600);
  const std::string ca = put_file(temp_.path() + "/ca.pem", tls.server_ca.certificate_pem());
  ASSERT_EQ(tn_cr({"publish", "--chain", chain_, "--name", "sp.pem", "--dir", dir_}).exit_code, 0);
  const std::string config = write_config(
      "[repository]\ndir = \"repo\"\n"
      "[server]\nlisten = \"127.0.0.1\"\nport = 0\ntls_cert = \"tls/server.pem\"\n"
      "tls_key = \"tls/server.key\"\nthreads = 2\n");
  ASSERT_EQ(tn_cr({"check-config", "--config", config}).exit_code, 0);

  for (int signal_number : {SIGTERM, SIGINT}) {
    ServeProcess serve(config);
    const std::string line = serve.read_line();
    const std::string prefix = "listening on https://127.0.0.1:";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line << serve.stderr_text();
    const int port = std::stoi(line.substr(prefix.size()));
    auto res = testing::https_client(port, ca)->Get("/sp.pem");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/pem-certificate-chain");
    EXPECT_EQ(serve.signal_and_wait(signal_number), 0);
    const std::string err = serve.stderr_text();
    EXPECT_NE(err.find("tn-cr: GET /sp.pem 200 "), std::string::npos) << err;
    EXPECT_NE(err.find("tn-cr: stopped"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace tn_cr
