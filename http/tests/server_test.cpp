// stir::http::Server with real sockets on 127.0.0.1:0 and real TLS clients
// (httplib's client, raw OpenSSL, raw TCP): the limits that keep a server
// answering under bursts, idle and slow clients, oversize requests and a
// full worker pool; keep-alive; the TLS 1.3 certificate-required alert;
// the drain.
#include "stir/http/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <signal.h>

#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "raw_clients.h"
#include "stir/error.h"
#include "stir/http/tls.h"
#include "test_files.h"

namespace stir::http {
namespace {

using namespace std::chrono_literals;
using stir::testing::connect_loopback;
using stir::testing::RawTlsClient;
using stir::testing::status_of;

class HttpServerTest : public ::testing::Test {
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
    stir::testing::write_file(d + "/client.pem", pki_->client.certificate_pem());
    stir::testing::write_file(d + "/client.key", pki_->client.private_key_pem(), 0600);
    options_.tls = make_server_tls_context({d + "/server.pem", d + "/server.key", ""});
    options_.io_threads = 2;
    options_.router.add("GET", "/hello", [](const Request&, const RequestContext& context) {
      Response response = Response::text(200, "hello\n", "text/plain");
      if (!context.connection.client_names.empty()) {
        response.body = "hello " + context.connection.client_names.front() + "\n";
      }
      return response;
    });
    options_.router.add("POST", "/echo", [](const Request& request, const RequestContext&) {
      return Response::text(200, std::string(request.body), "text/plain");
    });
  }

  void TearDown() override { stop(); }

  void start() {
    server_ = std::make_unique<Server>(std::move(options_));
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }

  void stop() {
    if (!server_) return;
    server_->stop(2s);
    thread_.join();
    server_.reset();
  }

  std::unique_ptr<httplib::SSLClient> client(bool with_certificate = false) const {
    const std::string d = dir_.path();
    auto c = with_certificate ? std::make_unique<httplib::SSLClient>(
                                    "127.0.0.1", port_, d + "/client.pem", d + "/client.key")
                              : std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    c->set_ca_cert_path(d + "/server-ca.pem");
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(10);
    c->set_read_timeout(10);
    c->set_keep_alive(true);
    return c;
  }

  // GET /slow: answers 200 once `released` is ready (a blocked token call).
  void add_slow_route(std::shared_future<void> released, stir::http::Run run) {
    options_.router.add(
        "GET", "/slow",
        [released](const Request&, const RequestContext&) {
          released.wait();
          return Response::text(200, "done\n", "text/plain");
        },
        run);
  }

  // `count` new connections, each answered once before the next is made,
  // so the server accepts them (and deals them to its lanes) in this order.
  void connect_in_order(int count, std::vector<std::unique_ptr<httplib::SSLClient>>& clients) {
    for (int n = 0; n < count; ++n) {
      clients.push_back(client());
      auto res = clients.back()->Get("/hello");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200);
    }
  }

  std::string ca_file() const { return dir_.path() + "/server-ca.pem"; }

  // Polls `condition` until it holds or a generous bound passes.
  template <class F>
  static bool eventually(F condition, std::chrono::seconds bound = 30s) {
    const auto deadline = Clock::now() + bound;
    while (!condition()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::yield();
      ::poll(nullptr, 0, 2);
    }
    return true;
  }

  static stir::testing::TlsPki* pki_;
  stir::testing::TempDir dir_;
  Options options_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
};

stir::testing::TlsPki* HttpServerTest::pki_ = nullptr;

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOverOneAcceptedConnection) {
  start();
  auto c = client();
  for (int i = 0; i < 50; ++i) {
    auto res = c->Get("/hello");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "hello\n");
  }
  EXPECT_EQ(server_->stats().accepted_connections, 1u);
  // Counted once the last write completed, just after the client read it.
  EXPECT_TRUE(eventually([&] { return server_->stats().requests == 50; }));
}

