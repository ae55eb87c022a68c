// GET /metrics of `tn-cr serve`: what an operator alerts on, in the
// Prometheus text format, named and shaped like sks's (sks/server/metrics.h).
//
//   tn_cr_requests_total{route,code,outcome}  answered requests ("chain" or
//       "metrics"; outcome served, not_modified, not_found, bad_request,
//       method_not_allowed, forbidden, refused, error)
//   tn_cr_response_bytes_total        body bytes sent (HEAD and 304: none)
//   tn_cr_chain_fetches_total{name}   200 and 304 answers per published name
//   tn_cr_chains{state}               files with a servable name in the
//       folder: "valid" chains, "invalid" ones (served as they are, but no
//       verifier can use them: copied in by hand, truncated, too large)
//   tn_cr_chain_expiry_seconds{name}  seconds to the end-entity notAfter of
//       each valid chain (negative once expired)
//   tn_cr_newest_chain_timestamp_seconds  mtime of the newest chain: when
//       the last publish landed
//   tn_cr_connections_*               the listener's counters (http::Stats)
//
// The folder is listed and each chain parsed at each scrape (Repository::
// list(): well under a millisecond a chain); per-name series are written
// for at most kMaxNamedChains names (the rest only count in tn_cr_chains),
// so one scrape's size stays bounded whatever the folder holds.
//
// Threads: every method may be called concurrently (one mutex).
// Errors: render() throws stir::Error(kIo) when the folder cannot be listed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace stir::http {
struct Stats;
}

namespace tn_cr {

inline constexpr std::size_t kMaxNamedChains = 1000;

class Metrics {
 public:
  // The chain route's usual codes start at 0, so increase() and rate() see
  // their first occurrence (Prometheus counts no increase into a series'
  // first sample: the first 500 would otherwise never alert).
  Metrics();

  // One answered request: its route, status and body bytes sent.
  void count_request(const std::string& route, int status, std::size_t body_bytes);

  // A request answered with the chain under `name` (200) or 304.
  void count_fetch(const std::string& name);

  // Everything above; `now` in seconds since the epoch.
  std::string render(const std::string& repository_dir, std::int64_t now,
                     const stir::http::Stats& stats) const;

  // The outcome label of a status code ("served" for 200, ...).
  static const char* outcome(int status);

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, int>, std::uint64_t> requests_;  // (route, code)
  std::uint64_t response_bytes_ = 0;
  std::map<std::string, std::uint64_t> fetches_;  // by name; only names that exist are shown
};

}  // namespace tn_cr
