// The HTTPS repository end to end: a real server on an ephemeral port of
// 127.0.0.1 (in-process, on a thread), httplib's client verifying the server
// certificate, and raw TLS requests for targets a normal client would
// normalise. Each rule of PROTOCOL.md section 5 has a test.
#include "tn_cr/server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "stir/error.h"
#include "stir/exit_codes.h"
#include "stir/x509.h"
#include "support/hostile_peers.h"
#include "support/raw_clients.h"
#include "support/test_pki.h"
#include "test_files.h"
#include "tls_test_client.h"
#include "tn_cr/http_rules.h"
#include "tn_cr/repository.h"

namespace tn_cr {
namespace {

using stir::testing::TempDir;
using testing::https_client;
using testing::raw_get;
using testing::raw_tls_exchange;
namespace fs = std::filesystem;

constexpr const char* kName = "sp-2026-11.pem";
constexpr const char* kSecret = "OUTSIDE-THE-REPOSITORY-SECRET";

// Writes a file (creating folders) and returns its path.
std::string put_file(const std::string& path, const std::string& content, unsigned mode = 0644) {
  return stir::testing::write_file(path, content, mode);
}

std::string canonical(const std::string& pem) {
  return stir::chain_to_pem(stir::parse_pem_chain(pem));
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);
    pki_ = new stir::testing::ShakenPki(stir::testing::make_shaken_pki("1234"));
    other_ = new stir::testing::ShakenPki(stir::testing::make_shaken_pki("5678"));
    tls_ = new stir::testing::TlsPki(stir::testing::make_tls_pki());
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_;
    delete tls_;
  }

  void SetUp() override {
    repo_ = temp_.path() + "/repo";
    fs::create_directories(repo_);
    ca_file_ = put_file(temp_.path() + "/ca.pem", tls_->server_ca.certificate_pem());
    options_.repository_dir = repo_;
    options_.listen = "127.0.0.1";
    options_.port = 0;
    options_.tls_cert =
        put_file(temp_.path() + "/tls/server.pem",
                 tls_->server.certificate_pem() + tls_->server_ca.certificate_pem());
    options_.tls_key =
        put_file(temp_.path() + "/tls/server.key", tls_->server.private_key_pem(), 0600);
    options_.io_threads = 4;
    chain_ = canonical(pki_->chain_pem());
    ASSERT_EQ(Repository(repo_).publish(kName, chain_), PublishOutcome::kPublished);
  }

  void TearDown() override { stop(); }

  void start() {
    server_ = std::make_unique<Server>(options_, [this](std::string_view line) {
      std::lock_guard lock(log_mutex_);
      log_.emplace_back(line);
    });
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }

  void stop() {
    if (!server_) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }

  std::unique_ptr<httplib::SSLClient> client() const { return https_client(port_, ca_file_); }

  httplib::Result get(const std::string& path, const httplib::Headers& headers = {}) const {
    return client()->Get(path.c_str(), headers);
  }

  std::vector<std::string> log_lines() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }

  static stir::testing::ShakenPki* pki_;
  static stir::testing::ShakenPki* other_;
  static stir::testing::TlsPki* tls_;
  TempDir temp_;
  std::string repo_;
  std::string ca_file_;
  std::string chain_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

stir::testing::ShakenPki* ServerTest::pki_ = nullptr;
stir::testing::ShakenPki* ServerTest::other_ = nullptr;
stir::testing::TlsPki* ServerTest::tls_ = nullptr;

TEST_F(ServerTest, GetServesTheExactChainWithEveryHeader) {
  start();
  auto res = get(std::string("/") + kName);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, chain_);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/pem-certificate-chain");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "public, max-age=86400");
  EXPECT_EQ(res->get_header_value("ETag"), http_rules::make_etag(chain_));
  const auto st = stir::testing::stat_file(repo_ + "/" + kName);
  EXPECT_EQ(res->get_header_value("Last-Modified"),
            http_rules::format_http_date(st.st_mtim.tv_sec));
  EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(chain_.size()));
  EXPECT_FALSE(res->has_header("Location"));
  // The chain is end-entity first and links up.
  const auto served = stir::parse_pem_chain(res->body);
  stir::check_chain_links(served);
  EXPECT_EQ(stir::tn_auth_list_spc(served.front().get()), "1234");
}

