// Publishing, unpublishing and listing chains on disk.
#include "tn_cr/repository.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "stir/error.h"
#include "stir/x509.h"
#include "support/test_pki.h"
#include "test_files.h"

namespace tn_cr {
namespace {

using stir::ErrorCode;
using stir::testing::make_shaken_pki;
using stir::testing::TempDir;
namespace fs = std::filesystem;

// Writes a file (creating folders) and returns its path.
std::string put_file(const std::string& path, const std::string& content, unsigned mode = 0644) {
  return stir::testing::write_file(path, content, mode);
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const stir::Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no stir::Error thrown";
  return ErrorCode::kInternal;
}

std::string canonical(const std::string& pem) {
  return stir::chain_to_pem(stir::parse_pem_chain(pem));
}

class RepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new stir::testing::ShakenPki(make_shaken_pki("1234"));
    other_ = new stir::testing::ShakenPki(make_shaken_pki("5678"));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_;
  }

  std::string dir() const { return temp_.path() + "/repo"; }

  static stir::testing::ShakenPki* pki_;
  static stir::testing::ShakenPki* other_;
  TempDir temp_;
};

stir::testing::ShakenPki* RepositoryTest::pki_ = nullptr;
stir::testing::ShakenPki* RepositoryTest::other_ = nullptr;

TEST_F(RepositoryTest, PublishWritesTheCanonicalChainWithMode0644) {
  const Repository repository(dir());
  EXPECT_EQ(repository.publish("sp-2026-11.pem", pki_->chain_pem()), PublishOutcome::kPublished);
  const std::string path = dir() + "/sp-2026-11.pem";
  EXPECT_EQ(stir::testing::read_file(path), canonical(pki_->chain_pem()));
  EXPECT_EQ(stir::testing::file_mode(path), 0644u);
  EXPECT_EQ(repository.read("sp-2026-11.pem"), canonical(pki_->chain_pem()));
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir()), fs::directory_iterator()), 1);
}

TEST_F(RepositoryTest, SameContentAgainIsANoOp) {
  const Repository repository(dir());
  ASSERT_EQ(repository.publish("a.pem", pki_->chain_pem()), PublishOutcome::kPublished);
  const auto before = stir::testing::stat_file(dir() + "/a.pem");
  // Different bytes, same chain (extra text around the blocks) count as the same.
  EXPECT_EQ(repository.publish("a.pem", "comment\n" + pki_->chain_pem()),
            PublishOutcome::kAlreadyPublished);
  const auto after = stir::testing::stat_file(dir() + "/a.pem");
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

TEST_F(RepositoryTest, AHandPlacedCopyOfTheSameChainCountsAsPublished) {
  const Repository repository(dir());
  const std::string by_hand = "# placed by an operator\n" + pki_->chain_pem();
  put_file(dir() + "/a.pem", by_hand);
  EXPECT_EQ(repository.publish("a.pem", pki_->chain_pem()), PublishOutcome::kAlreadyPublished);
  EXPECT_EQ(stir::testing::read_file(dir() + "/a.pem"), by_hand);
}

TEST_F(RepositoryTest, DifferentContentUnderAPublishedNameIsRefused) {
  const Repository repository(dir());
  ASSERT_EQ(repository.publish("a.pem", pki_->chain_pem()), PublishOutcome::kPublished);
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", other_->chain_pem()); }),
            ErrorCode::kAlreadyExists);
  // A leaf alone is a different chain too.
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", pki_->leaf.certificate_pem()); }),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(repository.read("a.pem"), canonical(pki_->chain_pem()));
}

TEST_F(RepositoryTest, InvalidChainsAreRefusedAndWriteNothing) {
  const Repository repository(dir());
  const std::string wrong_order = pki_->ca.certificate_pem() + pki_->leaf.certificate_pem();
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", wrong_order); }),
            ErrorCode::kInvalidArgument);
  const std::string broken = pki_->leaf.certificate_pem() + other_->ca.certificate_pem();
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", broken); }), ErrorCode::kInvalidArgument);
  const std::string with_key = pki_->chain_pem() + pki_->leaf.private_key_pem();
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", with_key); }), ErrorCode::kMalformed);
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", "not pem"); }), ErrorCode::kMalformed);
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", ""); }), ErrorCode::kMalformed);
  EXPECT_EQ(code_of([&] { repository.publish("a.pem", std::string(kMaxChainBytes + 1, 'x')); }),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir() + "/a.pem"));
}

TEST_F(RepositoryTest, InvalidNamesAreRefused) {
  const Repository repository(dir());
  for (const char* name : {"", "../x.pem", "a/b.pem", ".x.pem", "x.crt", "a..b.pem", "x%2e.pem"}) {
    EXPECT_EQ(code_of([&] { repository.publish(name, pki_->chain_pem()); }),
              ErrorCode::kInvalidArgument)
        << name;
  }
  EXPECT_FALSE(fs::exists(temp_.path() + "/x.pem"));
}

