#include "stir/verifier/cert_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "expiring_cache.h"
#include "fetch_gate.h"
#include "stir/error.h"
#include "stir/files.h"
#include "stir/hex.h"
#include "stir/verifier/url.h"
#include "stir/x509.h"

namespace stir::vs {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_small_file(const fs::path& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out(max + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(in.gcount()));
  if (out.size() > max) return std::nullopt;
  return out;
}

// Expiry of a fetched certificate (see the header).
std::int64_t certificate_expiry(std::optional<std::int64_t> lifetime, std::int64_t fetched_at,
                                std::int64_t not_after, const VerifierConfig& config) {
  const std::int64_t keep = std::max(lifetime.value_or(0), config.min_cache_s);
  std::int64_t expires = fetched_at + std::min(keep, std::numeric_limits<std::int64_t>::max() / 4);
  if (not_after <= fetched_at) return fetched_at + config.failure_cache_s;
  return std::min(expires, not_after);
}

}  // namespace

std::optional<CertificateEntry::VerdictMemo> CertificateEntry::memo() const {
  std::lock_guard lock(memo_mutex_);
  return memo_;
}

void CertificateEntry::set_memo(VerdictMemo memo) const {
  std::lock_guard lock(memo_mutex_);
  memo_ = std::move(memo);
}

std::shared_ptr<CertificateEntry> make_certificate_entry(const std::string& url,
                                                         const std::string& pem,
                                                         std::int64_t fetched_at) {
  auto entry = std::make_shared<CertificateEntry>();
  entry->url = url;
  entry->pem = pem;
  entry->chain = parse_pem_chain(pem);
  entry->leaf_key.reset(X509_get_pubkey(entry->chain.front().get()));
  if (!entry->leaf_key) throw Error(ErrorCode::kMalformed, "end-entity public key unreadable");
  entry->fetched_at = fetched_at;
  entry->not_after = asn1_time_to_unix(X509_get0_notAfter(entry->chain.front().get())).value_or(0);
  return entry;
}

CertificateCache::CertificateCache(const VerifierConfig& config, const HttpsFetcher& fetcher,
                                   VerifierMetrics& metrics)
    : config_(config),
      fetcher_(fetcher),
      metrics_(metrics),
      cache_(std::make_unique<detail::ExpiringCache<CertificateEntry>>(config.max_cache_entries)),
      gate_(std::make_shared<detail::FetchGate>(config.max_fetches_in_flight,
                                                config.max_fetches_per_host)) {}

CertificateCache::~CertificateCache() = default;

CertificateLookup CertificateCache::get(const std::string& url, std::int64_t now) {
  using Cache = detail::ExpiringCache<CertificateEntry>;
  // The host:port that fetch bounds and failures are kept by; worked out
  // only on a miss (admit runs before the load), never on the hot path.
  // An unparsable URL has none: the fetcher refuses it itself.
  std::string host;
  const auto lookup = cache_->get(
      url, now,
      [&]() -> Cache::Entry {
        Cache::Entry entry;
        entry.value = fetch(url, now, entry.error, entry.expires_at);
        // Only a timeout marks the host: a 404 or a bad body that anyone can
        // provoke on a legitimate repository must not shut it for everyone.
        if (!entry.value && !host.empty() && entry.error.find("timed out") != std::string::npos) {
          gate_->failed(host, now + config_.failure_cache_s);
        }
        return entry;
      },
      [&](bool fetching, std::string& why) -> std::shared_ptr<void> {
        std::string parse_error;
        if (const auto parsed = parse_https_url(url, parse_error)) host = parsed->host_header();
        if (host.empty()) return std::make_shared<int>(0);
        return gate_->enter(host, now, fetching, why);
      });
  metrics_.record_cert_lookup(lookup.source == Cache::Source::kHit      ? 0
                              : lookup.source == Cache::Source::kShared ? 2
                                                                        : 1);
  CertificateLookup out;
  out.entry = lookup.entry.value;
  out.error = lookup.entry.error;
  out.from_cache = lookup.source != Cache::Source::kMiss;
  return out;
}