TEST_F(ServerTest, OneAccessLogLinePerRequest) {
  start();
  ASSERT_TRUE(get(std::string("/") + kName));
  ASSERT_TRUE(get("/missing.pem"));
  stop();  // the logger runs after the response is written
  const auto lines = log_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind("GET /" + std::string(kName) + " 200 " + std::to_string(chain_.size()) +
                               " 127.0.0.1:",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[0].find("ms"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1].rfind("GET /missing.pem 404 ", 0), 0u) << lines[1];
}

TEST_F(ServerTest, MaxAgeIsConfigurableUpwardOnly) {
  options_.max_age_s = 7 * 86400;
  start();
  auto res = get(std::string("/") + kName);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Cache-Control"), "public, max-age=604800");
  stop();
  options_.max_age_s = 3600;
  try {
    Server server(options_, [](std::string_view) {});
    ADD_FAILURE() << "max_age_s 3600 accepted";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kConfig);
  }
}

TEST_F(ServerTest, HeadHasTheHeadersAndNoBody) {
  start();
  auto res = client()->Head((std::string("/") + kName).c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->body.empty());
  EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(chain_.size()));
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/pem-certificate-chain");
  EXPECT_EQ(res->get_header_value("ETag"), http_rules::make_etag(chain_));
  EXPECT_EQ(res->get_header_value("Cache-Control"), "public, max-age=86400");
  // HEAD of a missing name is 404 like GET.
  res = client()->Head("/missing.pem");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(ServerTest, OtherMethodsGet405WithAllow) {
  start();
  const std::string path = std::string("/") + kName;
  auto c = client();
  std::vector<httplib::Result> results;
  results.push_back(c->Post(path.c_str(), chain_, "application/pem-certificate-chain"));
  results.push_back(c->Put(path.c_str(), chain_, "application/pem-certificate-chain"));
  results.push_back(c->Patch(path.c_str(), "x", "text/plain"));
  results.push_back(c->Delete(path.c_str()));
  results.push_back(c->Options(path.c_str()));
  results.push_back(c->Post("/missing.pem", "", "text/plain"));
  for (auto& res : results) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 405);
    EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
  }
  // Without a body and without Content-Length too (issue 7: this was a 400).
  for (const char* method : {"TRACE", "CONNECT", "POST", "PUT", "DELETE", "BREW"}) {
    const auto raw = raw_tls_exchange(
        port_, ca_file_,
        std::string(method) + " /" + kName + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(raw.status, 405) << method << "\n" << raw.text;
    EXPECT_NE(raw.text.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << raw.text;
  }
  // The file is untouched.
  EXPECT_EQ(stir::testing::read_file(repo_ + "/" + kName), chain_);
}

TEST_F(ServerTest, IfNoneMatchGives304) {
  start();
  const std::string path = std::string("/") + kName;
  const std::string etag = http_rules::make_etag(chain_);
  for (const std::string& condition :
       {etag, std::string("*"), "\"nope\", " + etag, "W/" + etag, "\"a\",W/" + etag + ",\"b\""}) {
    auto res = get(path, {{"If-None-Match", condition}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 304) << condition;
    EXPECT_TRUE(res->body.empty());
    EXPECT_EQ(res->get_header_value("ETag"), etag);
    EXPECT_EQ(res->get_header_value("Cache-Control"), "public, max-age=86400");
  }
  auto res = get(path, {{"If-None-Match", "\"0000\""}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, chain_);
  // A condition on a missing name is still 404.
  res = get("/missing.pem", {{"If-None-Match", "*"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(ServerTest, IfModifiedSinceGives304UnlessIfNoneMatchSaysOtherwise) {
  start();
  const std::string path = std::string("/") + kName;
  const auto mtime = stir::testing::stat_file(repo_ + "/" + kName).st_mtim.tv_sec;
  auto res = get(path, {{"If-Modified-Since", http_rules::format_http_date(mtime)}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 304);
  res = get(path, {{"If-Modified-Since", http_rules::format_http_date(mtime + 3600)}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 304);
  res = get(path, {{"If-Modified-Since", http_rules::format_http_date(mtime - 86400)}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, chain_);
  res = get(path, {{"If-Modified-Since", "not a date"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = get(path, {{"If-None-Match", "\"other\""},
                   {"If-Modified-Since", http_rules::format_http_date(mtime + 3600)}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(ServerTest, NoListingAndUnknownNamesAre404) {
  start();
  for (const char* path : {"/", "/missing.pem", "/sp-2026-11", "/sp-2026-11.pem/", "/index.html",
                           "/repo/sp-2026-11.pem"}) {
    auto res = get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store") << path;
    EXPECT_EQ(res->body.find("BEGIN CERTIFICATE"), std::string::npos) << path;
  }
}

TEST_F(ServerTest, TraversalAttemptsNeverLeaveTheRepository) {
  // Content outside the repository folder, a symlink to it inside, a hidden
  // file inside, and a file in a sub-folder.
  put_file(temp_.path() + "/secret.pem", kSecret, 0644);
  fs::create_symlink("../secret.pem", repo_ + "/link.pem");
  fs::create_symlink(temp_.path(), repo_ + "/up");
  put_file(repo_ + "/.hidden.pem", kSecret, 0644);
  put_file(repo_ + "/sub/inner.pem", kSecret, 0644);
  start();

  const std::string nul_target("/x.pem\0", 7);
  const std::vector<std::string> targets = {
      "/../etc/passwd",
      "/%2e%2e/etc/passwd",
      "/%2E%2E%2Fetc%2Fpasswd",
      "/certs/..%2fsecret.pem",
      "/..%2fsecret.pem",
      "/%2e%2e%2fsecret.pem",
      "/../secret.pem",
      "/./../secret.pem",
      "//etc/passwd",
      "/a//b.pem",
      "/x.pem%00",
      nul_target,
      "/.hidden.pem",
      "/%2ehidden.pem",
      "/link.pem",
      "/up/secret.pem",
      "/sub/inner.pem",
      "/secret.pem",
      "/..\\secret.pem",
      "\\..\\secret.pem",
      "/sp-2026-11.pem/../../secret.pem",
      "/sp-2026-11.pem?../secret.pem",
      "https://127.0.0.1/../secret.pem",
      "/\xc3\xa9.pem",
      "/" + std::string(300, 'a') + ".pem",
      "/" + std::string(10000, 'a'),
  };
  for (const auto& target : targets) {
    const auto res = raw_get(port_, ca_file_, target);
    EXPECT_TRUE(res.status == 400 || res.status == 404)
        << "target " << target.substr(0, 60) << " gave\n"
        << res.text.substr(0, 300);
    EXPECT_EQ(res.text.find(kSecret), std::string::npos) << target.substr(0, 60);
    EXPECT_EQ(res.text.find("root:"), std::string::npos) << target.substr(0, 60);
    EXPECT_EQ(res.text.find("BEGIN CERTIFICATE"), std::string::npos) << target.substr(0, 60);
  }
  // The server still serves the real name afterwards.
  const auto ok = raw_get(port_, ca_file_, std::string("/") + kName);
  EXPECT_EQ(ok.status, 200) << ok.text;
}

// httplib drops a fragment from the request target before the handler sees
// it; what is left is judged like any other target.
TEST_F(ServerTest, AFragmentNamesNothingElse) {
  put_file(temp_.path() + "/secret.pem", kSecret, 0644);
  start();
  for (const std::string target :
       {"/sp-2026-11.pem#/../../secret.pem", "/#/../secret.pem", "/secret.pem#sp-2026-11.pem"}) {
    const auto res = raw_get(port_, ca_file_, target);
    EXPECT_EQ(res.text.find(kSecret), std::string::npos) << target;
    if (res.status == 200) {
      EXPECT_EQ(res.text.substr(res.text.find("\r\n\r\n") + 4), chain_) << target;
    } else {
      EXPECT_TRUE(res.status == 400 || res.status == 404) << target << "\n" << res.text;
    }
  }
}

TEST_F(ServerTest, NoResponseIsEverARedirect) {
  start();
  for (const char* target : {"/", "/certs", "/certs/", "/sp-2026-11.pem/", "//sp-2026-11.pem",
                             "/./sp-2026-11.pem", "/SP-2026-11.PEM"}) {
    const auto res = raw_get(port_, ca_file_, target);
    EXPECT_FALSE(res.status >= 300 && res.status < 400) << target << "\n" << res.text;
    EXPECT_EQ(res.text.find("Location:"), std::string::npos) << target;
  }
}

TEST_F(ServerTest, PathPrefixPutsNamesUnderAFolder) {
  options_.path_prefix = "/certs/";
  start();
  auto res = get(std::string("/certs/") + kName);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, chain_);
  res = get(std::string("/") + kName);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(server_->url(), "https://127.0.0.1:" + std::to_string(port_) + "/certs/");
}

TEST_F(ServerTest, PublishAndUnpublishShowWithoutRestart) {
  start();
  const Repository repository(repo_);
  auto res = get("/next.pem");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  ASSERT_EQ(repository.publish("next.pem", other_->chain_pem()), PublishOutcome::kPublished);
  res = get("/next.pem");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, canonical(other_->chain_pem()));
  repository.unpublish("next.pem");
  res = get("/next.pem");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(ServerTest, RefusedChangeKeepsTheOldContentByteIdentical) {
  start();
  const std::string path = std::string("/") + kName;
  auto before = get(path);
  ASSERT_TRUE(before);
  try {
    Repository(repo_).publish(kName, other_->chain_pem());
    ADD_FAILURE() << "different content under a published name accepted";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kAlreadyExists);
  }
  auto after = get(path);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->body, before->body);
  EXPECT_EQ(after->get_header_value("ETag"), before->get_header_value("ETag"));
}

TEST_F(ServerTest, RangeRequestsNeverGetAPartialBodyWith200) {
  start();
  auto res = get(std::string("/") + kName, {{"Range", "bytes=0-9"}});
  ASSERT_TRUE(res);
  if (res->status == 200) {
    EXPECT_EQ(res->body, chain_);
  } else {
    EXPECT_EQ(res->status, 206);
    EXPECT_EQ(res->body, chain_.substr(0, 10));
  }
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  auto c = client();
  c->set_keep_alive(true);
  for (int i = 0; i < 20; ++i) {
    auto res = c->Get((std::string("/") + kName).c_str());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Connection"), "");
  }
  // Twenty answers, one TCP connection accepted.
  EXPECT_EQ(server_->accepted_connections(), 1u);
}

// Readers GET names in a loop while a writer publishes them: every answer
// is a 404 or the complete chain published under that name.
TEST_F(ServerTest, ReadersNeverSeeAPartialChainWhilePublishing) {
  constexpr int kChains = 24;
  std::vector<std::string> contents;
  for (int i = 0; i < kChains; ++i) {
    contents.push_back(
        canonical(stir::testing::make_shaken_pki(std::to_string(2000 + i)).chain_pem()));
  }
  start();
  std::atomic<bool> writer_done{false};
  std::atomic<int> complete{0};
  auto reader = [&] {
    auto c = client();
    c->set_keep_alive(true);
    bool last_pass = false;
    for (int pass = 0; pass < 2000 && !last_pass; ++pass) {
      last_pass = writer_done;
      for (int i = 0; i < kChains; ++i) {
        auto res = c->Get(("/chain-" + std::to_string(i) + ".pem").c_str());
        ASSERT_TRUE(res);
        if (res->status == 404) continue;
        ASSERT_EQ(res->status, 200);
        ASSERT_EQ(res->body, contents[i]);
        ++complete;
      }
    }
  };
  std::thread reader_a(reader), reader_b(reader);
  const Repository repository(repo_);
  for (int i = 0; i < kChains; ++i) {
    ASSERT_EQ(repository.publish("chain-" + std::to_string(i) + ".pem", contents[i]),
              PublishOutcome::kPublished);
  }
  writer_done = true;
  reader_a.join();
  reader_b.join();
  EXPECT_GE(complete.load(), 2 * kChains);
}

TEST_F(ServerTest, StopFinishesAndRunReturns) {
  start();
  ASSERT_TRUE(get(std::string("/") + kName));
  stop();
  auto res = https_client(port_, ca_file_)->Get((std::string("/") + kName).c_str());
  EXPECT_FALSE(res);
}

TEST_F(ServerTest, StopBeforeRunMakesRunReturnAtOnce) {
  Server server(options_, [](std::string_view) {});
  server.bind();
  server.stop();
  server.run();
  SUCCEED();
}

TEST_F(ServerTest, BadTlsMaterialIsAConfigError) {
  options_.tls_key =
      put_file(temp_.path() + "/tls/other.key", tls_->client.private_key_pem(), 0600);
  try {
    Server server(options_, [](std::string_view) {});
    ADD_FAILURE() << "a key that does not match the certificate was accepted";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kConfig) << e.what();
  }
  options_.tls_key = temp_.path() + "/missing.key";
  EXPECT_THROW(Server(options_, [](std::string_view) {}), stir::Error);
  options_.repository_dir = temp_.path() + "/no-such-folder";
  options_.tls_key = temp_.path() + "/tls/server.key";
  try {
    Server server(options_, [](std::string_view) {});
    ADD_FAILURE();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kNotFound) << e.what();
  }
}

// The TLS files pass the same owner and mode checks as sks's
// (stir/http/tls_files.h): a key others can read, or a certificate others
// can write, is refused (exit 77) before the server listens.
TEST_F(ServerTest, TlsKeyReadableByOthersOrWritableCertificateIsRefused) {
  const auto refusal = [&]() -> std::string {
    try {
      Server server(options_, [](std::string_view) {});
      return "";
    } catch (const stir::Error& e) {
      return std::to_string(stir::exit_code_for(e.code())) + " " + e.what();
    }
  };
  EXPECT_EQ(refusal(), "");
  fs::permissions(options_.tls_key, fs::perms(0644));
  EXPECT_EQ(refusal(), "77 TLS key " + options_.tls_key +
                           " has mode 0644; it must not be readable by others (chmod 600, or 640 "
                           "with owner root)");
  fs::permissions(options_.tls_key, fs::perms(0600));
  fs::permissions(options_.tls_cert, fs::perms(0666));
  EXPECT_EQ(refusal(), "77 TLS certificate chain " + options_.tls_cert +
                           " has mode 0666; it must not be writable by group or others (chmod "
                           "go-w)");
  fs::permissions(options_.tls_cert, fs::perms(0644));
  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's owner needs root";
  ASSERT_EQ(::chown(options_.tls_key.c_str(), 65534, 65534), 0);
  EXPECT_EQ(refusal(), "77 TLS key " + options_.tls_key +
                           " is owned by uid 65534; it must be owned by the user tn-cr runs as "
                           "(uid 0) or root");
  ASSERT_EQ(::chown(options_.tls_key.c_str(), 0, 0), 0);
  EXPECT_EQ(refusal(), "");
}

// Verifiers all over the network fetch at once: 500 new TLS connections at
// once, none refused (the listen queue holds them), every one served.
TEST_F(ServerTest, BurstOfFiveHundredNewTlsConnectionsAllServed) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  // 500 verifiers, all on 127.0.0.1 here, each sending its ClientHello
  // only when a client thread gets to it: no per-address cap, and the
  // first byte may take as long as the handshake.
  options_.max_handshakes_per_address = 0;
  options_.first_byte_timeout_ms = options_.handshake_timeout_ms;
  start();
  const auto burst = stir::testing::tls_burst(
      port_, 500, ca_file_,
      std::string("GET /") + kName + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(burst.refused, 0);
  EXPECT_EQ(burst.served, 500);
}

// Idle TCP connections hold no thread: a verifier's fetch is answered while
// 1,000 of them are open, and they are closed at the handshake timeout.
TEST_F(ServerTest, ThousandIdleConnectionsDoNotBlockAFetch) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  options_.handshake_timeout_ms = 500;
  start();
  const auto idle = stir::testing::open_idle_connections(port_, 1000);
  ASSERT_EQ(idle.size(), 1000u) << "an idle connection was refused";
  auto res = get(std::string("/") + kName);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, chain_);
  EXPECT_EQ(stir::testing::count_closed_by_peer(
                idle, std::chrono::steady_clock::now() + std::chrono::seconds(60)),
            1000);
}

TEST_F(ServerTest, ConnectionsOverTheCapAreClosedAtOnce) {
  options_.max_connections = 5;
  // The hard cap alone: no pending connection is evicted for a newer one.
  options_.reserved_connection_percent = 0;
  options_.max_handshakes_per_address = 0;
  options_.first_byte_timeout_ms = 60000;
  start();
  std::vector<int> held;
  for (int i = 0; i < 5; ++i) held.push_back(stir::testing::connect_loopback(port_));
  // Polls until the five are being served, then one more is closed at once.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server_->accepted_connections() < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  const int extra = stir::testing::connect_loopback(port_);
  EXPECT_TRUE(stir::testing::closed_by_peer(extra, deadline));
  EXPECT_EQ(server_->accepted_connections(), 5u);
  ::close(extra);
  for (int fd : held) ::close(fd);
}

// ---- Issue 17: hostile peers ------------------------------------------------

// Items 1 and 7: no route takes a body, so any Transfer-Encoding is 400 and
// close at the header: an endless chunk extension is never buffered, a
// smuggled request never read.
TEST_F(ServerTest, TransferEncodingIs400AndCloseSoEndlessChunkFramingHoldsNothing) {
  ::signal(SIGPIPE, SIG_IGN);
  start();
  const std::size_t before = stir::testing::resident_bytes();
  for (const std::string method : {"GET", "POST"}) {
    stir::testing::HostileTlsClient c(port_, ca_file_);
    ASSERT_TRUE(c.handshake());
    const auto result = c.flood(
        method + " /" + kName + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=",
        std::string(16384, 'a'), std::size_t{16} << 20);
    EXPECT_EQ(stir::testing::status_of(result.answer), 400) << result.answer;
    EXPECT_TRUE(result.closed);
    EXPECT_LT(result.sent, std::size_t{16} << 20);
  }
  const std::size_t after = stir::testing::resident_bytes();
  std::printf("[ figures  ] tn-cr RSS %zu KiB -> %zu KiB after endless chunk extensions\n",
              before / 1024, after / 1024);
  if (stir::testing::kRssMeasuresTheCode) {
    EXPECT_LT(after, before + (std::size_t{2} << 20));
  }
  // `chunked, gzip`: the smuggled GET behind it is never answered.
  stir::testing::HostileTlsClient c(port_, ca_file_);
  ASSERT_TRUE(c.handshake());
  ASSERT_TRUE(c.write(std::string("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
                                  "gzip\r\n\r\nGET /") +
                      kName + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  c.finish_sending();
  const std::string answer = c.read_to_end();
  EXPECT_EQ(stir::testing::status_of(answer), 400) << answer;
  EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << answer;
}

// Item 6: idle sockets from eight addresses, more than max_connections and
// held past the test: a verifier's fetch is still served.
TEST_F(ServerTest, IdleFloodFromManyAddressesDoesNotBlockAFetch) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  options_.max_connections = 64;
  options_.max_handshakes_per_address = 8;
  options_.first_byte_timeout_ms = 60000;
  options_.handshake_timeout_ms = 60000;
  start();
  std::vector<int> idle;
  for (int i = 0; i < 160; ++i) {
    const int fd = stir::testing::connect_from(port_, "127.0.0." + std::to_string(2 + i % 8));
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server_->accepted_connections() < 160 && std::chrono::steady_clock::now() < deadline) {
    ::poll(nullptr, 0, 5);
  }
  EXPECT_EQ(server_->accepted_connections(), 160u);
  auto res = get(std::string("/") + kName);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  for (int fd : idle) ::close(fd);
}

// GET /metrics (tn_cr/metrics.h): off unless metrics_clients is set; then
// only a listed client certificate from client_ca gets it, while verifiers
// without a certificate still fetch chains.
class MetricsTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    options_.client_ca =
        put_file(temp_.path() + "/tls/clients-ca.pem", tls_->client_ca.certificate_pem());
    options_.metrics_clients = {"prometheus.example.net"};
    scraper_ = client_files("scraper", "prometheus.example.net");
    other_client_ = client_files("other", "sbc9.example.net");
  }

  // A client certificate from the test client CA; returns {cert, key} paths.
  std::pair<std::string, std::string> client_files(const std::string& file,
                                                   const std::string& name) {
    stir::testing::CertSpec spec;
    spec.common_name = name;
    spec.dns_names = {name};
    spec.tls_client = true;
    const auto cert = stir::testing::issue(spec, &tls_->client_ca);
    return {put_file(temp_.path() + "/tls/" + file + ".pem", cert.certificate_pem()),
            put_file(temp_.path() + "/tls/" + file + ".key", cert.private_key_pem())};
  }

  httplib::Result scrape(const std::pair<std::string, std::string>& identity) const {
    httplib::SSLClient client("127.0.0.1", port_, identity.first, identity.second);
    client.set_ca_cert_path(ca_file_);
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    return client.Get("/metrics");
  }

  // The scrape's value of one series (exact name and labels), or -1.
  double value_of(const std::string& body, const std::string& series) const {
    const std::string prefix = series + " ";
    for (std::size_t at = 0; at < body.size();) {
      const std::size_t end = std::min(body.find('\n', at), body.size());
      const std::string_view line(body.data() + at, end - at);
      if (line.starts_with(prefix)) return std::stod(std::string(line.substr(prefix.size())));
      at = end + 1;
    }
    return -1;
  }

  // Scrapes until `series` has `want` (the access log, which counts, runs
  // after the response is written); returns the last scrape's body.
  std::string scrape_until(const std::string& series, double want) const {
    std::string body;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
      auto res = scrape(scraper_);
      if (res && res->status == 200) body = res->body;
      if (value_of(body, series) == want) break;
      ::poll(nullptr, 0, 10);
    } while (std::chrono::steady_clock::now() < deadline);
    return body;
  }

  std::pair<std::string, std::string> scraper_;
  std::pair<std::string, std::string> other_client_;
};

TEST_F(ServerTest, NoMetricsWithoutMetricsClients) {
  start();
  auto res = get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 404);
}

TEST_F(MetricsTest, OnlyListedClientsGetMetricsAndVerifiersStayAnonymous) {
  start();
  auto anonymous = get("/metrics");
  ASSERT_TRUE(anonymous) << httplib::to_string(anonymous.error());
  EXPECT_EQ(anonymous->status, 403);
  EXPECT_EQ(anonymous->body, "this client identity is not in server.metrics_clients\n");
  auto other = scrape(other_client_);
  ASSERT_TRUE(other) << httplib::to_string(other.error());
  EXPECT_EQ(other->status, 403);
  auto chain = get(std::string("/") + kName);  // a verifier: no client certificate
  ASSERT_TRUE(chain) << httplib::to_string(chain.error());
  EXPECT_EQ(chain->status, 200);
  EXPECT_EQ(chain->body, chain_);
  auto post = client()->Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET");
  auto res = scrape(scraper_);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res->body.find("# TYPE tn_cr_requests_total counter\n"), std::string::npos);
}

TEST_F(MetricsTest, CountsRequestsBytesFetchesChainsAndExpiry) {
  // A file with a servable name that is no chain, and one too large to serve.
  put_file(repo_ + "/garbage.pem", "not a certificate\n");
  put_file(repo_ + "/huge.pem", std::string(kMaxChainBytes + 1, 'A'));
  start();
  for (int i = 0; i < 2; ++i) ASSERT_EQ(get(std::string("/") + kName)->status, 200);
  ASSERT_EQ(
      get(std::string("/") + kName, {{"If-None-Match", http_rules::make_etag(chain_)}})->status,
      304);
  ASSERT_EQ(client()->Head((std::string("/") + kName).c_str())->status, 200);
  ASSERT_EQ(get("/missing.pem")->status, 404);
  ASSERT_EQ(get("/huge.pem")->status, 500);

  const std::string body =
      scrape_until("tn_cr_requests_total{route=\"chain\",code=\"500\",outcome=\"error\"}", 1);
  EXPECT_EQ(value_of(body, "tn_cr_requests_total{route=\"chain\",code=\"200\",outcome=\"served\"}"),
            3);
  EXPECT_EQ(
      value_of(body, "tn_cr_requests_total{route=\"chain\",code=\"304\",outcome=\"not_modified\"}"),
      1);
  EXPECT_EQ(
      value_of(body, "tn_cr_requests_total{route=\"chain\",code=\"404\",outcome=\"not_found\"}"),
      1);
  // Never answered, but there from the start (so the first one alerts).
  EXPECT_EQ(value_of(body,
                     "tn_cr_requests_total{route=\"chain\",code=\"405\",outcome=\"method_"
                     "not_allowed\"}"),
            0);
  EXPECT_EQ(value_of(body, "tn_cr_chain_fetches_total{name=\"" + std::string(kName) + "\"}"), 4);
  EXPECT_GE(value_of(body, "tn_cr_response_bytes_total"), 2.0 * static_cast<double>(chain_.size()));
  EXPECT_EQ(value_of(body, "tn_cr_chains{state=\"valid\"}"), 1);
  EXPECT_EQ(value_of(body, "tn_cr_chains{state=\"invalid\"}"), 2);
  // make_shaken_pki's leaf: notAfter 30 days from now.
  const double expiry =
      value_of(body, "tn_cr_chain_expiry_seconds{name=\"" + std::string(kName) + "\"}");
  EXPECT_GT(expiry, 30 * 86400 - 120);
  EXPECT_LE(expiry, 30 * 86400);
  EXPECT_EQ(value_of(body, "tn_cr_chain_expiry_seconds{name=\"garbage.pem\"}"), -1);
  EXPECT_EQ(value_of(body, "tn_cr_newest_chain_timestamp_seconds"),
            static_cast<double>(stir::testing::stat_file(repo_ + "/" + kName).st_mtim.tv_sec));
  EXPECT_GE(value_of(body, "tn_cr_connections_accepted_total"), 7);

  // A chain published while the server runs shows at the next scrape.
  ASSERT_EQ(Repository(repo_).publish("other.pem", canonical(other_->chain_pem())),
            PublishOutcome::kPublished);
  const std::string after = scrape_until("tn_cr_chains{state=\"valid\"}", 2);
  EXPECT_EQ(value_of(after, "tn_cr_chain_fetches_total{name=\"other.pem\"}"), 0);
  // The metrics route counts its own answers too.
  EXPECT_GE(
      value_of(after, "tn_cr_requests_total{route=\"metrics\",code=\"200\",outcome=\"served\"}"),
      1);
}

TEST_F(MetricsTest, MetricsClientsWithoutClientCaOrTlsIsAConfigError) {
  for (const bool plain : {false, true}) {
    options_.client_ca = plain ? options_.client_ca : "";
    options_.lab_plain_http = plain;
    try {
      Server server(options_, [](std::string_view) {});
      ADD_FAILURE() << "no error";
    } catch (const stir::Error& e) {
      EXPECT_EQ(e.code(), stir::ErrorCode::kConfig);
      EXPECT_NE(std::string(e.what()).find("metrics_clients needs client_ca and TLS"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace tn_cr
