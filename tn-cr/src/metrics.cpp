#include "tn_cr/metrics.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

#include "stir/http/server.h"
#include "tn_cr/repository.h"

namespace tn_cr {

namespace {

// Names a fetch is counted under, at most: published names only reach
// count_fetch(), and unpublished ones stay counted until a restart.
constexpr std::size_t kMaxCountedNames = 4 * kMaxNamedChains;

// "2026-11-30T12:00:00Z" (ChainInfo::not_after) as seconds since the epoch.
bool parse_time(const std::string& text, std::int64_t& out) {
  std::tm tm{};
  char zone = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &zone) != 7 ||
      zone != 'Z') {
    return false;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  out = static_cast<std::int64_t>(::timegm(&tm));
  return true;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

const char* Metrics::outcome(int status) {
  switch (status) {
    case 200:
      return "served";
    case 304:
      return "not_modified";
    case 400:
      return "bad_request";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    default:
      return status >= 500 ? "error" : "refused";
  }
}

Metrics::Metrics() {
  for (const int code : {200, 304, 400, 404, 405, 413, 500}) requests_[{"chain", code}] = 0;
}

void Metrics::count_request(const std::string& route, int status, std::size_t body_bytes) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  response_bytes_ += body_bytes;
}

void Metrics::count_fetch(const std::string& name) {
  std::lock_guard lock(mutex_);
  const auto it = fetches_.find(name);
  if (it != fetches_.end()) {
    ++it->second;
  } else if (fetches_.size() < kMaxCountedNames) {
    fetches_.emplace(name, 1);
  }
}

std::string Metrics::render(const std::string& repository_dir, std::int64_t now,
                            const stir::http::Stats& stats) const {
  const std::vector<ChainInfo> chains = Repository(repository_dir).list();
  std::string out;
  {
    std::lock_guard lock(mutex_);
    header(out, "tn_cr_requests_total", "counter",
           "HTTP requests by route, status code and outcome.");
    for (const auto& [key, value] : requests_) {
      const auto& [route, code] = key;
      out += "tn_cr_requests_total{route=\"" + route + "\",code=\"" + std::to_string(code) +
             "\",outcome=\"" + outcome(code) + "\"} " + std::to_string(value) + "\n";
    }
    header(out, "tn_cr_response_bytes_total", "counter",
           "Response body bytes sent (HEAD and 304 send none).");
    out += "tn_cr_response_bytes_total " + std::to_string(response_bytes_) + "\n";
    header(out, "tn_cr_chain_fetches_total", "counter",
           "Requests answered with a published chain (200) or 304, by name.");
    std::size_t named = 0;
    for (const auto& chain : chains) {
      if (!chain.error.empty() || named++ >= kMaxNamedChains) continue;
      const auto it = fetches_.find(chain.name);
      out += "tn_cr_chain_fetches_total{name=\"" + chain.name + "\"} " +
             std::to_string(it == fetches_.end() ? 0 : it->second) + "\n";
    }
  }
  std::size_t valid = 0;
  std::int64_t newest = 0;
  header(out, "tn_cr_chain_expiry_seconds", "gauge",
         "Seconds until the end-entity notAfter of each published chain, by name.");
  for (const auto& chain : chains) {
    std::int64_t not_after = 0;
    if (!chain.error.empty() || !parse_time(chain.not_after, not_after)) continue;
    newest = std::max(newest, chain.mtime);
    if (valid++ < kMaxNamedChains) {
      out += "tn_cr_chain_expiry_seconds{name=\"" + chain.name + "\"} " +
             std::to_string(not_after - now) + "\n";
    }
  }
  header(out, "tn_cr_chains", "gauge",
         "Files with a servable name: valid chains, and invalid ones (served as they are).");
  out += "tn_cr_chains{state=\"valid\"} " + std::to_string(valid) + "\n";
  out += "tn_cr_chains{state=\"invalid\"} " + std::to_string(chains.size() - valid) + "\n";
  header(out, "tn_cr_newest_chain_timestamp_seconds", "gauge",
         "Modification time of the newest valid chain: when the last publish landed.");
  out += "tn_cr_newest_chain_timestamp_seconds " + std::to_string(newest) + "\n";

  struct Series {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t value;
  };
  const Series listener[] = {
      {"tn_cr_connections_accepted_total", "counter", "TCP connections accepted and served.",
       stats.accepted_connections},
      {"tn_cr_connections_rejected_total", "counter",
       "TCP connections closed at once: over server.max_connections.", stats.rejected_connections},
      {"tn_cr_connections_open", "gauge", "Open connections.", stats.open_connections},
      {"tn_cr_connections_pending", "gauge", "Connections that have not finished the handshake.",
       stats.pending_connections},
      {"tn_cr_connections_evicted_total", "counter",
       "Unfinished connections closed for a newer one: over a per-address or pending cap.",
       stats.evicted_connections},
  };
  for (const auto& series : listener) {
    header(out, series.name, series.type, series.help);
    out += std::string(series.name) + " " + std::to_string(series.value) + "\n";
  }
  return out;
}

}  // namespace tn_cr
