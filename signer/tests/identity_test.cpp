#include "stir/identity.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace stir {
namespace {

using namespace std::string_literals;

constexpr std::string_view kToken = "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjF9.c2lnbmF0dXJl";
constexpr std::string_view kInfo = "https://cr.example.net/sp-2026-11.pem";

std::string well_formed() {
  return std::string(kToken) + ";info=<" + std::string(kInfo) + ">;alg=ES256;ppt=shaken";
}

TEST(IdentityParse, WellFormed) {
  const IdentityParse parsed = parse_identity_header(well_formed());
  ASSERT_TRUE(parsed.header) << parsed.error;
  const IdentityHeader& h = *parsed.header;
  EXPECT_EQ(h.jws, kToken);
  EXPECT_EQ(h.header_b64, "eyJhbGciOiJFUzI1NiJ9");
  EXPECT_EQ(h.payload_b64, "eyJpYXQiOjF9");
  EXPECT_EQ(h.signature_b64, "c2lnbmF0dXJl");
  EXPECT_FALSE(h.compact_form);
  EXPECT_EQ(h.info, std::optional<std::string>(kInfo));
  EXPECT_EQ(h.alg, std::optional<std::string>("ES256"));
  EXPECT_EQ(h.ppt, std::optional<std::string>("shaken"));
  EXPECT_TRUE(h.other_params.empty());
}

TEST(IdentityParse, ParametersInAnyOrderAndCase) {
  const IdentityParse parsed = parse_identity_header(
      std::string(kToken) + ";PPT=shaken;Alg=ES256;INFO=<" + std::string(kInfo) + ">");
  ASSERT_TRUE(parsed.header) << parsed.error;
  EXPECT_EQ(parsed.header->info, std::optional<std::string>(kInfo));
  EXPECT_EQ(parsed.header->alg, std::optional<std::string>("ES256"));
  EXPECT_EQ(parsed.header->ppt, std::optional<std::string>("shaken"));
}

TEST(IdentityParse, QuotedValuesAreUnquoted) {
  const IdentityParse parsed = parse_identity_header(
      std::string(kToken) + ";info=<" + std::string(kInfo) + ">;alg=\"ES256\";ppt=\"shaken\"");
  ASSERT_TRUE(parsed.header) << parsed.error;
  EXPECT_EQ(parsed.header->ppt, std::optional<std::string>("shaken"));
  EXPECT_EQ(parsed.header->alg, std::optional<std::string>("ES256"));
}

TEST(IdentityParse, ExtraParametersAreKept) {
  const IdentityParse parsed =
      parse_identity_header(well_formed() + ";Foo=bar;flag;quoted=\"a;b \\\"c\\\"\"");
  ASSERT_TRUE(parsed.header) << parsed.error;
  const auto& other = parsed.header->other_params;
  ASSERT_EQ(other.size(), 3u);
  EXPECT_EQ(other[0], std::make_pair("foo"s, "bar"s));
  EXPECT_EQ(other[1], std::make_pair("flag"s, ""s));
  EXPECT_EQ(other[2], std::make_pair("quoted"s, "a;b \"c\""s));
}

TEST(IdentityParse, WhitespaceAroundSeparatorsIsTolerated) {
  const IdentityParse parsed =
      parse_identity_header("  " + std::string(kToken) + " ; info = <" + std::string(kInfo) +
                            ">\t;  alg=ES256 ;ppt = shaken \r\n");
  ASSERT_TRUE(parsed.header) << parsed.error;
  EXPECT_EQ(parsed.header->info, std::optional<std::string>(kInfo));
  EXPECT_EQ(parsed.header->ppt, std::optional<std::string>("shaken"));
  EXPECT_EQ(parsed.header->jws, kToken);
}

TEST(IdentityParse, TokenWithoutParametersParsesWithoutInfo) {
  const IdentityParse parsed = parse_identity_header(kToken);
  ASSERT_TRUE(parsed.header) << parsed.error;
  EXPECT_FALSE(parsed.header->info);
  EXPECT_FALSE(parsed.header->alg);
  EXPECT_FALSE(parsed.header->ppt);
}

TEST(IdentityParse, CompactForm) {
  const IdentityParse parsed =
      parse_identity_header("..c2lnbmF0dXJl;info=<" + std::string(kInfo) + ">");
  ASSERT_TRUE(parsed.header) << parsed.error;
  EXPECT_TRUE(parsed.header->compact_form);
  EXPECT_TRUE(parsed.header->header_b64.empty());
  EXPECT_TRUE(parsed.header->payload_b64.empty());
  EXPECT_EQ(parsed.header->signature_b64, "c2lnbmF0dXJl");
}

TEST(IdentityParse, TruncatedTokensAreErrors) {
  const std::string full = well_formed();
  for (const std::string& bad : {
           "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjF9"s,           // two segments
           "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjF9."s,          // empty signature
           "eyJhbGciOiJFUzI1NiJ9.eyJpYX"s,                 // cut mid-segment
           "eyJhbGciOiJFUzI1NiJ9"s,                        // one segment
           "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjF9;info=<x>"s,  // two segments with params
           ".eyJpYXQiOjF9.c2ln"s,                          // empty header only
           "eyJhbGciOiJFUzI1NiJ9..c2ln"s,                  // empty payload only
           "a.b.c.d"s,                                     // four segments
           "a+b.c.d"s, "a.b.c=;info=<x>"s, "a.b.c d"s,     // outside base64url
       }) {
    const IdentityParse parsed = parse_identity_header(bad);
    EXPECT_FALSE(parsed.header) << bad;
    EXPECT_FALSE(parsed.error.empty()) << bad;
  }
  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    // Every prefix parses or fails cleanly; prefixes ending inside the token fail.
    const IdentityParse parsed = parse_identity_header(full.substr(0, cut));
    if (cut <= kToken.rfind('.') + 1) {
      EXPECT_FALSE(parsed.header) << cut;
    }
    EXPECT_NE(parsed.header.has_value(), !parsed.error.empty());
  }
}

