#include "stir/verifier/url.h"

#include <arpa/inet.h>

#include <algorithm>

namespace stir::vs {
namespace {

bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// RFC 3986 pchar without '@' (refused anywhere) and '%' (checked apart), plus '/'.
bool is_path_char(char c) noexcept {
  if (is_alpha(c) || is_digit(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':  // unreserved
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':  // sub-delims
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '/':
      return true;
    default:
      return false;
  }
}

// A DNS name: labels of letters, digits and '-', not starting or ending with
// '-', 1-63 bytes each, and a last label that is not all digits (so that
// "2130706433" or "127.1" never reach the resolver as a name).
bool is_dns_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (host.back() == '.') host.remove_suffix(1);  // fully qualified form
  std::size_t start = 0;
  bool last_all_digits = false;
  while (start <= host.size()) {
    std::size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    const std::string_view label = host.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    last_all_digits = true;
    for (char c : label) {
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
      if (!is_digit(c)) last_all_digits = false;
    }
    start = end + 1;
  }
  return !last_all_digits;
}

}  // namespace

std::string HttpsUrl::host_header() const {
  std::string out = host_is_ipv6 ? "[" + host + "]" : host;
  if (port != 443) out.append(":").append(std::to_string(port));
  return out;
}

namespace {

// The checks below return "" when the part is good, else why not.

// Bytes refused anywhere in the URL: what could smuggle a second meaning past
// one parser to another (whitespace, userinfo, query, fragment, backslash).
std::string check_url_bytes(std::string_view url) {
  if (url.empty()) return "URL is empty";
  if (url.size() > kMaxUrlLength) {
    return "URL is longer than " + std::to_string(kMaxUrlLength) + " bytes";
  }
  for (char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) return "URL holds whitespace, control or non-ASCII bytes";
  }
  if (url.find('@') != std::string_view::npos) return "userinfo ('@') is not allowed";
  if (url.find('?') != std::string_view::npos) return "a query is not allowed";
  if (url.find('#') != std::string_view::npos) return "a fragment is not allowed";
  if (url.find('\\') != std::string_view::npos) return "a backslash is not allowed";
  return "";
}

constexpr std::string_view kScheme = "https://";

// The scheme, compared without regard to case (RFC 3986 section 3.1).
std::string check_scheme(std::string_view url) {
  std::string scheme;
  for (std::size_t i = 0; i < std::min(url.size(), kScheme.size()); ++i) {
    scheme += to_lower(url[i]);
  }
  return scheme == kScheme ? "" : "scheme is not https";
}

// "[v6]" or "[v6]:port". A zone ("%eth0") is refused: it names a local
// interface, which a peer has no business choosing.
std::string read_ipv6_host(std::string_view authority, HttpsUrl& out,
                           std::optional<std::string_view>& port_text) {
  const std::size_t close = authority.find(']');
  if (close == std::string_view::npos) return "IPv6 literal lacks ']'";
  out.host = std::string(authority.substr(1, close - 1));
  in6_addr v6{};
  if (out.host.empty() || out.host.find('%') != std::string::npos ||
      inet_pton(AF_INET6, out.host.c_str(), &v6) != 1) {
    return "host is not a valid IPv6 literal";
  }
  out.host_is_ip = out.host_is_ipv6 = true;
  std::transform(out.host.begin(), out.host.end(), out.host.begin(), to_lower);
  const std::string_view after = authority.substr(close + 1);
  if (!after.empty()) {
    if (after.front() != ':') return "unexpected text after the IPv6 literal";
    port_text = after.substr(1);
  }
  return "";
}

// "host" or "host:port", the host a dotted-quad IPv4 address or a DNS name.
std::string read_name_or_ipv4_host(std::string_view authority, HttpsUrl& out,
                                   std::optional<std::string_view>& port_text) {
  const std::size_t colon = authority.find(':');
  out.host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  std::transform(out.host.begin(), out.host.end(), out.host.begin(), to_lower);
  if (out.host.empty()) return "host is empty";
  in_addr v4{};
  if (inet_pton(AF_INET, out.host.c_str(), &v4) == 1) {
    out.host_is_ip = true;
  } else if (!is_dns_name(out.host)) {
    return "host is not a valid DNS name or IP address";
  }
  return "";
}

// Decimal digits only (no sign, no spaces: std::stol would take those), 1-65535.
std::string read_port(std::string_view port_text, HttpsUrl& out) {
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), is_digit)) {
    return "port is not a number";
  }
  const long port = std::stol(std::string(port_text));
  if (port < 1 || port > 65535) return "port is out of range";
  out.port = static_cast<std::uint16_t>(port);
  out.port_given = true;
  return "";
}

std::string check_path(std::string_view path) {
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size() || !is_hex(path[i + 1]) || !is_hex(path[i + 2])) {
        return "path holds a bad percent-escape";
      }
      i += 2;
    } else if (!is_path_char(c)) {
      return std::string("path holds '") + c + "'";
    }
  }
  return "";
}

// The parts in order: bytes, scheme, host, port, path.
std::string read_url(std::string_view url, HttpsUrl& out) {
  if (std::string problem = check_url_bytes(url); !problem.empty()) return problem;
  if (std::string problem = check_scheme(url); !problem.empty()) return problem;
  const std::string_view rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  std::optional<std::string_view> port_text;
  std::string problem = !authority.empty() && authority.front() == '['
                            ? read_ipv6_host(authority, out, port_text)
                            : read_name_or_ipv4_host(authority, out, port_text);
  if (problem.empty() && port_text) problem = read_port(*port_text, out);
  if (problem.empty()) problem = check_path(path);
  if (problem.empty()) out.path = std::string(path);
  return problem;
}

}  // namespace

std::optional<HttpsUrl> parse_https_url(std::string_view url, std::string& error) {
  HttpsUrl out;
  std::string problem = read_url(url, out);
  if (problem.empty()) return out;
  error = std::move(problem);  // only a failure writes `error`
  return std::nullopt;
}

std::string check_port(const HttpsUrl& url, const std::vector<std::uint16_t>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), url.port) != allowed.end()) return "";
  return "port " + std::to_string(url.port) + " is not allowed";
}

}  // namespace stir::vs
