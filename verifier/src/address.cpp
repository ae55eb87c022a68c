// Special-purpose address ranges (IANA IPv4 and IPv6 special-purpose
// registries, RFC 6890) that an x5u host must not resolve to.
#include <arpa/inet.h>

#include <cstring>

#include "stir/verifier/url.h"

namespace stir::vs {
namespace {

constexpr bool in_v4(std::uint32_t address, std::uint32_t network, int prefix) noexcept {
  const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (address & mask) == network;
}

bool in_v6(const in6_addr& address, std::initializer_list<std::uint8_t> network,
           int prefix) noexcept {
  std::uint8_t net[16] = {};
  std::size_t i = 0;
  for (std::uint8_t b : network) net[i++] = b;
  for (int bit = 0; bit < prefix; bit += 8) {
    const int byte = bit / 8;
    const int bits = prefix - bit >= 8 ? 8 : prefix - bit;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((address.s6_addr[byte] & mask) != (net[byte] & mask)) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(AddressClass c) noexcept {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kSpecial:
      return "special-purpose";
  }
  return "special-purpose";
}

AddressClass classify_ipv4(std::uint32_t a) noexcept {
  if (in_v4(a, 0x7f000000, 8)) return AddressClass::kLoopback;  // 127/8
  if (in_v4(a, 0x0a000000, 8) ||                                // 10/8
      in_v4(a, 0xac100000, 12) ||                               // 172.16/12
      in_v4(a, 0xc0a80000, 16) ||                               // 192.168/16
      in_v4(a, 0x64400000, 10)) {                               // 100.64/10 (shared CGN)
    return AddressClass::kPrivate;
  }
  if (in_v4(a, 0x00000000, 8) ||   // "this network"
      in_v4(a, 0xa9fe0000, 16) ||  // 169.254/16 link-local
      in_v4(a, 0xc0000000, 24) ||  // 192.0.0/24 IETF protocol assignments
      in_v4(a, 0xc0000200, 24) ||  // 192.0.2/24 TEST-NET-1
      in_v4(a, 0xc6120000, 15) ||  // 198.18/15 benchmarking
      in_v4(a, 0xc6336400, 24) ||  // 198.51.100/24 TEST-NET-2
      in_v4(a, 0xcb007100, 24) ||  // 203.0.113/24 TEST-NET-3
      in_v4(a, 0xe0000000, 4) ||   // 224/4 multicast
      in_v4(a, 0xf0000000, 4)) {   // 240/4 reserved, includes 255.255.255.255
    return AddressClass::kSpecial;
  }
  return AddressClass::kPublic;
}

AddressClass classify_ipv6(const in6_addr& a) noexcept {
  if (IN6_IS_ADDR_LOOPBACK(&a)) return AddressClass::kLoopback;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    std::uint32_t v4 = 0;
    std::memcpy(&v4, &a.s6_addr[12], 4);
    return classify_ipv4(ntohl(v4));
  }
  if (in_v6(a, {}, 96)) return AddressClass::kSpecial;       // ::, IPv4-compatible (deprecated)
  if (in_v6(a, {0xfc}, 7)) return AddressClass::kPrivate;    // unique local
  if (in_v6(a, {0xfe, 0x80}, 10) ||                          // link-local
      in_v6(a, {0xfe, 0xc0}, 10) ||                          // site-local (deprecated)
      in_v6(a, {0xff}, 8) ||                                 // multicast
      in_v6(a, {0x00, 0x64, 0xff, 0x9b}, 96) ||              // NAT64 well-known prefix
      in_v6(a, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48) ||  // local-use NAT64
      in_v6(a, {0x01, 0x00}, 64) ||                          // discard-only
      in_v6(a, {0x20, 0x01, 0x0d, 0xb8}, 32) ||              // documentation
      in_v6(a, {0x20, 0x02}, 16) ||                          // 6to4 (embeds IPv4)
      in_v6(a, {0x20, 0x01, 0x00, 0x00}, 32)) {              // Teredo (embeds IPv4)
    return AddressClass::kSpecial;
  }
  return AddressClass::kPublic;
}

AddressClass classify_address(const sockaddr* address) noexcept {
  if (address == nullptr) return AddressClass::kSpecial;
  if (address->sa_family == AF_INET) {
    sockaddr_in v4{};
    std::memcpy(&v4, address, sizeof v4);
    return classify_ipv4(ntohl(v4.sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 v6{};
    std::memcpy(&v6, address, sizeof v6);
    return classify_ipv6(v6.sin6_addr);
  }
  return AddressClass::kSpecial;
}

std::optional<AddressClass> classify_ip_literal(const std::string& text) {
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return classify_ipv4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return classify_ipv6(v6);
  return std::nullopt;
}

bool address_allowed(AddressClass c, bool allow_loopback, bool allow_private) noexcept {
  switch (c) {
    case AddressClass::kPublic:
      return true;
    case AddressClass::kLoopback:
      return allow_loopback;
    case AddressClass::kPrivate:
      return allow_private;
    case AddressClass::kSpecial:
      return false;
  }
  return false;
}

std::string address_to_string(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    sockaddr_in v4{};
    std::memcpy(&v4, address, sizeof v4);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
  } else if (address->sa_family == AF_INET6) {
    sockaddr_in6 v6{};
    std::memcpy(&v6, address, sizeof v6);
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
  } else {
    return "(unknown family)";
  }
  return text;
}

}  // namespace stir::vs