TEST(IdentityParse, MalformedParametersAreErrors) {
  for (const std::string& suffix : {
           ";"s,
           ";;info=<x>"s,
           ";=x"s,
           ";alg"s,
           ";alg="s,
           ";alg=ES256;alg=ES256"s,
           ";ppt=shaken;ppt=shaken"s,
           ";foo=\"unterminated"s,
           ";foo=bar baz"s,
           ";foo=@"s,
       }) {
    const IdentityParse parsed = parse_identity_header(std::string(kToken) + suffix);
    EXPECT_FALSE(parsed.header) << suffix;
    EXPECT_FALSE(parsed.info_error) << suffix;
  }
}

TEST(IdentityParse, MalformedInfoIsFlagged) {
  for (const std::string& suffix : {
           ";info=https://x/y.pem"s,
           ";info=\"<https://x/y.pem>\""s,
           ";info=<https://x"s,
           ";info=<>"s,
           ";info"s,
           ";info=<https://a b>"s,
           ";info=<a>;info=<a>"s,
           ";info=<a>x"s,
       }) {
    const IdentityParse parsed = parse_identity_header(std::string(kToken) + suffix);
    EXPECT_FALSE(parsed.header) << suffix;
    EXPECT_TRUE(parsed.info_error) << suffix;
  }
}

TEST(IdentityParse, OversizeInputIsRefused) {
  std::string huge = well_formed() + ";x=";
  huge.append(kMaxIdentityHeaderSize, 'a');
  const IdentityParse parsed = parse_identity_header(huge);
  EXPECT_FALSE(parsed.header);
  EXPECT_NE(parsed.error.find("longer"), std::string::npos) << parsed.error;
}

TEST(IdentityParse, EmptyAndBlankAreErrors) {
  EXPECT_FALSE(parse_identity_header("").header);
  EXPECT_FALSE(parse_identity_header(" \t\r\n").header);
}

TEST(IdentityParse, NulBytesAndSingleBytesNeverCrash) {
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    const IdentityParse parsed = parse_identity_header(one);
    EXPECT_FALSE(parsed.header) << b;
    const IdentityParse inside = parse_identity_header(well_formed() + one);
    EXPECT_NE(inside.header.has_value(), !inside.error.empty());
    const IdentityParse in_token = parse_identity_header(std::string(kToken.substr(0, 5)) + one +
                                                         std::string(kToken.substr(5)));
    EXPECT_NE(in_token.header.has_value(), !in_token.error.empty());
  }
  EXPECT_FALSE(parse_identity_header("\0\0\0"s).header);
  EXPECT_FALSE(parse_identity_header(std::string(kToken) + "\0;info=<a>"s).header);
  EXPECT_FALSE(parse_identity_header(std::string(kToken) + ";info=<a\0b>"s).header);
}

TEST(IdentityParse, RandomBytesNeverCrash) {
  std::mt19937 rng(8224);
  const std::string alphabet = "ab.;=<>\" \t\\-_0Z";
  for (int i = 0; i < 4000; ++i) {
    std::string input(rng() % 200, '\0');
    if (i % 2 == 0) {
      for (char& c : input) c = static_cast<char>(rng() & 0xFF);
    } else {
      // Biased towards the header's own punctuation so the parameter parser is reached.
      for (char& c : input) c = alphabet[rng() % alphabet.size()];
    }
    const IdentityParse parsed = parse_identity_header(input);
    EXPECT_NE(parsed.header.has_value(), !parsed.error.empty());
  }
}

TEST(SplitCompactJws, SplitsThreeSegments) {
  IdentityHeader out;
  std::string error;
  ASSERT_TRUE(split_compact_jws(kToken, out, error)) << error;
  EXPECT_EQ(out.signature_b64, "c2lnbmF0dXJl");
  EXPECT_FALSE(split_compact_jws("a.b", out, error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace stir
