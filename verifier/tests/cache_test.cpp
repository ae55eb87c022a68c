// The certificate cache through the Verifier, with a counting HTTPS server
// and an injected clock (request.now), so "after max-age" needs no sleep.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "stir/verifier/cert_cache.h"
#include "stir/verifier/verifier.h"
#include "vs_fixture.h"

namespace stir::vs {
namespace {

using testing::unix_now;

class Cache : public testing::VerifierFixture {
 protected:
  void add_routes(testing::TestHttpsServer& server) override {
    using testing::TestHttpsServer;
    // Cache-Control from the request path: /cc/<max-age>/x.pem
    server.get(R"(/cc/(\d+)/x\.pem)", [this](const std::smatch& path) {
      ++counted_;
      return TestHttpsServer::ok(pki_.chain_pem(), "application/pem-certificate-chain",
                                 {{"Cache-Control", "max-age=" + path[1].str()}});
    });
    server.get(R"(/plain\.pem)", [this](const std::smatch&) {
      ++counted_;
      return TestHttpsServer::ok(pki_.chain_pem(), "application/pem-certificate-chain");
    });
    server.get(R"(/slow\.pem)", [this](const std::smatch&) {
      ++counted_;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return TestHttpsServer::ok(pki_.chain_pem(), "application/pem-certificate-chain");
    });
    server.get(R"(/dead\.pem)", [this](const std::smatch&) {
      ++counted_;
      return TestHttpsServer::Response::text(503, "", "text/plain");
    });
    server.get(R"(/short-lived\.pem)", [this](const std::smatch&) {
      ++counted_;
      return TestHttpsServer::ok(short_lived_chain_, "application/pem-certificate-chain",
                                 {{"Cache-Control", "max-age=31536000"}});
    });
  }

  // Verifies a fresh token for `url` at time `t` (iat = t).
  VerificationResult at(Verifier& verifier, const std::string& url, std::int64_t t) {
    return verifier.verify(request(identity(claims(t), url), t));
  }

