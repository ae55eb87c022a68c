// x5u URL syntax and address policy (PROTOCOL.md section 5).
//
// parse_https_url is strict on purpose: https only, a host (DNS name, dotted
// IPv4, or an IPv6 literal in brackets without a zone), an optional port, a
// plain path. It refuses userinfo ('@' anywhere), a query ('?'), a fragment
// ('#'), backslashes, whitespace, control and non-ASCII bytes, bad
// percent-escapes and URLs over 2048 bytes. Ports are a policy question
// (check_port); addresses are checked after resolution (classify_address).
//
// Threads: pure functions; safe from any thread.
// Errors: never throw (except std::bad_alloc); failures come back as text.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stir::vs {

struct HttpsUrl {
  std::string host;  // lower-cased; IPv6 without brackets
  bool host_is_ip = false;
  bool host_is_ipv6 = false;
  std::uint16_t port = 443;
  bool port_given = false;
  std::string path;  // starts with '/'; "/" when the URL has none

  // "host" or "host:port" ("[v6]:port") as the Host header wants it.
  std::string host_header() const;
};

inline constexpr std::size_t kMaxUrlLength = 2048;

// The parsed URL, or nullopt with `error` set to a short reason
// ("scheme is not https", "userinfo is not allowed", ...).
std::optional<HttpsUrl> parse_https_url(std::string_view url, std::string& error);

// "" when `port` is in `allowed`, else the reason.
std::string check_port(const HttpsUrl& url, const std::vector<std::uint16_t>& allowed);

enum class AddressClass {
  kPublic,    // an ordinary unicast address
  kLoopback,  // 127/8, ::1
  kPrivate,   // 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7
  kSpecial,   // anything else special-purpose: never fetched from
};

std::string_view to_string(AddressClass c) noexcept;

// IPv4 in host byte order.
AddressClass classify_ipv4(std::uint32_t address) noexcept;
// IPv4-mapped addresses (::ffff:a.b.c.d) are classified as their IPv4 address.
AddressClass classify_ipv6(const in6_addr& address) noexcept;
// AF_INET or AF_INET6; any other family is kSpecial.
AddressClass classify_address(const sockaddr* address) noexcept;
// A numeric literal ("10.0.0.1", "::1"); nullopt when it is not one.
std::optional<AddressClass> classify_ip_literal(const std::string& text);

// Whether the policy lets us connect to an address of this class.
bool address_allowed(AddressClass c, bool allow_loopback, bool allow_private) noexcept;

// Numeric text of an address, for messages ("127.0.0.1", "::1").
std::string address_to_string(const sockaddr* address);

}  // namespace stir::vs
