// HTTP freshness (RFC 9111 section 4.2.1), only what an x5u cache needs.
#include <ctime>

#include "stir/verifier/cert_cache.h"

namespace stir::vs {
namespace {

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

// max-age from a Cache-Control value; -1 for none, 0 for no-store/no-cache.
std::int64_t cache_control_max_age(std::string_view value) {
  std::int64_t max_age = -1;
  bool no_store = false;
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t end = value.find(',', start);
    if (end == std::string_view::npos) end = value.size();
    const std::string directive = lower_trimmed(value.substr(start, end - start));
    start = end + 1;
    if (directive == "no-store" || directive == "no-cache") {
      no_store = true;
      continue;
    }
    if (directive.rfind("max-age=", 0) != 0) continue;
    std::string number = directive.substr(8);
    if (number.size() >= 2 && number.front() == '"' && number.back() == '"') {
      number = number.substr(1, number.size() - 2);
    }
    if (number.empty() || number.size() > 12 ||
        number.find_first_not_of("0123456789") != std::string::npos) {
      continue;  // a malformed max-age is ignored
    }
    max_age = std::stoll(number);
  }
  return no_store ? 0 : max_age;
}

}  // namespace

std::optional<std::int64_t> parse_http_date(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::optional<std::int64_t> http_freshness_lifetime(const FetchResponse& response,
                                                    std::int64_t now) {
  if (const auto cache_control = response.header("cache-control")) {
    const std::int64_t max_age = cache_control_max_age(*cache_control);
    if (max_age >= 0) return max_age;
  }
  if (const auto expires = response.header("expires")) {
    const auto at = parse_http_date(*expires);
    if (!at) return 0;  // an invalid Expires means "already expired"
    std::int64_t base = now;
    if (const auto date = response.header("date")) {
      if (const auto server_now = parse_http_date(*date)) base = *server_now;
    }
    return *at > base ? *at - base : 0;
  }
  return std::nullopt;
}

}  // namespace stir::vs
