// x5u fetching against real HTTPS servers on 127.0.0.1, and the attacks of
// PROTOCOL.md section 5: each is refused (436 through the Verifier), none
// crashes, none waits longer than the configured budget.
#include "stir/verifier/fetcher.h"

#include <gtest/gtest.h>

#include <future>
#include <string>

#include "stir/error.h"
#include "stir/verifier/verifier.h"
#include "vs_fixture.h"

namespace stir::vs {
namespace {

using testing::unix_now;

class Fetcher : public testing::VerifierFixture {
 protected:
  void add_routes(testing::TestHttpsServer& server) override {
    using testing::TestHttpsServer;
    server.get(R"(/redirect\.pem)", [](const std::smatch&) {
      return TestHttpsServer::Response::text(302, "", "text/plain").header("Location", "/sp.pem");
    });
    server.get(R"(/big\.pem)", [this](const std::smatch&) {
      std::string body = pki_.chain_pem();
      while (body.size() <= 20000) body += pki_.chain_pem();
      return TestHttpsServer::ok(body, "application/pem-certificate-chain");
    });
    // Transfer-Encoding: chunked, 100 bytes a chunk.
    server.get(R"(/chunked\.pem)", [this](const std::smatch&) {
      auto response = TestHttpsServer::ok(pki_.chain_pem(), "application/pem-certificate-chain");
      response.chunk_size = 100;
      return response;
    });
    server.get(R"(/big-chunked\.pem)", [](const std::smatch&) {
      auto response =
          TestHttpsServer::ok(std::string(100000, 'A'), "application/pem-certificate-chain");
      response.chunk_size = 1000;
      return response;
    });
  }

  FetchPolicy policy() const { return FetchPolicy::from_config(config()); }

  // The Verifier's answer for a token whose x5u (and info) is `url`.
  VerificationResult verify_url(const std::string& url, const VerifierConfig& c) {
    Verifier verifier(c);
    const std::int64_t now = unix_now();
    return verifier.verify(request(identity(testing::VerifierFixture::claims(now), url), now));
  }
  VerificationResult verify_url(const std::string& url) { return verify_url(url, config()); }

