// Issue 17, item 1 for the x5u fetcher: an x5u host (chosen by whoever
// sent the Identity header) that answers with endless framing (chunk
// extension, zeros as chunk size, trailer) or an endless stream of tiny
// chunks. Each fetch fails with a short error after at most
// max_fetch_bytes(), and the process does not grow.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "hostile_peers.h"
#include "stir/error.h"
#include "stir/verifier/fetcher.h"
#include "vs_fixture.h"

namespace stir::vs {
namespace {

class FetcherHostile : public testing::VerifierFixture {
 protected:
  static void SetUpTestSuite() { ::signal(SIGPIPE, SIG_IGN); }

  // Fetches from a server sending `head` then `filler` (up to 64 MiB):
  // the error, the bytes the server got out, the growth of this process.
  void expect_refused(const std::string& head, const std::string& filler,
                      const std::string& error_part) {
    stir::testing::EndlessTlsServer endless(
        tls_.server.certificate_pem() + tls_.server_ca.certificate_pem(),
        tls_.server.private_key_pem(), head, filler, std::size_t{64} << 20);
    VerifierConfig c = config();
    c.allowed_ports.push_back(static_cast<std::uint16_t>(endless.port()));
    const HttpsFetcher fetcher(FetchPolicy::from_config(c));
    const std::string url = "https://127.0.0.1:" + std::to_string(endless.port()) + "/sp.pem";
    const std::size_t before = stir::testing::resident_bytes();
    std::atomic<std::size_t> peak{before};
    std::atomic<bool> done{false};
    std::thread sampler([&] {
      while (!done) {
        peak = std::max(peak.load(), stir::testing::resident_bytes());
        ::poll(nullptr, 0, 2);
      }
    });
    std::string error;
    try {
      fetcher.get(url, 16384);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kIo);
      error = e.what();
    }
    done = true;
    sampler.join();
    std::printf("[ figures  ] fetch: \"%s\"; RSS %zu KiB -> peak %zu KiB; cap %zu bytes\n",
                error.c_str(), before / 1024, peak.load() / 1024, max_fetch_bytes(16384));
    EXPECT_NE(error.find(error_part), std::string::npos) << error;
    if (stir::testing::kRssMeasuresTheCode) {
      EXPECT_LT(peak.load(), before + (std::size_t{2} << 20));
    }
  }
};

constexpr const char* kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/pem-certificate-chain\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

TEST_F(FetcherHostile, EndlessChunkExtension) {
  expect_refused(std::string(kChunkedHead) + "5;a=", std::string(16384, 'a'), "exceeds");
}

TEST_F(FetcherHostile, EndlessZerosAsChunkSize) {
  expect_refused(kChunkedHead, std::string(16384, '0'), "exceeds");
}

TEST_F(FetcherHostile, EndlessTrailer) {
  expect_refused(std::string(kChunkedHead) + "5\r\nhello\r\n0\r\nX-Trailer: ",
                 std::string(16384, 't'), "exceeds");
}

// Chunks with extensions: the body stays under its limit, the metadata
// does not.
TEST_F(FetcherHostile, EndlessSmallChunksWithExtensions) {
  std::string filler;
  while (filler.size() < 16000) filler += "1;e=" + std::string(200, 'e') + "\r\nx\r\n";
  expect_refused(kChunkedHead, filler, "chunk metadata exceeds");
}

// Chunk size lines padded with zeros: every byte of the response counts.
TEST_F(FetcherHostile, EndlessChunksWithLongSizeLines) {
  std::string filler;
  while (filler.size() < 16000) filler += std::string(10000, '0') + "1\r\nx\r\n";
  expect_refused(kChunkedHead, filler, "response exceeds 69632 bytes");
}

}  // namespace
}  // namespace stir::vs