TEST_F(RepositoryTest, UnpublishRemovesAndThenSaysNotFound) {
  const Repository repository(dir());
  ASSERT_EQ(repository.publish("a.pem", pki_->chain_pem()), PublishOutcome::kPublished);
  repository.unpublish("a.pem");
  EXPECT_FALSE(repository.read("a.pem").has_value());
  EXPECT_EQ(code_of([&] { repository.unpublish("a.pem"); }), ErrorCode::kNotFound);
  EXPECT_EQ(code_of([&] { repository.unpublish("../a.pem"); }), ErrorCode::kInvalidArgument);
}

TEST_F(RepositoryTest, ListDescribesEachChain) {
  const Repository repository(dir());
  EXPECT_EQ(code_of([&] { (void)repository.list(); }), ErrorCode::kNotFound);
  ASSERT_EQ(repository.publish("b.pem", other_->chain_pem()), PublishOutcome::kPublished);
  ASSERT_EQ(repository.publish("a.pem", pki_->chain_pem()), PublishOutcome::kPublished);
  put_file(dir() + "/broken.pem", "garbage");
  put_file(dir() + "/notes.txt", "not a chain name");
  const auto chains = repository.list();
  ASSERT_EQ(chains.size(), 3u);
  EXPECT_EQ(chains[0].name, "a.pem");
  EXPECT_EQ(chains[0].spc, "1234");
  EXPECT_EQ(chains[0].certificates, 2u);
  EXPECT_NE(chains[0].subject.find("CN=SHAKEN 1234"), std::string::npos) << chains[0].subject;
  EXPECT_EQ(chains[0].sha256.size(), 64u);
  EXPECT_EQ(chains[0].size, canonical(pki_->chain_pem()).size());
  EXPECT_EQ(chains[0].not_after.size(), 20u) << chains[0].not_after;
  EXPECT_TRUE(chains[0].error.empty());
  EXPECT_EQ(chains[1].name, "b.pem");
  EXPECT_EQ(chains[1].spc, "5678");
  EXPECT_EQ(chains[2].name, "broken.pem");
  EXPECT_FALSE(chains[2].error.empty());
}

TEST_F(RepositoryTest, SymbolicLinksAreNeverRead) {
  put_file(temp_.path() + "/secret.pem", pki_->chain_pem());
  fs::create_directories(dir());
  fs::create_symlink("../secret.pem", dir() + "/link.pem");
  const Repository repository(dir());
  EXPECT_EQ(code_of([&] { (void)repository.read("link.pem"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { repository.publish("link.pem", pki_->chain_pem()); }),
            ErrorCode::kInvalidArgument);
}

// A reader opening names in a loop while a writer publishes them sees
// either no file or a complete chain, never a part.
TEST_F(RepositoryTest, PublishIsAtomicForReaders) {
  constexpr int kChains = 24;
  std::vector<std::string> contents;
  for (int i = 0; i < kChains; ++i) {
    contents.push_back(canonical(make_shaken_pki(std::to_string(1000 + i)).chain_pem()));
  }
  const Repository repository(dir());
  fs::create_directories(dir());

  std::atomic<bool> writer_done{false};
  std::atomic<int> complete_reads{0};
  std::thread reader([&] {
    bool last_pass = false;
    for (int pass = 0; pass < 100000 && !last_pass; ++pass) {
      last_pass = writer_done;
      for (int i = 0; i < kChains; ++i) {
        const std::string path = dir() + "/chain-" + std::to_string(i) + ".pem";
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          ASSERT_EQ(errno, ENOENT);
          continue;
        }
        std::string content;
        char buffer[4096];
        ssize_t n = 0;
        while ((n = ::read(fd, buffer, sizeof buffer)) > 0) content.append(buffer, n);
        ::close(fd);
        ASSERT_EQ(content, contents[i]) << path << " read partly";
        ++complete_reads;
      }
    }
  });
  for (int i = 0; i < kChains; ++i) {
    ASSERT_EQ(repository.publish("chain-" + std::to_string(i) + ".pem", contents[i]),
              PublishOutcome::kPublished);
  }
  writer_done = true;
  reader.join();
  EXPECT_GE(complete_reads.load(), kChains);
}

// Two publishers racing for one name with different chains: exactly one
// wins, the other is refused, and the file holds the winner's chain.
TEST_F(RepositoryTest, RacingPublishersNeverOverwriteEachOther) {
  const Repository repository(dir());
  fs::create_directories(dir());
  for (int round = 0; round < 20; ++round) {
    const std::string name = "race-" + std::to_string(round) + ".pem";
    std::atomic<int> published{0}, refused{0};
    auto publish = [&](const std::string& pem) {
      try {
        if (repository.publish(name, pem) == PublishOutcome::kPublished) ++published;
      } catch (const stir::Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
        ++refused;
      }
    };
    std::thread a(publish, pki_->chain_pem());
    std::thread b(publish, other_->chain_pem());
    a.join();
    b.join();
    EXPECT_EQ(published.load(), 1);
    EXPECT_EQ(refused.load(), 1);
    const auto content = repository.read(name);
    ASSERT_TRUE(content.has_value());
    EXPECT_TRUE(*content == canonical(pki_->chain_pem()) ||
                *content == canonical(other_->chain_pem()));
  }
}

}  // namespace
}  // namespace tn_cr
