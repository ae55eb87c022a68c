// Issue 17 against stir::http::Server with real TLS on 127.0.0.1:0: each
// attack of the issue, as an attacker sends it, and what the server must
// do instead: endless chunk framing is refused within the per-connection
// memory budget, smuggling framings are 400 and close, a spoofed client
// name never gets in, a resumed session dies with its certificate, and an
// idle-socket flood from many addresses leaves room for a real client.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "hostile_peers.h"
#include "raw_clients.h"
#include "stir/http/server.h"
#include "stir/http/tls.h"
#include "test_files.h"
#include "test_pki.h"

namespace stir::http {
namespace {

using namespace std::chrono_literals;
using stir::testing::FloodResult;
using stir::testing::HostileTlsClient;
using stir::testing::status_of;

class HostilePeerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);
    pki_ = new stir::testing::TlsPki(stir::testing::make_tls_pki("client.example.net"));
  }
  static void TearDownTestSuite() { delete pki_; }

  void SetUp() override {
    const std::string d = dir_.path();
    stir::testing::write_file(d + "/server.pem",
                              pki_->server.certificate_pem() + pki_->server_ca.certificate_pem());
    stir::testing::write_file(d + "/server.key", pki_->server.private_key_pem(), 0600);
    stir::testing::write_file(d + "/server-ca.pem", pki_->server_ca.certificate_pem());
    stir::testing::write_file(d + "/client-ca.pem", pki_->client_ca.certificate_pem());
    write_client("client", pki_->client);
    options_.io_threads = 2;
    options_.router.add("GET", "/hello", [](const Request&, const RequestContext& context) {
      std::string names;
      for (const auto& name : context.connection.client_names) names += " " + name;
      return Response::text(200, "hello" + names + "\n", "text/plain");
    });
    options_.router.add("POST", "/echo", [](const Request& request, const RequestContext&) {
      return Response::text(200, "echo:" + std::string(request.body), "text/plain");
    });
  }
  void TearDown() override {
    if (!server_) return;
    server_->stop(2s);
    thread_.join();
  }

  void write_client(const std::string& name, const stir::testing::TestCert& cert) const {
    stir::testing::write_file(dir_.path() + "/" + name + ".pem", cert.certificate_pem());
    stir::testing::write_file(dir_.path() + "/" + name + ".key", cert.private_key_pem(), 0600);
  }
  stir::testing::TestCert client_cert(const std::string& cn, std::int64_t not_after_s = 86400) {
    stir::testing::CertSpec spec;
    spec.common_name = cn;
    spec.tls_client = true;
    spec.not_after_offset_s = not_after_s;
    return stir::testing::issue(spec, &pki_->client_ca);
  }

  void start(bool mutual_tls = false) {
    const std::string d = dir_.path();
    TlsSettings tls{d + "/server.pem", d + "/server.key", mutual_tls ? d + "/client-ca.pem" : ""};
    options_.tls = make_server_tls_context(tls);
    budget_ = connection_budget(options_, 4096);
    server_ = std::make_unique<Server>(std::move(options_));
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }

  std::string ca_file() const { return dir_.path() + "/server-ca.pem"; }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  // `request` on a new connection (as client `name`, if given); the
  // answer, up to the close.
  std::string exchange(const std::string& request, const std::string& name = "") {
    HostileTlsClient c(port_, ca_file(), name.empty() ? "" : path(name + ".pem"),
                       name.empty() ? "" : path(name + ".key"));
    if (!c.handshake() || !c.write(request)) return {};
    c.finish_sending();
    return c.read_to_end();
  }

  template <class F>
  static bool eventually(F condition, std::chrono::seconds bound = 30s) {
    const auto deadline = Clock::now() + bound;
    while (!condition()) {
      if (Clock::now() > deadline) return false;
      ::poll(nullptr, 0, 5);
    }
    return true;
  }

  // Four connections at once send `head` then `filler` for up to 8 MiB
  // each. Each must get a 400 before its flood ends, and the process's
  // resident memory must grow by no more than four per-connection budgets
  // (plus 2 MiB for the clients' own TLS state and threads).
  void expect_refused_within_budget(const std::string& head, const std::string& filler) {
    // Warm up: allocator arenas, TLS state of the I/O threads.
    EXPECT_EQ(status_of(exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")),
              200);
    const std::size_t before = stir::testing::resident_bytes();
    std::atomic<std::size_t> peak{before};
    std::atomic<bool> done{false};
    std::thread sampler([&] {
      while (!done) {
        const std::size_t now = stir::testing::resident_bytes();
        std::size_t seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        ::poll(nullptr, 0, 2);
      }
    });
    constexpr int kConnections = 4;
    std::vector<FloodResult> results(kConnections);
    std::vector<std::thread> attackers;
    for (int i = 0; i < kConnections; ++i) {
      attackers.emplace_back([&, i] {
        HostileTlsClient c(port_, ca_file());
        if (c.handshake()) results[i] = c.flood(head, filler, std::size_t{8} << 20);
      });
    }
    for (auto& t : attackers) t.join();
    done = true;
    sampler.join();
    const std::size_t growth = peak.load() - before;
    std::printf(
        "[ figures  ] RSS %zu KiB -> peak %zu KiB (+%zu KiB) for %d connections; "
        "budget %zu KiB each\n",
        before / 1024, peak.load() / 1024, growth / 1024, kConnections, budget_ / 1024);
    for (const auto& r : results) {
      EXPECT_EQ(status_of(r.answer), 400) << r.answer.substr(0, 200);
      EXPECT_NE(r.answer.find("Connection: close"), std::string::npos);
      EXPECT_TRUE(r.closed);
      // Answered before the flood's end (what the socket buffers and the
      // server's bounded discard of the rest took is counted as sent).
      EXPECT_LT(r.sent, std::size_t{8} << 20) << "the server kept reading";
    }
    if (stir::testing::kRssMeasuresTheCode) {
      EXPECT_LE(growth, kConnections * budget_ + (std::size_t{2} << 20));
    }
    // The server still answers.
    EXPECT_EQ(status_of(exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")),
              200);
  }

  static stir::testing::TlsPki* pki_;
  stir::testing::TempDir dir_;
  Options options_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::size_t budget_ = 0;
};

stir::testing::TlsPki* HostilePeerTest::pki_ = nullptr;

constexpr const char* kChunkedPost =
    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

// Item 1: `5;a=aaaa...` with no line end.
TEST_F(HostilePeerTest, EndlessChunkExtensionIsRefusedWithinTheBudget) {
  start();
  expect_refused_within_budget(std::string(kChunkedPost) + "5;a=", std::string(16384, 'a'));
}

// Item 1: an endless run of zeros as the chunk size.
TEST_F(HostilePeerTest, EndlessZerosAsChunkSizeAreRefusedWithinTheBudget) {
  start();
  expect_refused_within_budget(kChunkedPost, std::string(16384, '0'));
}

// Item 1: the last chunk, then an endless trailer field.
TEST_F(HostilePeerTest, EndlessTrailerIsRefusedWithinTheBudget) {
  start();
  expect_refused_within_budget(std::string(kChunkedPost) + "5\r\nhello\r\n0\r\nX-Trailer: ",
                               std::string(16384, 't'));
}

// Item 1: many short chunks, each with an extension: the metadata counts.
TEST_F(HostilePeerTest, ManyChunkExtensionsCountAgainstTheHeaderLimit) {
  start();
  std::string filler;
  while (filler.size() < 16000) filler += "1;ext=" + std::string(100, 'e') + "\r\nx\r\n";
  expect_refused_within_budget(kChunkedPost, filler);
}

// Item 1: chunk size lines padded with zeros (no extension at all): the
// body's framing counts, not only its data.
TEST_F(HostilePeerTest, LongChunkSizeLinesCountAgainstTheLimits) {
  start();
  std::string filler;
  while (filler.size() < 16000) filler += std::string(7000, '0') + "1\r\nx\r\n";
  expect_refused_within_budget(kChunkedPost, filler);
}

// Items 1 and 7: framings a proxy may read another way are 400 and close;
// the bytes behind them are never read as a second request.
TEST_F(HostilePeerTest, SmuggledRequestsAre400AndClose) {
  start();
  const std::string smuggled = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::vector<std::string> attacks = {
      // chunked not final: no framing, the body would be a second request
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" + smuggled,
      // an unknown coding framed by Content-Length
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: " +
          std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled,
      // both, chunked first
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n" +
          smuggled,
      // two Transfer-Encoding fields
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n" +
          smuggled,
      // a body where none is needed
      "GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
  };
  for (const auto& attack : attacks) {
    const std::string answer = exchange(attack);
    EXPECT_EQ(status_of(answer), 400) << attack << "\n--\n" << answer;
    EXPECT_EQ(answer.find("hello"), std::string::npos) << "smuggled request served: " << answer;
    EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << "two responses: " << answer;
  }
  // A plain chunked body is still read.
  const std::string answer =
      exchange(std::string(kChunkedPost) +
               "5\r\nhello\r\n0\r\n\r\n"
               "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_NE(answer.find("echo:hello"), std::string::npos) << answer;
}

// Item 4: a NUL or a newline in the CN never makes the client another one.
TEST_F(HostilePeerTest, ClientNameWithNulOrNewlineIsRefusedInTheHandshake) {
  write_client("nul", client_cert(std::string("client.example.net\0.attacker.net", 32)));
  write_client("newline", client_cert("client.example.net\nforged log line"));
  write_client("control", client_cert("client.example.net\x1b[2J"));
  start(true);
  const std::string get = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(exchange(get, "nul"), "");
  EXPECT_EQ(exchange(get, "newline"), "");
  EXPECT_EQ(exchange(get, "control"), "");
  // The real client is served and named by exact bytes.
  const std::string answer = exchange(get, "client");
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_NE(answer.find("hello client.example.net client.example.net\n"), std::string::npos)
      << answer;
}

TEST(CertificateNames, ReadWithTheirLengthsAndRefusedWithControls) {
  const auto pki = stir::testing::make_tls_pki("sbc.example.net");
  std::string why;
  EXPECT_EQ(certificate_names(pki.client.certificate.get(), &why),
            (std::vector<std::string>{"sbc.example.net", "sbc.example.net"}));
  EXPECT_EQ(why, "");
  stir::testing::CertSpec spec;
  spec.common_name = std::string("ops.example.net\0.attacker.net", 29);
  const auto nul = stir::testing::issue(spec, &pki.client_ca);
  EXPECT_TRUE(certificate_names(nul.certificate.get(), &why).empty());
  EXPECT_EQ(why, "the CN holds a NUL or control character");
  EXPECT_EQ(loggable("a\nb\0c"), "a\\x0ab");
  EXPECT_EQ(loggable(std::string("a\nb\0c", 5)), "a\\x0ab\\x00c");
}

// Item 5: a session saved while the certificate was valid is resumed
// (without any certificate) once it has expired: the server closes it.
TEST_F(HostilePeerTest, ResumedSessionOfAnExpiredCertificateGetsNothing) {
  const std::int64_t lifetime_s = 4;
  const auto soon = client_cert("client.example.net", lifetime_s);
  const std::time_t not_after = std::time(nullptr) + lifetime_s;
  write_client("soon", soon);
  start(true);
  const std::string get = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  SSL_SESSION* saved = nullptr;
  {
    HostileTlsClient first(port_, ca_file(), path("soon.pem"), path("soon.key"));
    ASSERT_TRUE(first.handshake());
    ASSERT_TRUE(first.write(get));
    // The answer comes after the TLS 1.3 tickets: the session is complete.
    std::string answer;
    ASSERT_TRUE(eventually([&] {
      answer += first.read_to_end(0s);
      return answer.find("hello client.example.net") != std::string::npos;
    })) << answer;
    saved = first.session();
  }
  ASSERT_NE(saved, nullptr);
  {
    // Before expiry the session resumes, without a certificate.
    HostileTlsClient again(port_, ca_file(), "", "", saved);
    ASSERT_TRUE(again.handshake());
    ASSERT_TRUE(again.reused());
    ASSERT_TRUE(again.write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_NE(again.read_to_end().find("hello client.example.net"), std::string::npos);
  }
  ASSERT_TRUE(eventually([&] { return std::time(nullptr) > not_after + 1; }, 60s));
  {
    HostileTlsClient late(port_, ca_file(), "", "", saved);
    const bool handshake = late.handshake();
    const std::string answer =
        handshake && late.write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            ? late.read_to_end()
            : "";
    EXPECT_EQ(answer, "") << "the expired client was served";
  }
  SSL_SESSION_free(saved);
  EXPECT_GE(server_->stats().refused_resumptions, 1u);
  // A full handshake with the expired certificate fails as before.
  EXPECT_EQ(exchange(get, "soon"), "");
}

// Item 5: each resumption brings a fresh ticket, but a chain of them ends
// at the session lifetime counted from the full handshake.
TEST_F(HostilePeerTest, RenewedTicketsDoNotOutliveTheSessionLifetime) {
  const std::string d = dir_.path();
  TlsSettings tls{d + "/server.pem", d + "/server.key", d + "/client-ca.pem"};
  tls.session_lifetime_s = 3;
  options_.tls = make_server_tls_context(tls);
  server_ = std::make_unique<Server>(std::move(options_));
  port_ = server_->bind();
  thread_ = std::thread([this] { server_->serve(); });
  const std::string get = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::time_t authenticated = std::time(nullptr);
  SSL_SESSION* saved = nullptr;
  {
    HostileTlsClient first(port_, ca_file(), path("client.pem"), path("client.key"));
    ASSERT_TRUE(first.handshake());
    ASSERT_TRUE(first.write(get));
    ASSERT_EQ(status_of(first.read_to_end()), 200);
    saved = first.session();
  }
  // Resumes (without a certificate) every 2 s on the newest ticket.
  bool refused = false;
  for (int round = 0; round < 4 && !refused; ++round) {
    const std::time_t at = std::time(nullptr) + 2;
    ASSERT_TRUE(eventually([&] { return std::time(nullptr) >= at; }));
    HostileTlsClient again(port_, ca_file(), "", "", saved);
    const bool handshake = again.handshake();
    const std::string answer = handshake && again.write(get) ? again.read_to_end() : "";
    if (status_of(answer) == 200) {
      EXPECT_TRUE(again.reused());
      // Whole seconds on both sides: served at most lifetime + 1 s after.
      EXPECT_LE(std::time(nullptr) - authenticated, 4) << "served too late";
      SSL_SESSION_free(saved);
      saved = again.session();
    } else {
      refused = true;
    }
  }
  SSL_SESSION_free(saved);
  EXPECT_TRUE(refused) << "the renewed tickets kept the session alive";
}

TEST_F(HostilePeerTest, NoResumptionWhenTheSessionLifetimeIsZero) {
  const std::string d = dir_.path();
  TlsSettings tls{d + "/server.pem", d + "/server.key", d + "/client-ca.pem"};
  tls.session_lifetime_s = 0;
  options_.tls = make_server_tls_context(tls);
  server_ = std::make_unique<Server>(std::move(options_));
  port_ = server_->bind();
  thread_ = std::thread([this] { server_->serve(); });
  SSL_SESSION* saved = nullptr;
  {
    HostileTlsClient first(port_, ca_file(), path("client.pem"), path("client.key"));
    ASSERT_TRUE(first.handshake());
    ASSERT_TRUE(first.write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(status_of(first.read_to_end()), 200);
    saved = first.session();
  }
  HostileTlsClient again(port_, ca_file(), path("client.pem"), path("client.key"), saved);
  ASSERT_TRUE(again.handshake());
  EXPECT_FALSE(again.reused());
  SSL_SESSION_free(saved);
}

// Item 6: idle sockets from eight addresses, more than the connection cap,
// held open far longer than the test (the timeouts are not the defence):
// a client with a certificate still gets its answer.
TEST_F(HostilePeerTest, IdleFloodFromManyAddressesLeavesRoomForAnAuthenticatedClient) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  options_.max_connections = 200;
  options_.max_handshakes_per_address = 16;
  options_.first_byte_timeout = 120s;
  options_.handshake_timeout = 120s;
  start(true);
  const std::size_t before = stir::testing::resident_bytes();
  std::vector<int> idle;
  for (int i = 0; i < 320; ++i) {
    const int fd = stir::testing::connect_from(port_, "127.0.0." + std::to_string(2 + i % 8));
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  ASSERT_TRUE(eventually([&] { return server_->stats().accepted_connections >= 320; }))
      << server_->stats().accepted_connections;
  const Stats during = server_->stats();
  EXPECT_LE(during.pending_connections, 8u * 16u);
  EXPECT_GE(during.evicted_connections, 320u - 8u * 16u);
  const std::string answer =
      exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "client");
  EXPECT_EQ(status_of(answer), 200) << answer;
  const std::size_t during_rss = stir::testing::resident_bytes();
  // The flood ends: its memory goes back to the system.
  for (int fd : idle) ::close(fd);
  EXPECT_TRUE(eventually([&] { return server_->stats().memory_trims >= 1; }))
      << server_->stats().open_connections;
  std::printf(
      "[ figures  ] RSS %zu KiB before the flood, %zu KiB with it, %zu KiB after; "
      "%llu evicted\n",
      before / 1024, during_rss / 1024, stir::testing::resident_bytes() / 1024,
      static_cast<unsigned long long>(server_->stats().evicted_connections));
}

// Item 6: a socket that never sends its ClientHello is closed at the
// short first-byte deadline, long before the handshake timeout.
TEST_F(HostilePeerTest, SilentSocketClosedAtTheFirstByteDeadline) {
  options_.first_byte_timeout = 200ms;
  options_.handshake_timeout = 120s;
  start();
  const int fd = stir::testing::connect_loopback(port_);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(stir::testing::closed_by_peer(fd, Clock::now() + 60s));
  ::close(fd);
}

}  // namespace
}  // namespace stir::http
