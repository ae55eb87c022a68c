#include "tn_cr/http_rules.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

#include "stir/hex.h"
#include "stir/openssl.h"
#include "tn_cr/repository.h"

namespace tn_cr::http_rules {

namespace {

constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_path_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil), so parsing needs neither timegm nor the locale.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace

TargetResult resolve_target(std::string_view target, std::string_view path_prefix) {
  TargetResult result;
  if (target.empty() || target.size() > kMaxTargetLength || target.front() != '/' ||
      !std::all_of(target.begin(), target.end(), is_path_byte) ||
      target.find("..") != std::string_view::npos || target.find("//") != std::string_view::npos ||
      target.find("/./") != std::string_view::npos || target.ends_with("/.")) {
    result.verdict = TargetVerdict::kBadRequest;
    return result;
  }
  if (!target.starts_with(path_prefix)) return result;
  const std::string_view name = target.substr(path_prefix.size());
  if (!is_valid_name(name)) return result;
  result.verdict = TargetVerdict::kName;
  result.name = std::string(name);
  return result;
}

bool is_valid_path_prefix(std::string_view prefix) noexcept {
  if (prefix.empty() || prefix.size() > 128 || prefix.front() != '/' || prefix.back() != '/') {
    return false;
  }
  if (!std::all_of(prefix.begin(), prefix.end(), is_path_byte)) return false;
  if (prefix.size() == 1) return true;
  std::string_view rest = prefix.substr(1, prefix.size() - 2);
  for (;;) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") return false;
    if (slash == std::string_view::npos) return true;
    rest.remove_prefix(slash + 1);
  }
}

std::string make_etag(std::string_view content) {
  return "\"" + stir::hex(stir::sha256(content)) + "\"";
}

std::string format_http_date(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buffer;
}

std::optional<std::int64_t> parse_http_date(std::string_view text) {
  // Exactly "Www, DD Mmm YYYY HH:MM:SS GMT": 29 bytes.
  if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT" ||
      text[7] != ' ' || text[11] != ' ' || text[16] != ' ' || text[19] != ':' || text[22] != ':') {
    return std::nullopt;
  }
  auto number = [&](std::size_t at, std::size_t length) -> std::optional<int> {
    int value = 0;
    for (std::size_t i = at; i < at + length; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto day = number(5, 2), year = number(12, 4), hour = number(17, 2), minute = number(20, 2),
             second = number(23, 2);
  const auto month = std::find(kMonths.begin(), kMonths.end(), text.substr(8, 3));
  if (!day || !year || !hour || !minute || !second || month == kMonths.end() || *day < 1 ||
      *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  const auto m = static_cast<unsigned>(month - kMonths.begin() + 1);
  return days_from_civil(*year, m, static_cast<unsigned>(*day)) * 86400 +
         std::int64_t{*hour} * 3600 + std::int64_t{*minute} * 60 + *second;
}

bool if_none_match_matches(std::string_view header, std::string_view etag) {
  const std::string_view opaque = etag.starts_with("W/") ? etag.substr(2) : etag;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view tag = trim(header.substr(0, comma));
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (!tag.empty() && tag == opaque) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

bool not_modified(std::string_view if_none_match, std::string_view if_modified_since,
                  std::string_view etag, std::int64_t last_modified) {
  if (!if_none_match.empty()) return if_none_match_matches(if_none_match, etag);
  if (if_modified_since.empty()) return false;
  const auto since = parse_http_date(if_modified_since);
  return since && last_modified <= *since;
}

}  // namespace tn_cr::http_rules
