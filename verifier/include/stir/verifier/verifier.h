// The verification service (STI-VS): verifies a SIP Identity header value
// for POST /stir/v1/verification and `sks verify`, and says what to answer
// (PROTOCOL.md sections 2, 3 and 5; ATIS-1000082's E3-E19 table).
//
// Checks, in this order; the first failure is the answer:
//   E3   request time more than max_request_time_skew_s off  403 No-TN-Validation
//   E4   Identity header unparsable, or compact form          438 No-TN-Validation
//   E5   ppt parameter present and not "shaken"               438 No-TN-Validation
//   E12  alg parameter present and not "ES256"                437 No-TN-Validation
//   E6   info parameter missing                               436 No-TN-Validation
//   E7   info malformed or refused by URL policy (scheme,     436 No-TN-Validation
//        userinfo, query, fragment, port)
//   E14  PASSporT header not a JSON object                    438 No-TN-Validation
//   E9   header lacks alg, ppt, typ or x5u                    436 No-TN-Validation
//   E10  x5u differs from info                                436 No-TN-Validation
//   E11  typ not "passport"                                   437 No-TN-Validation
//   E12  alg not "ES256"                                      437 No-TN-Validation
//   E13  header ppt not "shaken"                              438 No-TN-Validation
//   E14  payload corrupt, a claim missing or of a wrong type  438 No-TN-Validation
//   E19  attest not A, B or C                                 438 No-TN-Validation
//   E14  other SHAKEN claim rules (canonical TNs, origid)     438 No-TN-Validation
//   E15  iat stale (older than max_iat_age_s, or newer than   403 No-TN-Validation
//        max_iat_future_s: a future iat is stale too)
//   E16  orig.tn != request from, or no request to in dest.tn 438 No-TN-Validation
//   E8   x5u cannot be fetched (address policy, network, TLS, 436 No-TN-Validation
//        HTTP status, redirect, size, not a PEM chain)
//   E17  chain, validity at iat, CRL, key, TNAuthList SPC,    437 TN-Validation-Failed
//        key usage
//   E18  signature invalid                                    438 TN-Validation-Failed
// Everything that needs no network runs before the fetch, so a broken or
// stale token never makes the verifier fetch anything. The token checks use
// the signer library's parts (parse_identity_header, validate_claims,
// verify_es256_digest over the received "header.payload" bytes) with the
// same rules and order as stir::verify_identity; a test cross-checks the
// two on every crafted token. (verify_identity itself is not called on the
// hot path: it would parse the token a second time, and the benchmark's
// budget is one ECDSA verify plus cheap checks.)
// TNs are compared after dropping a leading '+' and visual separators
// (" -.()") from the request's values; an empty from or to never matches.
//
// Ownership: one Verifier per process owns the fetcher, the certificate and
// CRL caches, the chain validator (trust anchors, static CRLs), the
// reason-once table and the metrics.
// Threads: verify() is safe from any number of threads at once.
// Errors: the constructor throws stir::Error(kConfig) for a bad
// VerifierConfig (see validate_config) or unreadable anchors/CRLs. verify()
// never throws except std::bad_alloc: every failure is a result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "stir/openssl.h"
#include "stir/verifier/config.h"
#include "stir/verifier/metrics.h"
#include "stir/verify.h"

namespace stir::vs {

inline constexpr const char* kVerstatPassed = "TN-Validation-Passed";
inline constexpr const char* kVerstatFailed = "TN-Validation-Failed";
inline constexpr const char* kVerstatNoValidation = "No-TN-Validation";

struct VerificationRequest {
  std::string identity;              // the Identity header value
  std::string from_tn;               // request from.tn
  std::vector<std::string> to_tns;   // request to.tn
  std::optional<std::int64_t> time;  // request time (E3 check when present)
  // Verifier clock for this request (tests); nullopt = the Verifier's clock.
  std::optional<std::int64_t> now;
  // A PEM chain to use instead of fetching the x5u (`sks verify --cert`).
  // The chain and policy checks (E17) still apply; the info URL is then not
  // dereferenced, so the URL policy (E7) is skipped too. Not cached.
  std::optional<std::string> certificate_pem;
};

struct VerificationResult {
  std::string verstat;             // one of the kVerstat* values
  std::optional<int> reasoncode;   // 403, 436, 437, 438; none when passed
  std::string reasontext;          // "Invalid Identity Header"
  std::string reasondesc;          // short and specific: "Signature validation failed"
  std::string detail;              // for logs only (URLs, OpenSSL text); never for the peer
  int error_case = 0;              // 3..19 (the ATIS E-number), 0 when passed
  bool reason_suppressed = false;  // once_per_day_reason_policy hid the reason
  // Set when the signature verified (so also for E17-free later failures).
  std::optional<ParsedPassport> passport;

  bool passed() const { return verstat == kVerstatPassed; }
  // "E17", "" when passed.
  std::string error_case_id() const;
};

// {"verificationResponse":{"reasoncode":438,"reasontext":"...","reasondesc":"...",
//  "verstat":"TN-Validation-Failed"}}; only verstat when there is no reason.
nlohmann::json to_verification_response(const VerificationResult& result);

class CertificateCache;
struct CertificateEntry;
class ChainValidator;
class HttpsFetcher;
class ReasonOncePolicy;
struct CrlCache;

class Verifier {
 public:
  // Seconds since the epoch.
  using Clock = std::function<std::int64_t()>;

  // Loads trust anchors and CRLs and the persisted cache. `clock` defaults
  // to the system clock.
  explicit Verifier(VerifierConfig config, Clock clock = {});
  ~Verifier();
  // Owns caches, an SSL_CTX and an X509_STORE: one per process.
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  VerificationResult verify(const VerificationRequest& request);

  const VerifierConfig& config() const noexcept { return config_; }
  MetricsSnapshot metrics() const { return metrics_.snapshot(); }
  // The chain validator (trust anchors and policy), for tools and tests.
  const ChainValidator& chain_validator() const noexcept { return *chain_; }
  // Number of URLs in the certificate cache; clear_cache() empties it.
  std::size_t cache_size() const;
  void clear_cache();

 private:
  VerificationResult finish(VerificationResult result, const VerificationRequest& request,
                            std::int64_t now);
  std::vector<X509_CRL*> crls_for(const std::vector<X509Ptr>& chain, std::int64_t now,
                                  std::vector<std::shared_ptr<const void>>& keep_alive);
  // Two of verify()'s checks (E8, E17): the failed result, or nothing.
  std::optional<VerificationResult> certificate_for(const VerificationRequest& request,
                                                    const std::string& info, std::int64_t now,
                                                    std::shared_ptr<const CertificateEntry>& entry);
  std::optional<VerificationResult> check_chain(const VerificationRequest& request,
                                                const CertificateEntry& entry, std::int64_t iat,
                                                std::int64_t now);

  VerifierConfig config_;
  Clock clock_;
  VerifierMetrics metrics_;
  std::unique_ptr<HttpsFetcher> fetcher_;
  std::unique_ptr<ChainValidator> chain_;
  std::unique_ptr<CertificateCache> certificates_;
  std::unique_ptr<CrlCache> crls_;
  std::unique_ptr<ReasonOncePolicy> reason_policy_;
};

}  // namespace stir::vs
