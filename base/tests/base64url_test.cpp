#include "stir/base64url.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace stir {
namespace {

using namespace std::string_literals;

// RFC 4648 section 10, with padding removed (none of them use '+' or '/').
struct Vector {
  const char* plain;
  const char* encoded;
};
constexpr Vector kRfc4648[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

TEST(Base64Url, Rfc4648VectorsEncodeWithoutPadding) {
  for (const auto& v : kRfc4648) {
    EXPECT_EQ(base64url_encode(std::string_view(v.plain)), v.encoded) << v.plain;
  }
}

TEST(Base64Url, Rfc4648VectorsDecode) {
  for (const auto& v : kRfc4648) {
    EXPECT_EQ(base64url_decode(v.encoded), std::optional<std::string>(v.plain)) << v.encoded;
  }
}

TEST(Base64Url, UsesUrlSafeAlphabet) {
  // 0xFB 0xFF 0xBF is "+/+/" in standard base64.
  const std::vector<std::uint8_t> bytes = {0xFB, 0xFF, 0xBF};
  EXPECT_EQ(base64url_encode(bytes), "-_-_");
  EXPECT_EQ(base64url_decode("-_-_"), std::optional<std::string>("\xFB\xFF\xBF"s));
}

TEST(Base64Url, SpanAndStringViewAgree) {
  const std::string text = "any\0bytes\xFF"s;
  const std::vector<std::uint8_t> bytes(text.begin(), text.end());
  EXPECT_EQ(base64url_encode(bytes), base64url_encode(text));
}

TEST(Base64Url, RoundTripsRandomBytes) {
  std::mt19937 rng(4648);
  for (int n = 0; n < 200; ++n) {
    std::string bytes(static_cast<std::size_t>(n), '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    const std::string encoded = base64url_encode(bytes);
    EXPECT_EQ(encoded.find_first_of("=+/"), std::string::npos);
    EXPECT_EQ(base64url_decode(encoded), std::optional<std::string>(bytes));
  }
}

TEST(Base64Url, DecodeRejectsPadding) {
  EXPECT_FALSE(base64url_decode("Zg=="));
  EXPECT_FALSE(base64url_decode("Zm8="));
}

TEST(Base64Url, DecodeRejectsStandardAlphabet) {
  EXPECT_FALSE(base64url_decode("+/+/"));
  EXPECT_FALSE(base64url_decode("ab+d"));
  EXPECT_FALSE(base64url_decode("ab/d"));
}

TEST(Base64Url, DecodeRejectsLengthFourNPlusOne) {
  EXPECT_FALSE(base64url_decode("Z"));
  EXPECT_FALSE(base64url_decode("Zm9vY"));
}

TEST(Base64Url, DecodeRejectsNonZeroTrailingBits) {
  // "Zg" is 'f'; "Zh" has the same first 8 bits but non-zero spare bits.
  EXPECT_FALSE(base64url_decode("Zh"));
  EXPECT_FALSE(base64url_decode("Zm9"));
  EXPECT_TRUE(base64url_decode("Zm8"));
}

TEST(Base64Url, DecodeRejectsNulWhitespaceAndOtherBytes) {
  EXPECT_FALSE(base64url_decode("Zm\0v"s));
  EXPECT_FALSE(base64url_decode("Zm9v "));
  EXPECT_FALSE(base64url_decode(" Zm9v"));
  EXPECT_FALSE(base64url_decode("Zm\n9v"));
  EXPECT_FALSE(base64url_decode("Zm\t9v"));
  EXPECT_FALSE(base64url_decode("Zm.v"));
  EXPECT_FALSE(base64url_decode("Zm\xC3\xA9v"));
}

TEST(Base64Url, DecodeIsSafeOnEverySingleByteAndRandomInput) {
  int accepted = 0;
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    EXPECT_FALSE(base64url_decode(one));  // length 1 is never valid
    const std::string two = "A" + one;
    if (base64url_decode(two)) ++accepted;
  }
  // "Ax" decodes only when x is in the alphabet and its low 4 bits are 0: A Q g w.
  EXPECT_EQ(accepted, 4);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    const auto decoded = base64url_decode(bytes);
    if (decoded) {
      EXPECT_EQ(base64url_encode(*decoded), bytes);
    }
  }
}

TEST(Base64Url, AlphabetCheck) {
  EXPECT_TRUE(is_base64url_alphabet("AZaz09-_"));
  EXPECT_TRUE(is_base64url_alphabet(""));
  EXPECT_FALSE(is_base64url_alphabet("a=b"));
  EXPECT_FALSE(is_base64url_alphabet("a\0b"s));
}

}  // namespace
}  // namespace stir