TEST_F(HttpServerTest, KeepAliveEndsAfterTheMaximumRequests) {
  options_.keep_alive_max_requests = 3;
  start();
  auto c = client();
  for (int i = 0; i < 9; ++i) {
    auto res = c->Get("/hello");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->get_header_value("Connection"), i % 3 == 2 ? "close" : "") << i;
  }
  EXPECT_EQ(server_->stats().accepted_connections, 3u);
}

TEST_F(HttpServerTest, UnknownMethodOnAKnownPathIs405WithAllow) {
  start();
  auto res = client()->Delete("/hello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "GET");
  res = client()->Get("/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(HttpServerTest, BurstOfFiveHundredNewTlsConnectionsAllServed) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  // 500 verifiers, all on 127.0.0.1 here, each sending its ClientHello
  // only when a client thread gets to it: no per-address cap, and the
  // first byte may take as long as the handshake.
  options_.max_handshakes_per_address = 0;
  options_.first_byte_timeout = options_.handshake_timeout;
  start();
  // Every connection is opened before any is served: the listen queue
  // holds them all (none refused).
  const auto burst = stir::testing::tls_burst(
      port_, 500, ca_file(), "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(burst.refused, 0);
  EXPECT_EQ(burst.served, 500);
}

TEST_F(HttpServerTest, ThousandIdleConnectionsNeitherBlockNorStay) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  options_.handshake_timeout = 500ms;
  start();
  const auto idle = stir::testing::open_idle_connections(port_, 1000);
  ASSERT_EQ(idle.size(), 1000u) << "an idle connection was refused";
  auto res = client()->Get("/hello");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(stir::testing::count_closed_by_peer(idle, Clock::now() + 60s), 1000);
}

TEST_F(HttpServerTest, ConnectionsOverTheCapAreClosedAtOnce) {
  ASSERT_TRUE(stir::testing::raise_fd_limit(4096));
  options_.max_connections = 100;
  options_.handshake_timeout = 60s;  // the idle ones under the cap stay
  options_.first_byte_timeout = 60s;
  // The hard cap alone: no pending connection is evicted for a newer one.
  options_.reserved_connections = 0;
  options_.max_handshakes_per_address = 0;
  start();
  const auto idle = stir::testing::open_idle_connections(port_, 1000);
  ASSERT_EQ(idle.size(), 1000u);
  ASSERT_TRUE(eventually([&] { return server_->stats().rejected_connections == 900; }))
      << server_->stats().rejected_connections;
  EXPECT_EQ(server_->stats().accepted_connections, 100u);
  // The excess see end of file well before the 60 s handshake timeout: they
  // were closed at once, not timed out.
  auto closed_now = [&idle] {
    int closed = 0;
    for (int fd : idle) {
      char byte = 0;
      const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
      closed += (n == 0 || (n < 0 && errno != EAGAIN)) ? 1 : 0;
    }
    return closed;
  };
  EXPECT_TRUE(eventually([&] { return closed_now() == 900; })) << closed_now();
  for (int fd : idle) ::close(fd);
}

TEST_F(HttpServerTest, Tls13ClientWithoutCertificateGetsCertificateRequired) {
  const std::string d = dir_.path();
  options_.tls =
      make_server_tls_context({d + "/server.pem", d + "/server.key", d + "/client-ca.pem"});
  start();
  RawTlsClient anonymous(port_, ca_file(), "", "", TLS1_3_VERSION);
  // The client's side of a TLS 1.3 handshake ends before the server has
  // seen the (empty) certificate; the alert comes with the first read.
  ASSERT_TRUE(anonymous.handshake());
  EXPECT_EQ(anonymous.version(), TLS1_3_VERSION);
  anonymous.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(anonymous.read_to_end(), "");
  EXPECT_EQ(anonymous.error_reason(), SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);

  // With its certificate, the client's names reach the handler.
  RawTlsClient known(port_, ca_file(), d + "/client.pem", d + "/client.key", TLS1_3_VERSION);
  ASSERT_TRUE(known.handshake());
  known.write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string answer = known.read_to_end();
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_NE(answer.find("hello client.example.net\n"), std::string::npos) << answer;
}

TEST_F(HttpServerTest, SlowHeaderIsClosedAtTheHeaderTimeout) {
  options_.header_timeout = 300ms;
  start();
  RawTlsClient slow(port_, ca_file());
  ASSERT_TRUE(slow.handshake());
  ASSERT_TRUE(slow.write("GET /hello HTTP/1.1\r\nHost: x\r\n"));  // and never the end
  EXPECT_EQ(slow.read_to_end(), "");                              // closed, without a response
  auto res = client()->Get("/hello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpServerTest, OversizeHeaderIs431AndOversizeBodyIs413) {
  options_.header_limit = 4096;
  options_.body_limit = 1024;
  start();
  auto c = client();
  auto res = c->Get("/hello", {{"X-Padding", std::string(8000, 'a')}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 431);
  EXPECT_EQ(res->get_header_value("Connection"), "close");
  res = c->Post("/echo", std::string(2000, 'b'), "text/plain");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  res = c->Post("/echo", std::string(1000, 'c'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, std::string(1000, 'c'));
}

TEST_F(HttpServerTest, FullWorkerQueueAnswers503WithRetryAfter) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  options_.workers = 1;
  options_.worker_queue = 1;
  add_slow_route(released, Run::kBlocking);
  start();
  auto running = std::async(std::launch::async, [&] { return client()->Get("/slow"); });
  ASSERT_TRUE(eventually([&] { return server_->stats().workers_busy == 1; }));
  auto queued = std::async(std::launch::async, [&] { return client()->Get("/slow"); });
  ASSERT_TRUE(eventually([&] { return server_->stats().worker_queue_length == 1; }));
  auto refused = client()->Get("/slow");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(server_->stats().busy_rejections, 1u);
  // Inline routes still answer while the workers are busy.
  auto hello = client()->Get("/hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 200);
  release.set_value();
  for (auto* pending : {&running, &queued}) {
    auto res = pending->get();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
}

// A Run::kInlineWhenIdle handler that blocks holds its I/O thread only:
// the other connections of that thread's lane (the first and third
// connections share lane 0 of two) are answered by the rescuer, and the
// other lane's as ever.
TEST_F(HttpServerTest, ABlockedInlineHandlerHoldsOneIoThreadAndItsLaneGoesOn) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  options_.workers = 1;
  options_.worker_queue = 0;
  add_slow_route(released, Run::kInlineWhenIdle);
  start();
  std::vector<std::unique_ptr<httplib::SSLClient>> clients;
  ASSERT_NO_FATAL_FAILURE(connect_in_order(3, clients));  // lanes 0, 1, 0
  auto slow = std::async(std::launch::async, [&] { return clients[0]->Get("/slow"); });
  ASSERT_TRUE(eventually([&] { return server_->stats().workers_busy == 1; }));
  for (int round = 0; round < 3; ++round) {
    for (std::size_t n : {std::size_t{2}, std::size_t{1}}) {
      auto res = clients[n]->Get("/hello");
      ASSERT_TRUE(res) << "connection " << n;
      EXPECT_EQ(res->status, 200);
    }
  }
  auto fresh = client()->Get("/hello");  // a new connection too
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->status, 200);
  release.set_value();
  auto res = slow.get();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto after = clients[2]->Get("/hello");  // the lane's own thread again
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

// The rescuer never runs a handler inline: while it runs a stuck lane, a
// second slow request there goes to the pool, and the lane's other
// connections are still answered. (It once ran such a request inline
// itself: then the lane had no thread at all, and when the two handlers
// ended in the wrong order the lane stayed marked stuck for good, the
// rescuer ran it for ever and other lanes it had run were never woken:
// connections waited for their clients' timeouts in 1 run in 4 of the
// 500-connection burst with 24 I/O threads.)
TEST_F(HttpServerTest, TheRescuerRunsNoHandlerInlineSoAStuckLaneStillAnswers) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  options_.io_threads = 3;  // two may sign inline at once
  options_.workers = 2;
  options_.worker_queue = 0;
  add_slow_route(released, Run::kInlineWhenIdle);
  start();
  std::vector<std::unique_ptr<httplib::SSLClient>> clients;
  ASSERT_NO_FATAL_FAILURE(connect_in_order(7, clients));  // lanes 0, 1, 2, 0, 1, 2, 0
  // Lane 0's thread blocks; its second connection is answered by the rescuer.
  auto first = std::async(std::launch::async, [&] { return clients[0]->Get("/slow"); });
  ASSERT_TRUE(eventually([&] { return server_->stats().workers_busy == 1; }));
  auto res = clients[3]->Get("/hello");
  ASSERT_TRUE(res);
  // A second slow request on lane 0, taken by the rescuer: to the pool.
  auto second = std::async(std::launch::async, [&] { return clients[3]->Get("/slow"); });
  ASSERT_TRUE(eventually([&] { return server_->stats().workers_busy == 2; }));
  // Lane 0's third connection: only the rescuer can answer it now.
  res = clients[6]->Get("/hello");
  ASSERT_TRUE(res) << "the rescuer itself is blocked in a handler";
  EXPECT_EQ(res->status, 200);
  release.set_value();
  for (auto* slow : {&first, &second}) {
    auto answer = slow->get();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 200);
  }
}

// A route on a pool of its own answers while the default pool is full.
TEST_F(HttpServerTest, ANamedPoolAnswersWhileTheDefaultPoolIsFull) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  options_.workers = 1;
  options_.worker_queue = 0;
  options_.pools = {{"other", {1, 0}}};
  add_slow_route(released, Run::kBlocking);
  options_.router.add(
      "GET", "/other",
      [](const Request&, const RequestContext&) {
        return Response::text(200, "other\n", "text/plain");
      },
      Run::kBlocking, "other");
  start();
  auto running = std::async(std::launch::async, [&] { return client()->Get("/slow"); });
  ASSERT_TRUE(eventually([&] { return server_->stats().workers_busy == 1; }));
  auto refused = client()->Get("/slow");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  auto other = client()->Get("/other");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(other->body, "other\n");
  release.set_value();
  auto res = running.get();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpServerTest, ARouteNamingAnUnknownPoolIsRefused) {
  options_.router.add(
      "GET", "/x",
      [](const Request&, const RequestContext&) { return Response::text(200, "", "text/plain"); },
      Run::kBlocking, "nowhere");
  try {
    Server server(std::move(options_));
    FAIL() << "a route named an unknown pool";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kConfig);
    EXPECT_STREQ(e.what(),
                 "a route names the worker pool 'nowhere', which Options::pools does not list");
  }
}

// The body in chunks of chunk_size, decoded by a client to the same bytes.
TEST_F(HttpServerTest, ChunkedResponseCarriesTheWholeBody) {
  std::string body;
  for (int i = 0; i < 300; ++i) body += std::to_string(i) + ",";
  options_.router.add("GET", "/chunked", [body](const Request&, const RequestContext&) {
    Response response = Response::text(200, body, "text/plain");
    response.chunk_size = 100;
    return response;
  });
  start();
  RawTlsClient raw(port_, ca_file());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.write("GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string text = raw.read_to_end();
  EXPECT_EQ(status_of(text), 200);
  EXPECT_NE(text.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\r\n64\r\n"), std::string::npos) << "no 100-byte chunk: " << text;
  auto res = client()->Get("/chunked");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, body);
}

// The response as written, byte for byte: the status line in the request's
// version, the headers in order, Connection as HTTP/1.0 and 1.1 need it,
// Content-Length (also for HEAD, without the body). The framing headers
// are the server's: a handler's own Connection or Content-Length is left
// out, and a header holding CR or LF is never sent (500 instead).
TEST_F(HttpServerTest, ResponsesAreWrittenExactlyAndAHandlersFramingHeadersAreNotSent) {
  options_.default_headers = {{"X-Served-By", "test"}};
  const Handler hello = [](const Request&, const RequestContext&) {
    return Response::text(200, "hello\n", "text/plain");
  };
  options_.router.add("HEAD", "/hello", hello);
  options_.router.add("GET", "/framing", [](const Request&, const RequestContext&) {
    return Response::text(201, "made\n", "text/plain")
        .header("Content-Length", "999")
        .header("Connection", "close")
        .header("Transfer-Encoding", "chunked");
  });
  options_.router.add("GET", "/split", [](const Request&, const RequestContext&) {
    return Response::text(200, "never\n", "text/plain").header("X-Id", "a\r\nInjected: 1");
  });
  options_.router.add("GET", "/empty", [](const Request&, const RequestContext&) {
    return Response::text(204, "", "text/plain");
  });
  std::vector<std::string> outcomes;
  std::mutex mutex;
  options_.access_log = [&](const AccessRecord& record) {
    std::lock_guard lock(mutex);
    outcomes.push_back(std::to_string(record.response.status) + " " + record.response.outcome);
  };
  start();
  const auto exchange = [&](const std::string& requests) {
    RawTlsClient raw(port_, ca_file());
    EXPECT_TRUE(raw.handshake());
    EXPECT_TRUE(raw.write(requests));
    return raw.read_to_end();
  };
  // HTTP/1.0: kept alive only when asked, and said so; then closed.
  EXPECT_EQ(exchange("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                     "GET /hello HTTP/1.0\r\n\r\n"),
            "HTTP/1.0 200 OK\r\nX-Served-By: test\r\nContent-Type: text/plain\r\n"
            "Connection: keep-alive\r\nContent-Length: 6\r\n\r\nhello\n"
            "HTTP/1.0 200 OK\r\nX-Served-By: test\r\nContent-Type: text/plain\r\n"
            "Content-Length: 6\r\n\r\nhello\n");
  // HTTP/1.1: kept alive without a Connection header, then close; HEAD
  // has the length of the body it does not carry; 204 has neither.
  EXPECT_EQ(exchange("GET /framing HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n"
                     "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 201 Created\r\nX-Served-By: test\r\nContent-Type: text/plain\r\n"
            "Content-Length: 5\r\n\r\nmade\n"
            "HTTP/1.1 204 No Content\r\nX-Served-By: test\r\nContent-Type: text/plain\r\n\r\n"
            "HTTP/1.1 200 OK\r\nX-Served-By: test\r\nContent-Type: text/plain\r\n"
            "Connection: close\r\nContent-Length: 6\r\n\r\n");
  const std::string split = exchange("GET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(split), 500) << split;
  EXPECT_EQ(split.find("Injected"), std::string::npos) << split;
  EXPECT_EQ(split.find("never"), std::string::npos) << split;
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return outcomes.size() == 6;
  }));
  std::lock_guard lock(mutex);
  EXPECT_EQ(outcomes.back(), "500 bad-response-header");
}

TEST_F(HttpServerTest, DrainFinishesTheRequestInFlightAndClosesIdleOnes) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  options_.workers = 1;
  add_slow_route(released, Run::kBlocking);
  std::atomic<int> logged{0};
  options_.access_log = [&logged](const AccessRecord&) { ++logged; };
  start();
  auto idle = client();
  ASSERT_TRUE(idle->Get("/hello"));  // a kept-alive connection, now idle
  auto in_flight = std::async(std::launch::async, [&] { return client()->Get("/slow"); });
  ASSERT_TRUE(eventually([&] { return server_->stats().workers_busy == 1; }));
  server_->stop(30s);
  ASSERT_TRUE(eventually([&] { return server_->stats().open_connections == 1; }));
  EXPECT_LT(connect_loopback(port_), 0) << "still accepting while draining";
  release.set_value();
  auto res = in_flight.get();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Connection"), "close");
  thread_.join();  // serve() returns once the drain is over
  server_.reset();
  EXPECT_EQ(logged.load(), 2);
}

TEST_F(HttpServerTest, PlainHttpForTheLab) {
  options_.tls = nullptr;
  start();
  httplib::Client c("127.0.0.1", port_);
  auto res = c.Get("/hello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_FALSE(server_->tls());
}

}  // namespace
}  // namespace stir::http
