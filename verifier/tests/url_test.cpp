// x5u URL syntax and the special-purpose address ranges.
#include "stir/verifier/url.h"

#include <gtest/gtest.h>

namespace stir::vs {
namespace {

std::string refusal(const std::string& url) {
  std::string error;
  const auto parsed = parse_https_url(url, error);
  EXPECT_FALSE(parsed) << url;
  return error;
}

TEST(ParseHttpsUrl, AcceptsPlainUrls) {
  std::string error;
  auto url = parse_https_url("https://CR.Example.net/sp-2026-11.pem", error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->host, "cr.example.net");
  EXPECT_EQ(url->port, 443);
  EXPECT_FALSE(url->port_given);
  EXPECT_EQ(url->path, "/sp-2026-11.pem");
  EXPECT_EQ(url->host_header(), "cr.example.net");

  url = parse_https_url("https://127.0.0.1:8443/a/b%20c.pem", error);
  ASSERT_TRUE(url) << error;
  EXPECT_TRUE(url->host_is_ip);
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->host_header(), "127.0.0.1:8443");

  url = parse_https_url("https://[::1]:8443/x.pem", error);
  ASSERT_TRUE(url) << error;
  EXPECT_TRUE(url->host_is_ipv6);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->host_header(), "[::1]:8443");

  url = parse_https_url("https://cr.example.net", error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->path, "/");
}

TEST(ParseHttpsUrl, RefusesWhatPeersMustNotSend) {
  EXPECT_EQ(refusal("http://cr.example.net/sp.pem"), "scheme is not https");
  EXPECT_EQ(refusal("ftp://cr.example.net/sp.pem"), "scheme is not https");
  EXPECT_EQ(refusal("https://cr.example.net/sp.pem?x=1"), "a query is not allowed");
  EXPECT_EQ(refusal("https://cr.example.net/sp.pem#frag"), "a fragment is not allowed");
  EXPECT_EQ(refusal("https://user:pw@cr.example.net/sp.pem"), "userinfo ('@') is not allowed");
  EXPECT_NE(refusal("https://cr.example.net/sp .pem"), "");
  EXPECT_NE(refusal("https://cr.example.net/sp\n.pem"), "");
  EXPECT_NE(refusal(std::string("https://cr.example.net/sp\0.pem", 30)), "");
  EXPECT_NE(refusal("https://cr.example.net/\xc3\xa9.pem"), "");
  EXPECT_NE(refusal("https://cr.example.net\\@evil/sp.pem"), "");
  EXPECT_NE(refusal("https://cr.example.net:/sp.pem"), "");
  EXPECT_NE(refusal("https://cr.example.net:0/sp.pem"), "");
  EXPECT_NE(refusal("https://cr.example.net:65536/sp.pem"), "");
  EXPECT_NE(refusal("https://cr.example.net:+443/sp.pem"), "");
  EXPECT_NE(refusal("https:///sp.pem"), "");
  EXPECT_NE(refusal("https://[::1/sp.pem"), "");
  EXPECT_NE(refusal("https://[fe80::1%25eth0]/sp.pem"), "");
  EXPECT_NE(refusal("https://[::1]x/sp.pem"), "");
  EXPECT_NE(refusal("https://-bad.example/sp.pem"), "");
  EXPECT_NE(refusal("https://cr.example.net/%zz"), "");
  EXPECT_NE(refusal("https://cr.example.net/%4"), "");
  EXPECT_NE(refusal("https://cr.example.net/<x>"), "");
  EXPECT_NE(refusal(""), "");
  EXPECT_NE(refusal("https://" + std::string(3000, 'a') + "/x"), "");
  // Numeric hosts that are not dotted quads never reach the resolver.
  EXPECT_NE(refusal("https://2130706433/sp.pem"), "");
  EXPECT_NE(refusal("https://127.1/sp.pem"), "");
  EXPECT_NE(refusal("https://0x7f.0.0.1/sp.pem"), "");
}

TEST(CheckPort, OnlyConfiguredPorts) {
  std::string error;
  const auto default_port = parse_https_url("https://cr.example.net/x", error);
  const auto port_80 = parse_https_url("https://cr.example.net:80/x", error);
  const auto port_8443 = parse_https_url("https://cr.example.net:8443/x", error);
  const std::vector<std::uint16_t> allowed = {443, 8443};
  EXPECT_EQ(check_port(*default_port, allowed), "");
  EXPECT_EQ(check_port(*port_8443, allowed), "");
  EXPECT_EQ(check_port(*port_80, allowed), "port 80 is not allowed");
}

TEST(ClassifyAddress, Ipv4Ranges) {
  auto c = [](const char* text) { return *classify_ip_literal(text); };
  EXPECT_EQ(c("8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(c("127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(c("127.255.255.254"), AddressClass::kLoopback);
  for (const char* p : {"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1"}) {
    EXPECT_EQ(c(p), AddressClass::kPrivate) << p;
  }
  for (const char* s : {"0.0.0.0", "0.1.2.3", "169.254.169.254", "192.0.0.8", "192.0.2.1",
                        "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1",
                        "239.255.255.255", "240.0.0.1", "255.255.255.255"}) {
    EXPECT_EQ(c(s), AddressClass::kSpecial) << s;
  }
  EXPECT_EQ(c("172.32.0.1"), AddressClass::kPublic);
  EXPECT_EQ(c("100.128.0.1"), AddressClass::kPublic);
  EXPECT_EQ(c("198.20.0.1"), AddressClass::kPublic);
  EXPECT_FALSE(classify_ip_literal("example.net"));
}

TEST(ClassifyAddress, Ipv6Ranges) {
  auto c = [](const char* text) { return *classify_ip_literal(text); };
  EXPECT_EQ(c("2606:4700::1111"), AddressClass::kPublic);
  EXPECT_EQ(c("::1"), AddressClass::kLoopback);
  EXPECT_EQ(c("fc00::1"), AddressClass::kPrivate);
  EXPECT_EQ(c("fd12:3456::1"), AddressClass::kPrivate);
  for (const char* s : {"::", "fe80::1", "febf::1", "ff02::1", "64:ff9b::a00:1", "2001:db8::1",
                        "::10.0.0.1", "2002:c0a8:101::1", "2001:0:4136:e378::1", "100::1"}) {
    EXPECT_EQ(c(s), AddressClass::kSpecial) << s;
  }
  // IPv4-mapped addresses are judged by their IPv4 address.
  EXPECT_EQ(c("::ffff:127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(c("::ffff:10.1.2.3"), AddressClass::kPrivate);
  EXPECT_EQ(c("::ffff:169.254.169.254"), AddressClass::kSpecial);
  EXPECT_EQ(c("::ffff:8.8.8.8"), AddressClass::kPublic);
}

TEST(AddressAllowed, FollowsThePolicy) {
  EXPECT_TRUE(address_allowed(AddressClass::kPublic, false, false));
  EXPECT_FALSE(address_allowed(AddressClass::kLoopback, false, true));
  EXPECT_TRUE(address_allowed(AddressClass::kLoopback, true, false));
  EXPECT_FALSE(address_allowed(AddressClass::kPrivate, true, false));
  EXPECT_TRUE(address_allowed(AddressClass::kPrivate, false, true));
  EXPECT_FALSE(address_allowed(AddressClass::kSpecial, true, true));
}

}  // namespace
}  // namespace stir::vs