  static void expect_436(const VerificationResult& result) {
    ASSERT_TRUE(result.reasoncode) << result.detail;
    EXPECT_EQ(*result.reasoncode, 436) << result.detail;
    EXPECT_EQ(result.verstat, kVerstatNoValidation);
  }
};

TEST_F(Fetcher, GetsTheChain) {
  const HttpsFetcher fetcher(policy());
  const FetchResponse response = fetcher.get(x5u(), 16384);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, pki_.chain_pem());
  EXPECT_EQ(response.header("cache-control"), "max-age=86400");
  EXPECT_EQ(response.header("content-type"), "application/pem-certificate-chain");
  EXPECT_EQ(x5u_hits_.load(), 1);
}

TEST_F(Fetcher, ByHostNameWithSni) {
  // localhost resolves to loopback; the certificate's DNS SAN is checked.
  const HttpsFetcher fetcher(policy());
  EXPECT_EQ(fetcher.get(server_->url("/sp.pem", "localhost"), 16384).body, pki_.chain_pem());
}

TEST_F(Fetcher, ChunkedBody) {
  const HttpsFetcher fetcher(policy());
  EXPECT_EQ(fetcher.get(server_->url("/chunked.pem"), 16384).body, pki_.chain_pem());
  EXPECT_TRUE(verify_url(server_->url("/chunked.pem")).passed());
}

TEST_F(Fetcher, LoopbackRefusedWithoutAllowance) {
  FetchPolicy p = policy();
  p.allow_loopback = false;
  const HttpsFetcher fetcher(p);
  try {
    fetcher.get(x5u(), 16384);
    FAIL() << "loopback fetched";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("loopback"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fetcher.get(server_->url("/sp.pem", "localhost"), 16384), Error);
  EXPECT_THROW(fetcher.get(server_->url("/sp.pem", "[::ffff:127.0.0.1]"), 16384), Error);
  VerifierConfig c = config();
  c.allow_loopback = false;
  const VerificationResult result = verify_url(x5u(), c);
  expect_436(result);
  EXPECT_EQ(result.error_case, 8);
  EXPECT_EQ(x5u_hits_.load(), 0);
}

TEST_F(Fetcher, PrivateAndSpecialAddressesRefused) {
  const HttpsFetcher fetcher(policy());
  for (const char* url : {"https://10.1.2.3/sp.pem", "https://192.168.0.10:8443/sp.pem",
                          "https://169.254.169.254/latest/meta-data", "https://[fd00::1]/sp.pem",
                          "https://0.0.0.0/sp.pem", "https://[::]/sp.pem"}) {
    try {
      fetcher.get(url, 16384);
      ADD_FAILURE() << url << " fetched";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << url << ": " << e.what();
    }
    expect_436(verify_url(url));
  }
}

TEST_F(Fetcher, RedirectRefused) {
  const HttpsFetcher fetcher(policy());
  try {
    fetcher.get(server_->url("/redirect.pem"), 16384);
    FAIL() << "redirect followed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("redirect refused (302)"), std::string::npos) << e.what();
  }
  expect_436(verify_url(server_->url("/redirect.pem")));
  EXPECT_EQ(x5u_hits_.load(), 0) << "the redirect target was never fetched";
}

TEST_F(Fetcher, BodyOverTheLimit) {
  const HttpsFetcher fetcher(policy());
  EXPECT_THROW(fetcher.get(server_->url("/big.pem"), 16384), Error);
  EXPECT_THROW(fetcher.get(server_->url("/big-chunked.pem"), 16384), Error);
  expect_436(verify_url(server_->url("/big.pem")));
  expect_436(verify_url(server_->url("/big-chunked.pem")));
}

TEST_F(Fetcher, ServerThatNeverAnswers) {
  testing::SilentServer silent;
  VerifierConfig c = config();
  c.allowed_ports.push_back(static_cast<std::uint16_t>(silent.port()));
  c.connect_timeout_ms = 300;
  c.total_timeout_ms = 300;
  const std::string url = "https://127.0.0.1:" + std::to_string(silent.port()) + "/sp.pem";
  const HttpsFetcher fetcher(FetchPolicy::from_config(c));
  try {
    fetcher.get(url, 16384);
    FAIL() << "silent server answered";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  const VerificationResult result = verify_url(url, c);
  expect_436(result);
  EXPECT_NE(result.detail.find("timed out"), std::string::npos) << result.detail;
}

TEST_F(Fetcher, HttpPort80AndQueryAreRefusedBeforeAnyConnection) {
  for (const std::string& url :
       {std::string("http://127.0.0.1:") + std::to_string(server_->port()) + "/sp.pem",
        std::string("https://127.0.0.1:80/sp.pem"), x5u() + "?v=1", x5u() + "#f",
        std::string("https://u@127.0.0.1:") + std::to_string(server_->port()) + "/sp.pem"}) {
    const VerificationResult result = verify_url(url);
    expect_436(result);
    EXPECT_EQ(result.error_case, 7) << url;
  }
  EXPECT_EQ(x5u_hits_.load(), 0);
}

TEST_F(Fetcher, UntrustedServerCertificate) {
  FetchPolicy p = policy();
  const stir::testing::TlsPki other = stir::testing::make_tls_pki();
  p.tls_ca_file =
      stir::testing::write_file(dir_.file("other-ca.pem"), other.server_ca.certificate_pem());
  const HttpsFetcher fetcher(p);
  try {
    fetcher.get(x5u(), 16384);
    FAIL() << "untrusted server accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("server certificate"), std::string::npos) << e.what();
  }
}

TEST_F(Fetcher, ServerCertificateForAnotherName) {
  stir::testing::CertSpec spec;
  spec.common_name = "other.example";
  spec.dns_names = {"other.example"};
  spec.tls_server = true;
  stir::testing::TlsPki wrong = stir::testing::make_tls_pki();
  wrong.server = stir::testing::issue(spec, &tls_.server_ca);
  testing::TestHttpsServer server(wrong);
  server.get(R"(/sp\.pem)", [this](const std::smatch&) {
    return testing::TestHttpsServer::ok(pki_.chain_pem(), "application/pem-certificate-chain");
  });
  server.start();
  FetchPolicy p = policy();
  p.allowed_ports.push_back(static_cast<std::uint16_t>(server.port()));
  const HttpsFetcher fetcher(p);
  EXPECT_THROW(fetcher.get(server.url("/sp.pem"), 16384), Error);
  EXPECT_THROW(fetcher.get(server.url("/sp.pem", "localhost"), 16384), Error);
}

TEST_F(Fetcher, HttpErrorStatus) {
  const HttpsFetcher fetcher(policy());
  try {
    fetcher.get(server_->url("/nothing-here.pem"), 16384);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP status 404"), std::string::npos) << e.what();
  }
}

TEST_F(Fetcher, ConcurrentFetchesAreIndependent) {
  const HttpsFetcher fetcher(policy());
  std::vector<std::future<std::string>> results;
  results.reserve(8);
  for (int i = 0; i < 8; ++i) {
    results.push_back(
        std::async(std::launch::async, [&] { return fetcher.get(x5u(), 16384).body; }));
  }
  for (auto& r : results) EXPECT_EQ(r.get(), pki_.chain_pem());
}

TEST(FetchPolicyConfig, UnreadableCaFileIsAConfigError) {
  FetchPolicy p;
  p.tls_ca_file = "/nonexistent/ca.pem";
  try {
    HttpsFetcher fetcher(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
  }
}

}  // namespace
}  // namespace stir::vs
