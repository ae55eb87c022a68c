// The request-target, ETag, date and conditional-request rules on their own.
#include "tn_cr/http_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tn_cr/repository.h"

namespace tn_cr::http_rules {
namespace {

TEST(ResolveTarget, ExactNameUnderThePrefix) {
  auto r = resolve_target("/sp-2026-11.pem", "/");
  EXPECT_EQ(r.verdict, TargetVerdict::kName);
  EXPECT_EQ(r.name, "sp-2026-11.pem");
  r = resolve_target("/certs/sp-2026-11.pem", "/certs/");
  EXPECT_EQ(r.verdict, TargetVerdict::kName);
  EXPECT_EQ(r.name, "sp-2026-11.pem");
}

TEST(ResolveTarget, EncodedBytesDotSegmentsAndOddBytesAreBadRequests) {
  const std::string nul_target("/x.pem\0", 7);
  for (const std::string& target :
       std::vector<std::string>{"/../etc/passwd",
                                "/%2e%2e/etc/passwd",
                                "/%2E%2E%2Fetc%2Fpasswd",
                                "/certs/..%2fsecret.pem",
                                "//etc/passwd",
                                "/a//b.pem",
                                "/x.pem%00",
                                nul_target,
                                "/./x.pem",
                                "/certs/.",
                                "/x.pem?a=b",
                                "/x.pem#f",
                                "\\x.pem",
                                "/..\\x.pem",
                                "x.pem",
                                "",
                                "*",
                                "http://127.0.0.1/x.pem",
                                "/\xc3\xa9.pem",
                                "/x .pem",
                                "/x.pem\r\n",
                                "/" + std::string(kMaxTargetLength, 'a')}) {
    EXPECT_EQ(resolve_target(target, "/").verdict, TargetVerdict::kBadRequest) << target;
  }
}

TEST(ResolveTarget, WellFormedButNotANameIsNotFound) {
  for (const std::string& target : std::vector<std::string>{
           "/", "/.hidden.pem", "/x.txt", "/a/b.pem", "/x.pem/", "/certs/x.pem", "/.pem", "/-"}) {
    EXPECT_EQ(resolve_target(target, "/").verdict, TargetVerdict::kNotFound) << target;
  }
  EXPECT_EQ(resolve_target("/x.pem", "/certs/").verdict, TargetVerdict::kNotFound);
  EXPECT_EQ(resolve_target("/certs/", "/certs/").verdict, TargetVerdict::kNotFound);
}

TEST(Names, Rules) {
  EXPECT_TRUE(is_valid_name("sp-2026-11.pem"));
  EXPECT_TRUE(is_valid_name("A_b.c-1.pem"));
  EXPECT_TRUE(is_valid_name(std::string(kMaxNameLength - 4, 'a') + ".pem"));
  EXPECT_FALSE(is_valid_name(std::string(kMaxNameLength - 3, 'a') + ".pem"));
  for (const std::string& name :
       std::vector<std::string>{"", ".pem", ".x.pem", "x.pem.tmp", "a/b.pem", "a..b.pem", "x y.pem",
                                "x%2f.pem", "..pem", "x.PEM"}) {
    EXPECT_FALSE(is_valid_name(name)) << name;
  }
}

TEST(PathPrefix, Rules) {
  for (const char* p : {"/", "/certs/", "/a/b-c/d_e/"}) EXPECT_TRUE(is_valid_path_prefix(p)) << p;
  for (const char* p : {"", "certs/", "/certs", "//", "/a//b/", "/../", "/./", "/a%2f/", "/a b/"}) {
    EXPECT_FALSE(is_valid_path_prefix(p)) << p;
  }
}

TEST(Etag, IsTheQuotedSha256OfTheContent) {
  EXPECT_EQ(make_etag("abc"),
            "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"");
}

TEST(HttpDate, FormatsAndParsesImfFixdate) {
  EXPECT_EQ(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(parse_http_date(format_http_date(1951430400)), 1951430400);  // 2031-11-02
  for (const char* bad : {"", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                          "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT"}) {
    EXPECT_FALSE(parse_http_date(bad).has_value()) << bad;
  }
}

TEST(IfNoneMatch, WeakComparisonOverAList) {
  const std::string etag = "\"abc\"";
  EXPECT_TRUE(if_none_match_matches("\"abc\"", etag));
  EXPECT_TRUE(if_none_match_matches("W/\"abc\"", etag));
  EXPECT_TRUE(if_none_match_matches("*", etag));
  EXPECT_TRUE(if_none_match_matches("\"x\", \"y\" ,W/\"abc\"", etag));
  EXPECT_FALSE(if_none_match_matches("\"abcd\"", etag));
  EXPECT_FALSE(if_none_match_matches("abc", etag));
  EXPECT_FALSE(if_none_match_matches("\"x\", \"y\"", etag));
  EXPECT_FALSE(if_none_match_matches("", etag));
}

TEST(NotModified, IfNoneMatchWinsOverIfModifiedSince) {
  const std::string etag = "\"abc\"";
  const std::string date = format_http_date(1000000);
  EXPECT_TRUE(not_modified("\"abc\"", "", etag, 1000000));
  EXPECT_TRUE(not_modified("", date, etag, 1000000));
  EXPECT_TRUE(not_modified("", date, etag, 999999));
  EXPECT_FALSE(not_modified("", date, etag, 1000001));
  EXPECT_FALSE(not_modified("\"other\"", date, etag, 1000000));
  EXPECT_FALSE(not_modified("", "yesterday", etag, 1000000));
  EXPECT_FALSE(not_modified("", "", etag, 1000000));
}

}  // namespace
}  // namespace tn_cr::http_rules
