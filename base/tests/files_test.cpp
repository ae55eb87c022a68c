// stir::read_file and read_file_if_exists: the one whole-file reader, with
// the error each caller documents.
#include "stir/files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace stir {
namespace {

namespace fs = std::filesystem;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "stir-files-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string dir_;
};

TEST_F(FilesTest, ReadsWhatWasWrittenByteForByte) {
  const std::string content("line\r\n\0binary\xff", 14);
  write_file_atomic(path("a"), content, 0600);
  EXPECT_EQ(read_file(path("a")), content);
  EXPECT_EQ(read_file_if_exists(path("a")), content);
}

TEST_F(FilesTest, AMissingFileIsNotFoundWithItsPathOrTheCallersCodeAndMessage) {
  try {
    read_file(path("missing"));
    FAIL() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()), "cannot read " + path("missing"));
  }
  try {
    read_file(path("missing"), ErrorCode::kConfig, "cannot read CRL file x");
    FAIL() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
    EXPECT_EQ(std::string(e.what()), "cannot read CRL file x");
  }
}

TEST_F(FilesTest, IfExistsIsEmptyWhenThereIsNoFile) {
  EXPECT_EQ(read_file_if_exists(path("missing")), std::nullopt);
  EXPECT_FALSE(fs::exists(path("missing")));
}

}  // namespace
}  // namespace stir