std::shared_ptr<const CertificateEntry> CertificateCache::fetch(const std::string& url,
                                                                std::int64_t now,
                                                                std::string& error,
                                                                std::int64_t& expires_at) {
  expires_at = now + config_.failure_cache_s;
  const auto start = std::chrono::steady_clock::now();
  FetchResponse response;
  try {
    response = fetcher_.get(url, config_.max_body_bytes);
  } catch (const Error& e) {
    metrics_.record_fetch(std::chrono::steady_clock::now() - start, false);
    error = e.what();
    return nullptr;
  }
  metrics_.record_fetch(std::chrono::steady_clock::now() - start, true);
  std::shared_ptr<CertificateEntry> entry;
  try {
    entry = make_certificate_entry(url, response.body, now);
  } catch (const Error& e) {
    error = std::string("x5u body is not a PEM certificate chain: ") + e.what();
    return nullptr;
  }
  entry->expires_at = expires_at =
      certificate_expiry(http_freshness_lifetime(response, now), now, entry->not_after, config_);
  if (!config_.cache_dir.empty() && entry->expires_at > now + config_.failure_cache_s) {
    persist(*entry);
  }
  return entry;
}

void CertificateCache::persist(const CertificateEntry& entry) {
  try {
    ensure_directory(config_.cache_dir, 0700);
    const fs::path base = fs::path(config_.cache_dir) / hex(sha256(entry.url));
    write_file_atomic(base.string() + ".pem", entry.pem, 0644);
    const nlohmann::json meta = {
        {"url", entry.url}, {"fetched_at", entry.fetched_at}, {"expires_at", entry.expires_at}};
    write_file_atomic(base.string() + ".json", meta.dump() + "\n", 0644);
  } catch (const Error&) {
    metrics_.record_persist_error();
  }
}

std::size_t CertificateCache::load_persisted(std::int64_t now) {
  if (config_.cache_dir.empty()) return 0;
  std::error_code ec;
  fs::directory_iterator it(config_.cache_dir, ec);
  if (ec) return 0;  // nothing persisted yet
  std::size_t loaded = 0;
  for (const fs::directory_entry& file : it) {
    if (!file.is_regular_file() || file.path().extension() != ".json") continue;
    try {
      const auto meta_text = read_small_file(file.path(), std::size_t{64} * 1024);
      if (!meta_text) throw Error(ErrorCode::kIo, "unreadable");
      const nlohmann::json meta = nlohmann::json::parse(*meta_text);
      const std::string url = meta.at("url").get<std::string>();
      const std::int64_t fetched_at = meta.at("fetched_at").get<std::int64_t>();
      const std::int64_t expires_at = meta.at("expires_at").get<std::int64_t>();
      // The name must be the URL's hash: a file renamed by hand is not trusted.
      if (file.path().stem().string() != hex(sha256(url))) {
        throw Error(ErrorCode::kMalformed, "name does not match the URL");
      }
      if (expires_at <= now) continue;
      fs::path pem_path = file.path();
      pem_path.replace_extension(".pem");
      const auto pem = read_small_file(pem_path, config_.max_body_bytes);
      if (!pem) throw Error(ErrorCode::kIo, "PEM unreadable");
      auto entry = make_certificate_entry(url, *pem, fetched_at);
      entry->expires_at = std::min(expires_at, std::max(entry->not_after, fetched_at));
      if (entry->expires_at <= now) continue;
      detail::ExpiringCache<CertificateEntry>::Entry cached;
      cached.expires_at = entry->expires_at;
      cached.value = std::move(entry);
      cache_->put(url, std::move(cached), now);
      ++loaded;
    } catch (const std::exception&) {
      metrics_.record_persist_error();
    }
  }
  return loaded;
}

std::size_t CertificateCache::size() const { return cache_->size(); }

std::size_t CertificateCache::fetches_in_flight() const { return gate_->in_flight(); }

void CertificateCache::clear() { cache_->clear(); }

}  // namespace stir::vs
