// Policy of the verification service (STI-VS): trust anchors, CRLs, x5u fetch
// hygiene (PROTOCOL.md section 5), token freshness, certificate policy,
// caching and the optional SHAKEN "reason once per day" rule.
//
// A plain struct with commented defaults; sks maps it to its TOML file.
// validate_config() is the start-up check: it throws stir::Error(kConfig)
// naming the first bad field, so a service never starts with a policy that
// cannot work (no trust anchor, a zero timeout, ...).
// Threads: a value type; the Verifier keeps its own copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stir/config_field.h"

namespace stir::vs {

struct VerifierConfig {
  // --- Trust (STI-PA roots) ------------------------------------------------
  // Folder of trust anchors: every *.pem, *.crt and *.cer file in it (not
  // recursive), each holding one or more PEM certificates. Default: none.
  std::string trust_anchors_dir;
  // More trust anchor PEM files. At least one anchor (from the folder or the
  // files) is required: without one no token can ever pass.
  std::vector<std::string> trust_anchor_files;

  // --- Revocation ----------------------------------------------------------
  // CRL files (PEM, several per file allowed, or one DER CRL). Default: none.
  std::vector<std::string> crl_files;
  // Folder of CRLs: every regular file in it, as crl_files. Default: none.
  std::string crl_dir;
  // Fetch the CRL named by each certificate's CRL Distribution Point (https
  // URLs only, same fetch policy as x5u, cached until nextUpdate but at most
  // crl_refresh_s). Default: false.
  bool fetch_crl_from_dp = false;
  // CRL checking is on as soon as a CRL source above is configured; a
  // certificate whose CRL is then missing, expired or badly signed fails
  // (437). By default only the end-entity certificate is checked; true checks
  // every certificate of the chain (each issuer level needs its CRL).
  bool crl_check_all = false;
  // Largest CRL body accepted from a distribution point. Default 1 MiB.
  std::size_t max_crl_bytes = std::size_t{1024} * 1024;
  // A fetched CRL is fetched again after this long even if its nextUpdate is
  // later. Default 3600 s.
  std::int64_t crl_refresh_s = 3600;

  // --- x5u fetching --------------------------------------------------------
  // Ports an x5u (or CRL) URL may name. Default {443, 8443}.
  std::vector<std::uint16_t> allowed_ports = {443, 8443};
  // Allow hosts resolving to loopback (127/8, ::1). Default false (tests only).
  bool allow_loopback = false;
  // Allow hosts resolving to private ranges (10/8, 172.16/12, 192.168/16,
  // 100.64/10, fc00::/7). Default false. Other special-purpose ranges
  // (link-local, documentation, multicast, ...) are always refused.
  bool allow_private = false;
  // TCP connect budget (all resolved addresses together). Default 2000 ms.
  int connect_timeout_ms = 2000;
  // Budget for the whole fetch: resolve, connect, TLS, request, response.
  // Default 5000 ms.
  int total_timeout_ms = 5000;
  // Largest x5u response body; reading stops at the limit. Default 16 KiB.
  std::size_t max_body_bytes = std::size_t{16} * 1024;
  // CA file for the TLS server certificates of x5u hosts. Default "": the
  // system trust store. The server name is always checked.
  std::string tls_ca_file;

  // --- PASSporT ------------------------------------------------------------
  // iat older than now - max_iat_age_s is stale (403). Default 60.
  std::int64_t max_iat_age_s = 60;
  // iat newer than now + max_iat_future_s is stale too (403). Default 60.
  std::int64_t max_iat_future_s = 60;
  // The request's `time` more than this off the verifier clock is E3 (403).
  // Default 60.
  std::int64_t max_request_time_skew_s = 60;

  // --- Certificate policy --------------------------------------------------
  // The end-entity certificate's TNAuthList must hold an SPC. Default true.
  bool require_spc = true;
  // When non-empty, the SPC must be one of these. Default empty (any SPC).
  std::vector<std::string> allowed_spcs;

  // --- Certificate cache ---------------------------------------------------
  // Folder where fetched certificates are kept across restarts
  // (<sha256(url)>.pem and .json). Default "": memory only.
  std::string cache_dir;
  // A fetched certificate is kept at least this long whatever Cache-Control
  // or Expires say (never past the certificate's notAfter). Default 86400.
  std::int64_t min_cache_s = 86400;
  // A failed fetch is remembered this long, so a dead URL is not hammered.
  // A fetch that timed out marks its host (host:port) failed as long: no
  // URL of that host is fetched until then, so a tarpit x5u host costs one
  // timeout per failure_cache_s, not one per URL. Default 60.
  std::int64_t failure_cache_s = 60;
  // Verifications in an x5u fetch or waiting for another's fetch of the
  // same URL: at most max_fetches_in_flight altogether and half of that for
  // one host:port; fetches (connections) at most max_fetches_per_host per
  // host:port. Beyond, a verification that needs a fetch answers 436 at
  // once (nothing cached). Verifications whose certificate is cached never
  // wait for a fetch: the server keeps max_fetches_in_flight workers beyond
  // its cores for them. Defaults 32 and 4.
  std::size_t max_fetches_in_flight = 32;
  std::size_t max_fetches_per_host = 4;
  // Most URLs kept in memory; expired entries go first, then the ones that
  // expire soonest. Default 10000.
  std::size_t max_cache_entries = 10000;

  // --- SHAKEN framework option ---------------------------------------------
  // ATIS-1000074's optional rule: a 436/437/438 reason is returned at most
  // once per originating TN per 24 h; later failures for that TN within the
  // day are reported as if unsigned (No-TN-Validation, no reason). 403 is
  // not affected. Default false (every failure carries its reason).
  bool once_per_day_reason_policy = false;
  // Most originating TNs remembered for that rule (least recently used are
  // forgotten first). Default 100000.
  std::size_t reason_policy_max_tns = 100000;
};

// Every integer setting of VerifierConfig with its bounds: the one place
// they are written. validate_config() checks them; sks's config reader
// reads [verifier] by them (the same bounds, with file and line).
using VerifierLimit = stir::toml_config::IntegerField<VerifierConfig>;
std::span<const VerifierLimit> verifier_limits();

// Throws stir::Error(kConfig) for the first unusable field (a value outside
// verifier_limits(), no trust anchor, no port, an empty SPC). Does not read
// files; the Verifier does that when it is built.
void validate_config(const VerifierConfig& config);

}  // namespace stir::vs
