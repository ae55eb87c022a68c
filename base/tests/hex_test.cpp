// stir::hex, the one hex encoder: digests, key IDs, fingerprints.
#include "stir/hex.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

namespace stir {
namespace {

TEST(HexTest, TwoLowerCaseDigitsPerByteByDefault) {
  const std::vector<std::uint8_t> bytes{0x00, 0x0f, 0xab, 0xff};
  EXPECT_EQ(hex(bytes), "000fabff");
}

TEST(HexTest, UpperCaseWithASeparatorBetweenBytesOnly) {
  const std::array<std::uint8_t, 3> bytes{0xde, 0x01, 0x9c};
  EXPECT_EQ(hex(bytes, HexCase::kUpper, ":"), "DE:01:9C");
}

TEST(HexTest, NoBytesNoText) {
  EXPECT_EQ(hex(std::vector<std::uint8_t>{}, HexCase::kUpper, ":"), "");
}

}  // namespace
}  // namespace stir