  std::atomic<int> counted_{0};
  std::string short_lived_chain_;
};

TEST_F(Cache, OneFetchWithinMaxAgeThenRefetch) {
  Verifier verifier(config());
  const std::string url = server_->url("/cc/172800/x.pem");  // 48 h
  const std::int64_t t0 = unix_now();
  EXPECT_TRUE(at(verifier, url, t0).passed());
  EXPECT_TRUE(at(verifier, url, t0 + 100).passed());
  EXPECT_TRUE(at(verifier, url, t0 + 86400 + 3600).passed());
  EXPECT_TRUE(at(verifier, url, t0 + 172800 - 1).passed());
  EXPECT_EQ(counted_.load(), 1);
  EXPECT_TRUE(at(verifier, url, t0 + 172800).passed());
  EXPECT_EQ(counted_.load(), 2);
  const MetricsSnapshot m = verifier.metrics();
  EXPECT_EQ(m.cert_cache_misses, 2u);
  EXPECT_EQ(m.cert_cache_hits, 3u);
}

TEST_F(Cache, ShortMaxAgeIsRaisedTo24Hours) {
  Verifier verifier(config());
  const std::string url = server_->url("/cc/60/x.pem");
  const std::int64_t t0 = unix_now();
  EXPECT_TRUE(at(verifier, url, t0).passed());
  EXPECT_TRUE(at(verifier, url, t0 + 120).passed());
  EXPECT_TRUE(at(verifier, url, t0 + 86399).passed());
  EXPECT_EQ(counted_.load(), 1);
  EXPECT_TRUE(at(verifier, url, t0 + 86400).passed());
  EXPECT_EQ(counted_.load(), 2);
}

TEST_F(Cache, NoCacheHeadersMeans24Hours) {
  Verifier verifier(config());
  const std::string url = server_->url("/plain.pem");
  const std::int64_t t0 = unix_now();
  EXPECT_TRUE(at(verifier, url, t0).passed());
  EXPECT_TRUE(at(verifier, url, t0 + 86399).passed());
  EXPECT_EQ(counted_.load(), 1);
  EXPECT_TRUE(at(verifier, url, t0 + 86400).passed());
  EXPECT_EQ(counted_.load(), 2);
}

TEST_F(Cache, CappedAtTheCertificatesNotAfter) {
  stir::testing::CertSpec spec;
  spec.common_name = "SHAKEN 1234";
  spec.spc = "1234";
  spec.not_after_offset_s = 7200;
  const stir::testing::TestCert leaf = stir::testing::issue(spec, &pki_.ca);
  short_lived_chain_ = leaf.certificate_pem() + pki_.ca.certificate_pem();
  Verifier verifier(config());
  const std::string url = server_->url("/short-lived.pem");
  const std::int64_t t0 = unix_now();
  auto verify_at = [&](std::int64_t t) {
    return verifier.verify(request(identity(claims(t), url, leaf.key.get()), t));
  };
  EXPECT_TRUE(verify_at(t0).passed());
  EXPECT_TRUE(verify_at(t0 + 3600).passed());
  EXPECT_EQ(counted_.load(), 1);
  // Past notAfter the entry is gone (and the certificate no longer valid).
  const VerificationResult late = verify_at(t0 + 7300);
  EXPECT_EQ(counted_.load(), 2);
  EXPECT_EQ(late.error_case, 17) << late.detail;
}

TEST_F(Cache, ConcurrentMissesFetchOnce) {
  Verifier verifier(config());
  const std::string url = server_->url("/slow.pem");
  const std::int64_t t0 = unix_now();
  const std::string token = identity(claims(t0), url);
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::atomic<int> passed{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (verifier.verify(request(token, t0)).passed()) ++passed;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(passed.load(), 8);
  EXPECT_EQ(counted_.load(), 1);
  const MetricsSnapshot m = verifier.metrics();
  EXPECT_EQ(m.cert_cache_misses, 1u);
  EXPECT_EQ(m.cert_cache_shared + m.cert_cache_hits, 7u);
  EXPECT_EQ(m.fetches, 1u);
}

TEST_F(Cache, FailuresAreCachedBriefly) {
  Verifier verifier(config());
  const std::string url = server_->url("/dead.pem");
  const std::int64_t t0 = unix_now();
  for (int i = 0; i < 5; ++i) {
    const VerificationResult r = at(verifier, url, t0 + i);
    EXPECT_EQ(r.error_case, 8) << r.detail;
  }
  EXPECT_EQ(counted_.load(), 1);
  EXPECT_EQ(at(verifier, url, t0 + 60).error_case, 8);
  EXPECT_EQ(counted_.load(), 2);
  EXPECT_EQ(verifier.metrics().fetch_failures, 2u);
}

TEST_F(Cache, DistinctUrlsAreDistinctEntries) {
  Verifier verifier(config());
  const std::int64_t t0 = unix_now();
  EXPECT_TRUE(at(verifier, server_->url("/cc/86400/x.pem"), t0).passed());
  EXPECT_TRUE(at(verifier, server_->url("/cc/86401/x.pem"), t0).passed());
  EXPECT_TRUE(at(verifier, server_->url("/cc/86400/x.pem"), t0 + 1).passed());
  EXPECT_EQ(counted_.load(), 2);
  EXPECT_EQ(verifier.cache_size(), 2u);
}

TEST_F(Cache, PersistedAcrossRestarts) {
  VerifierConfig c = config();
  c.cache_dir = dir_.file("cache");
  const std::string url = server_->url("/cc/86400/x.pem");
  const std::int64_t t0 = unix_now();
  {
    Verifier first(c, [t0] { return t0; });
    EXPECT_TRUE(at(first, url, t0).passed());
  }
  EXPECT_EQ(counted_.load(), 1);
  std::size_t files = 0;
  for (const auto& f : std::filesystem::directory_iterator(c.cache_dir)) {
    (void)f;
    ++files;
  }
  EXPECT_EQ(files, 2u);  // .pem and .json
  server_->stop();
  Verifier second(c, [t0] { return t0 + 10; });
  EXPECT_EQ(second.cache_size(), 1u);
  EXPECT_TRUE(at(second, url, t0 + 10).passed());
  EXPECT_EQ(counted_.load(), 1);
  // Expired persisted entries are not loaded.
  Verifier third(c, [t0] { return t0 + 86400; });
  EXPECT_EQ(third.cache_size(), 0u);
}

TEST(HttpFreshness, CacheControlAndExpires) {
  FetchResponse r;
  EXPECT_FALSE(http_freshness_lifetime(r, 1000));
  r.headers = {{"cache-control", "public, max-age=600"}};
  EXPECT_EQ(http_freshness_lifetime(r, 1000), 600);
  r.headers = {{"cache-control", "Max-Age=\"42\""}};
  EXPECT_EQ(http_freshness_lifetime(r, 1000), 42);
  r.headers = {{"cache-control", "no-store"}};
  EXPECT_EQ(http_freshness_lifetime(r, 1000), 0);
  r.headers = {{"cache-control", "max-age=600, no-cache"}};
  EXPECT_EQ(http_freshness_lifetime(r, 1000), 0);
  const std::int64_t date = *parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(date, 784111777);
  r.headers = {{"expires", "Mon, 07 Nov 1994 08:49:37 GMT"},
               {"date", "Sun, 06 Nov 1994 08:49:37 GMT"}};
  EXPECT_EQ(http_freshness_lifetime(r, 0), 86400);
  r.headers = {{"expires", "Mon, 07 Nov 1994 08:49:37 GMT"}};
  EXPECT_EQ(http_freshness_lifetime(r, date + 100), 86300);
  r.headers = {{"expires", "0"}};
  EXPECT_EQ(http_freshness_lifetime(r, 0), 0);
  // max-age wins over Expires.
  r.headers = {{"expires", "Mon, 07 Nov 1994 08:49:37 GMT"}, {"cache-control", "max-age=5"}};
  EXPECT_EQ(http_freshness_lifetime(r, 0), 5);
}

}  // namespace
}  // namespace stir::vs
