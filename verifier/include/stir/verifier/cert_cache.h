// The x5u certificate cache: URL -> parsed chain, ready for verification.
//
// - Expiry: fetched_at + max(HTTP freshness lifetime, min_cache_s), never
//   past the end-entity certificate's notAfter (an already expired
//   certificate is kept failure_cache_s, like a failure). The HTTP lifetime
//   is Cache-Control max-age, else Expires - Date (Expires - now without a
//   Date); no-store / no-cache count as 0, so the 24 h floor applies: an
//   x5u URL's content never changes (PROTOCOL.md section 5).
// - Concurrent misses for one URL fetch once; the others wait for it.
// - A failed fetch (policy refusal, network, HTTP, a body that is not a PEM
//   chain) is cached failure_cache_s so a dead URL is not hammered; one
//   that timed out marks its host failed as long (every URL of that host
//   is refused at once until then).
// - Callers in a fetch or waiting for one are bounded altogether
//   (max_fetches_in_flight) and per host (half of that), fetches per host
//   (max_fetches_per_host): beyond, get() fails at once and keeps nothing.
//   A cached URL is a map lookup and never waits for any fetch.
// - With cache_dir set, each fetched chain is written atomically to
//   <cache_dir>/<sha256(url) hex>.pem plus a .json with url, fetched_at and
//   expires_at, and load_persisted() reads the live ones back at start-up.
//   Failures are not persisted.
// - An entry also memoises its last good chain verdict (see Verifier) so the
//   hot path is one map lookup, not an X509_verify_cert.
//
// Ownership: entries are shared (std::shared_ptr<const CertificateEntry>);
// a caller may keep one after it has left the cache.
// Threads: every member function is safe from any thread.
// Errors: get() never throws (except std::bad_alloc); a failure is a lookup
// with a null entry and an error text. load_persisted() skips unreadable
// files (counted in the metrics).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "stir/openssl.h"
#include "stir/verifier/chain.h"
#include "stir/verifier/config.h"
#include "stir/verifier/fetcher.h"
#include "stir/verifier/metrics.h"

namespace stir::vs {

namespace detail {
template <typename V>
class ExpiringCache;
class FetchGate;
}  // namespace detail

struct CertificateEntry {
  std::string url;
  std::string pem;             // as served
  std::vector<X509Ptr> chain;  // end-entity first
  EvpPkeyPtr leaf_key;         // the end-entity public key
  std::int64_t fetched_at = 0;
  std::int64_t expires_at = 0;
  std::int64_t not_after = 0;  // of the end-entity certificate

  // Memo of the last good chain verdict for this entry: reused for an iat
  // inside [verdict.valid_from, verdict.valid_until] until recheck_at.
  struct VerdictMemo {
    ChainVerdict verdict;
    std::int64_t recheck_at = 0;
  };
  std::optional<VerdictMemo> memo() const;
  void set_memo(VerdictMemo memo) const;

 private:
  mutable std::mutex memo_mutex_;
  mutable std::optional<VerdictMemo> memo_;
};

// Parses a served PEM chain into an entry (expires_at left 0). Throws
// stir::Error(kMalformed) when `pem` is not a PEM certificate chain.
std::shared_ptr<CertificateEntry> make_certificate_entry(const std::string& url,
                                                         const std::string& pem,
                                                         std::int64_t fetched_at);

// HTTP freshness lifetime in seconds (>= 0), nullopt when the response says
// nothing (no Cache-Control max-age / no-store / no-cache, no Expires).
std::optional<std::int64_t> http_freshness_lifetime(const FetchResponse& response,
                                                    std::int64_t now);

// Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::optional<std::int64_t> parse_http_date(const std::string& text);

struct CertificateLookup {
  std::shared_ptr<const CertificateEntry> entry;  // null when the URL failed
  std::string error;                              // why, when it failed
  bool from_cache = false;                        // no fetch by this call
};

class CertificateCache {
 public:
  // `fetcher` and `metrics` must outlive the cache.
  CertificateCache(const VerifierConfig& config, const HttpsFetcher& fetcher,
                   VerifierMetrics& metrics);
  ~CertificateCache();
  // Holds a mutex and in-flight fetches.
  CertificateCache(const CertificateCache&) = delete;
  CertificateCache& operator=(const CertificateCache&) = delete;

  // The chain for `url` at time `now`, fetched when not cached or expired.
  CertificateLookup get(const std::string& url, std::int64_t now);

  // Reads live entries from cache_dir (no-op without one); returns how many.
  std::size_t load_persisted(std::int64_t now);

  std::size_t size() const;
  void clear();
  // x5u fetches in flight now (waiters included).
  std::size_t fetches_in_flight() const;

 private:
  std::shared_ptr<const CertificateEntry> fetch(const std::string& url, std::int64_t now,
                                                std::string& error, std::int64_t& expires_at);
  void persist(const CertificateEntry& entry);

  VerifierConfig config_;
  const HttpsFetcher& fetcher_;
  VerifierMetrics& metrics_;
  std::unique_ptr<detail::ExpiringCache<CertificateEntry>> cache_;
  std::shared_ptr<detail::FetchGate> gate_;
};

}  // namespace stir::vs
