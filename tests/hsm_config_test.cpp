// hsm-config/setup-token.sh, the operator's SoftHSM2 token set-up: a second
// run changes nothing, PIN files must be owner-only, each label is its own
// token, and the token it makes is one `sks` can use through its config.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>

#include "process.h"
#include "test_files.h"

namespace stir::testing {
namespace {

const std::string kScript = std::string(STIR_SOURCE_DIR) + "/hsm-config/setup-token.sh";

struct Line {
  std::string label, serial, conf;
};

Line parse(const ProcessResult& result) {
  std::smatch match;
  const std::regex pattern(R"(^label=(\S+) serial=(\S+) conf=(\S+)\n$)");
  EXPECT_TRUE(std::regex_match(result.out, match, pattern)) << result.describe();
  if (match.empty()) return {};
  return {match[1], match[2], match[3]};
}

TEST(SetupToken, SecondRunChangesNothing) {
  TempDir dir;
  const std::string d = dir.path() + "/hsm";
  const auto first = run({kScript, "--dir", d, "--label", "ops"});
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  const Line one = parse(first);
  EXPECT_EQ(one.label, "ops");
  EXPECT_EQ(one.conf, d + "/softhsm2.conf");
  EXPECT_EQ(file_mode(d + "/user.pin"), 0600u);
  EXPECT_EQ(file_mode(d + "/so.pin"), 0600u);
  const std::string pin = read_file(d + "/user.pin");
  const auto conf_before = stat_file(d + "/softhsm2.conf");

  const auto second = run({kScript, "--dir", d, "--label", "ops"});
  ASSERT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_EQ(second.out, first.out);
  EXPECT_EQ(read_file(d + "/user.pin"), pin);
  const auto conf_after = stat_file(d + "/softhsm2.conf");
  EXPECT_EQ(conf_after.st_ino, conf_before.st_ino);
  EXPECT_EQ(conf_after.st_mtim.tv_nsec, conf_before.st_mtim.tv_nsec);
  EXPECT_EQ(first.out.find(pin), std::string::npos);
  EXPECT_EQ(first.err.find(pin), std::string::npos);

  // A second label is a second token with its own serial.
  const auto other = run({kScript, "--dir", d, "--label", "ops2"});
  ASSERT_EQ(other.exit_code, 0) << other.describe();
  EXPECT_NE(parse(other).serial, one.serial);
}

TEST(SetupToken, PinFileReadableByOthersIsRefused) {
  TempDir dir;
  const std::string d = dir.path() + "/hsm";
  write_file(dir.path() + "/loose.pin", "123456\n", 0644);
  const auto result =
      run({kScript, "--dir", d, "--label", "ops", "--user-pin-file", dir.path() + "/loose.pin"});
  EXPECT_NE(result.exit_code, 0) << result.describe();
  EXPECT_NE(result.err.find("0644"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("123456"), std::string::npos);
  EXPECT_EQ(result.out, "");
}

TEST(SetupToken, TheTokenWorksWithSks) {
  TempDir dir;
  const std::string d = dir.path() + "/hsm";
  const auto setup = run({kScript, "--dir", d, "--label", "ops"});
  ASSERT_EQ(setup.exit_code, 0) << setup.describe();
  write_file(d + "/sks.toml",
             std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                 "\"\nlabel = \"ops\"\npin_file = \"user.pin\"\n[token.module_env]\n"
                 "SOFTHSM2_CONF = \"" +
                 d + "/softhsm2.conf\"\n",
             0600);
  const auto generate =
      run({STIR_SKS_BINARY, "keys", "generate", "--label", "k", "--config", d + "/sks.toml"});
  EXPECT_EQ(generate.exit_code, 0) << generate.describe();
  const auto check = run({STIR_SKS_BINARY, "check-config", "--login", "--config", d + "/sks.toml"});
  EXPECT_EQ(check.exit_code, 0) << check.describe();
  EXPECT_NE(check.out.find("serial " + parse(setup).serial), std::string::npos) << check.out;
}

}  // namespace
}  // namespace stir::testing
