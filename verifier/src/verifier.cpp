#include "stir/verifier/verifier.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <limits>
#include <set>

#include "expiring_cache.h"
#include "stir/base64url.h"
#include "stir/error.h"
#include "stir/identity.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verifier/cert_cache.h"
#include "stir/verifier/chain.h"
#include "stir/verifier/fetcher.h"
#include "stir/verifier/reason_policy.h"
#include "stir/verifier/url.h"
#include "stir/verify.h"

namespace stir::vs {

// CRLs fetched from distribution points, by URL.
struct CrlSet {
  std::vector<X509CrlPtr> crls;
};
struct CrlCache {
  explicit CrlCache(std::size_t max_entries) : cache(max_entries) {}
  detail::ExpiringCache<CrlSet> cache;
};

namespace {

using nlohmann::json;

// A good chain verdict is recomputed at least this often, so new CRLs count.
constexpr std::int64_t kVerdictRecheckS = 3600;

struct CaseRow {
  int reasoncode;
  const char* verstat;
};

// PROTOCOL.md section 3, failure mapping.
CaseRow case_row(int error_case) {
  switch (error_case) {
    case 3:
    case 15:
      return {403, kVerstatNoValidation};
    case 6:
    case 7:
    case 8:
    case 9:
    case 10:
      return {436, kVerstatNoValidation};
    case 11:
    case 12:
      return {437, kVerstatNoValidation};
    case 17:
      return {437, kVerstatFailed};
    case 18:
      return {438, kVerstatFailed};
    default:  // 4, 5, 13, 14, 16, 19
      return {438, kVerstatNoValidation};
  }
}

VerificationResult failure(int error_case, std::string reasondesc, std::string detail) {
  const CaseRow row = case_row(error_case);
  VerificationResult result;
  result.verstat = row.verstat;
  result.reasoncode = row.reasoncode;
  result.reasontext = std::string(sip_reason_text(static_cast<SipReason>(row.reasoncode)));
  result.reasondesc = std::move(reasondesc);
  result.detail = std::move(detail);
  result.error_case = error_case;
  return result;
}

bool string_member_is(const json& object, const char* key, std::string_view expected) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() && it->get_ref<const std::string&>() == expected;
}

// |a - b| without overflow.
std::uint64_t distance(std::int64_t a, std::int64_t b) {
  return a > b ? static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b)
               : static_cast<std::uint64_t>(b) - static_cast<std::uint64_t>(a);
}

// A request TN as the token spells it: no '+', no visual separators.
std::string normalize_tn(std::string_view tn) {
  std::string out;
  for (std::size_t i = 0; i < tn.size(); ++i) {
    const char c = tn[i];
    if ((c == '+' && out.empty()) || c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
      continue;
    }
    out += c;
  }
  return out;
}

int verstat_index(const std::string& verstat) {
  if (verstat == kVerstatPassed) return 0;
  if (verstat == kVerstatFailed) return 1;
  return 2;
}

std::int64_t system_now() {
  return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
}

// What the checks have read so far, for the later checks and the result.
struct Candidate {
  IdentityHeader identity;
  json header;   // the PASSporT header, once checked
  json payload;  // the PASSporT payload, once its claims are read
  ShakenClaims claims;
  std::shared_ptr<const CertificateEntry> certificate;
  // The info parameter (which x5u must equal): there once the Identity
  // header's parameters passed.
  const std::string& info() const { return *identity.info; }
};

// The checks below each return the failed result (not yet through finish())
// or nothing when the request passes them; verify() runs them in the order
// the header's table gives.

// E3: the request's own time, before anything is parsed.
std::optional<VerificationResult> check_request_time(const VerificationRequest& request,
                                                     std::int64_t now,
                                                     const VerifierConfig& config) {
  if (request.time &&
      distance(*request.time, now) > static_cast<std::uint64_t>(config.max_request_time_skew_s)) {
    return failure(3, "Request time is not within the allowed window",
                   "request time " + std::to_string(*request.time) + ", verifier clock " +
                       std::to_string(now));
  }
  return std::nullopt;
}

// E4-E7, E12: the Identity header's parameters. The info URL is checked
// against the URL policy here only when it will be fetched.
std::optional<VerificationResult> check_identity_parameters(const VerificationRequest& request,
                                                            const VerifierConfig& config,
                                                            Candidate& candidate) {
  IdentityParse parsed = parse_identity_header(request.identity);
  if (!parsed.header) {
    if (parsed.info_error) return failure(7, "info parameter malformed", parsed.error);
    return failure(4, "Identity header malformed", parsed.error);
  }
  const IdentityHeader& identity = candidate.identity = std::move(*parsed.header);
  if (identity.compact_form) {
    return failure(4, "Full form PASSporT required", "compact form is not allowed in SHAKEN");
  }
  if (identity.ppt && *identity.ppt != "shaken") {
    return failure(5, "ppt parameter is not shaken", "ppt=" + identity.ppt->substr(0, 64));
  }
  if (identity.alg && *identity.alg != "ES256") {
    return failure(12, "alg parameter is not ES256", "alg=" + identity.alg->substr(0, 64));
  }
  if (!identity.info) return failure(6, "info parameter missing", "no info parameter");
  const std::string& info = *identity.info;
  if (!request.certificate_pem) {
    std::string error;
    const std::optional<HttpsUrl> url = parse_https_url(info, error);
    if (url) error = check_port(*url, config.allowed_ports);
    if (!error.empty()) return failure(7, "info URL refused: " + error, "info <" + info + ">");
  }
  return std::nullopt;
}

// E14, E9-E13: the PASSporT header, whose x5u must be the info URL.
std::optional<VerificationResult> check_passport_header(Candidate& candidate) {
  const std::string& info = candidate.info();
  std::string error;
  std::optional<json> header =
      decode_json_segment(candidate.identity.header_b64, "PASSporT header", error);
  if (!header) return failure(14, "PASSporT header corrupt", error);
  for (const char* member : {"alg", "ppt", "typ", "x5u"}) {
    if (!header->contains(member)) {
      return failure(9, std::string("PASSporT header lacks ") + member,
                     "header lacks " + std::string(member));
    }
  }
  if (!string_member_is(*header, "x5u", info)) {
    return failure(10, "x5u does not match info", "x5u differs from info <" + info + ">");
  }
  if (!string_member_is(*header, "typ", "passport")) {
    return failure(11, "typ is not passport", "header typ " + header->at("typ").dump());
  }
  if (!string_member_is(*header, "alg", "ES256")) {
    return failure(12, "alg is not ES256", "header alg " + header->at("alg").dump());
  }
  if (!string_member_is(*header, "ppt", "shaken")) {
    return failure(13, "PASSporT ppt is not shaken", "header ppt " + header->at("ppt").dump());
  }
  candidate.header = std::move(*header);
  return std::nullopt;
}

// E14, E19: the payload decodes, its claims have the right types, attest is
// a SHAKEN level and the SHAKEN claim rules hold.
std::optional<VerificationResult> read_claims(Candidate& candidate) {
  std::string error;
  std::optional<json> payload =
      decode_json_segment(candidate.identity.payload_b64, "PASSporT payload", error);
  if (!payload) return failure(14, "PASSporT payload corrupt", error);
  ShakenClaims& claims = candidate.claims;
  if (std::string problem = read_passport_claims(*payload, claims); !problem.empty()) {
    return failure(14, "Invalid PASSporT claims: " + problem, problem);
  }
  if (claims.attest != "A" && claims.attest != "B" && claims.attest != "C") {
    return failure(19, "attest is not A, B or C", "attest \"" + claims.attest.substr(0, 16) + "\"");
  }
  try {
    validate_claims(claims);
  } catch (const Error& e) {
    return failure(14, std::string("Invalid PASSporT claims: ") + e.what(), e.what());
  }
  candidate.payload = std::move(*payload);
  return std::nullopt;
}

// E15: iat within max_iat_age_s in the past and max_iat_future_s ahead.
std::optional<VerificationResult> check_iat(std::int64_t iat, std::int64_t now,
                                            const VerifierConfig& config) {
  if (iat < now && distance(iat, now) > static_cast<std::uint64_t>(config.max_iat_age_s)) {
    return failure(
        15, "iat is stale",
        "iat " + std::to_string(iat) + " is " + std::to_string(distance(iat, now)) + " s old");
  }
  if (iat > now && distance(iat, now) > static_cast<std::uint64_t>(config.max_iat_future_s)) {
    return failure(
        15, "iat is in the future",
        "iat " + std::to_string(iat) + " is " + std::to_string(distance(iat, now)) + " s ahead");
  }
  return std::nullopt;
}

// E16: orig is the request's from TN and one request to TN is in dest,
// compared as the token spells them (normalize_tn).
std::optional<VerificationResult> check_telephone_numbers(const VerificationRequest& request,
                                                          const ShakenClaims& claims) {
  const std::string from = normalize_tn(request.from_tn);
  if (from.empty() || claims.orig_tn != from) {
    return failure(16, "orig does not match from",
                   "orig.tn \"" + claims.orig_tn.substr(0, 32) + "\", from \"" +
                       request.from_tn.substr(0, 32) + "\"");
  }
  const bool to_matches =
      std::any_of(request.to_tns.begin(), request.to_tns.end(), [&](const std::string& to) {
        const std::string tn = normalize_tn(to);
        return !tn.empty() &&
               std::find(claims.dest_tn.begin(), claims.dest_tn.end(), tn) != claims.dest_tn.end();
      });
  if (!to_matches) return failure(16, "dest does not match to", "no request to TN in dest.tn");
  return std::nullopt;
}

// E18: SHA-256 over the received "header.payload" bytes, never
// re-serialised; raw r||s of 64 bytes (stir::verify_es256_digest).
std::optional<VerificationResult> check_signature(const IdentityHeader& identity,
                                                  const CertificateEntry& certificate) {
  const std::optional<std::string> signature = base64url_decode(identity.signature_b64);
  if (!signature || signature->size() != std::tuple_size_v<Es256Signature>) {
    return failure(18, "Signature validation failed",
                   signature ? "signature is " + std::to_string(signature->size()) +
                                   " bytes, ES256 needs 64 (raw r||s)"
                             : "signature is not valid base64url");
  }
  Es256Signature raw{};
  std::copy(signature->begin(), signature->end(), raw.begin());
  const std::string_view signed_part =
      std::string_view(identity.jws).substr(0, identity.jws.rfind('.'));
  if (!verify_es256_digest(certificate.leaf_key.get(), sha256(signed_part), raw)) {
    return failure(18, "Signature validation failed", "signature does not verify");
  }
  return std::nullopt;
}

VerificationResult passed(Candidate candidate) {
  VerificationResult result;
  result.verstat = kVerstatPassed;
  ParsedPassport& passport = result.passport.emplace();
  passport.header.x5u = candidate.info();
  passport.claims = std::move(candidate.claims);
  passport.header_json = std::move(candidate.header);
  passport.payload_json = std::move(candidate.payload);
  return result;
}

}  // namespace

std::string VerificationResult::error_case_id() const {
  return error_case == 0 ? "" : "E" + std::to_string(error_case);
}

json to_verification_response(const VerificationResult& result) {
  json inner = json::object();
  if (result.reasoncode) {
    inner["reasoncode"] = *result.reasoncode;
    inner["reasontext"] = result.reasontext;
    inner["reasondesc"] = result.reasondesc;
  }
  inner["verstat"] = result.verstat;
  return json{{"verificationResponse", std::move(inner)}};
}

Verifier::Verifier(VerifierConfig config, Clock clock)
    : config_(std::move(config)), clock_(clock ? std::move(clock) : Clock(system_now)) {
  validate_config(config_);
  fetcher_ = std::make_unique<HttpsFetcher>(FetchPolicy::from_config(config_));
  chain_ = std::make_unique<ChainValidator>(config_);
  certificates_ = std::make_unique<CertificateCache>(config_, *fetcher_, metrics_);
  crls_ = std::make_unique<CrlCache>(config_.max_cache_entries);
  reason_policy_ = std::make_unique<ReasonOncePolicy>(config_.reason_policy_max_tns);
  certificates_->load_persisted(clock_());
}

Verifier::~Verifier() = default;

std::size_t Verifier::cache_size() const { return certificates_->size(); }

void Verifier::clear_cache() { certificates_->clear(); }

std::vector<X509_CRL*> Verifier::crls_for(const std::vector<X509Ptr>& chain, std::int64_t now,
                                          std::vector<std::shared_ptr<const void>>& keep_alive) {
  std::vector<X509_CRL*> out;
  const std::size_t levels =
      config_.crl_check_all ? chain.size() : std::min<std::size_t>(1, chain.size());
  for (std::size_t i = 0; i < levels; ++i) {
    const std::optional<std::string> url = crl_distribution_point(chain[i].get());
    if (!url) continue;
    using Cache = detail::ExpiringCache<CrlSet>;
    const auto lookup = crls_->cache.get(*url, now, [&]() -> Cache::Entry {
      Cache::Entry entry;
      entry.expires_at = now + config_.failure_cache_s;
      const auto start = std::chrono::steady_clock::now();
      try {
        const FetchResponse response = fetcher_->get(*url, config_.max_crl_bytes);
        metrics_.record_fetch(std::chrono::steady_clock::now() - start, true);
        auto set = std::make_shared<CrlSet>();
        set->crls = parse_crls(response.body);
        std::int64_t expires = now + config_.crl_refresh_s;
        for (const X509CrlPtr& crl : set->crls) {
          const auto next = asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl.get()));
          if (next) expires = std::min(expires, *next);
        }
        entry.expires_at = std::max(expires, now + config_.failure_cache_s);
        entry.value = std::move(set);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kMalformed) {
          metrics_.record_fetch(std::chrono::steady_clock::now() - start, false);
        }
        entry.error = e.what();
      }
      return entry;
    });
    metrics_.record_crl_lookup(lookup.source != Cache::Source::kMiss);
    if (!lookup.entry.value) continue;  // no CRL: OpenSSL then reports it missing
    keep_alive.push_back(lookup.entry.value);
    for (const X509CrlPtr& crl : lookup.entry.value->crls) out.push_back(crl.get());
  }
  return out;
}

// E8: the certificate given with the request, or x5u fetched through the
// certificate cache.
std::optional<VerificationResult> Verifier::certificate_for(
    const VerificationRequest& request, const std::string& info, std::int64_t now,
    std::shared_ptr<const CertificateEntry>& entry) {
  if (request.certificate_pem) {
    try {
      entry = make_certificate_entry(info, *request.certificate_pem, now);
    } catch (const Error& e) {
      return failure(8, "Certificate unusable", e.what());
    }
    return std::nullopt;
  }
  CertificateLookup lookup = certificates_->get(info, now);
  if (!lookup.entry) {
    return failure(8, "Failed to dereference info URL", "x5u <" + info + ">: " + lookup.error);
  }
  entry = std::move(lookup.entry);
  return std::nullopt;
}

// E17: the chain, valid at iat, against the CRLs. A fetched certificate keeps
// a good verdict until its recheck time (so new CRLs count); one given with
// the request is checked every time and remembers nothing.
std::optional<VerificationResult> Verifier::check_chain(const VerificationRequest& request,
                                                        const CertificateEntry& entry,
                                                        std::int64_t iat, std::int64_t now) {
  const std::optional<CertificateEntry::VerdictMemo> memo =
      request.certificate_pem ? std::nullopt : entry.memo();
  if (memo && now < memo->recheck_at && iat >= memo->verdict.valid_from &&
      iat <= memo->verdict.valid_until) {
    metrics_.record_chain_verdict(true);
    return std::nullopt;
  }
  metrics_.record_chain_verdict(false);
  std::vector<std::shared_ptr<const void>> keep_alive;
  const std::vector<X509_CRL*> crls =
      config_.fetch_crl_from_dp ? crls_for(entry.chain, now, keep_alive) : std::vector<X509_CRL*>{};
  ChainVerdict verdict = chain_->validate(entry.chain, iat, crls);
  if (!verdict.ok) {
    return failure(17, "Certificate validation failed: " + verdict.reason, verdict.detail);
  }
  if (!request.certificate_pem) {
    const std::int64_t recheck = config_.fetch_crl_from_dp
                                     ? std::min(kVerdictRecheckS, config_.crl_refresh_s)
                                     : kVerdictRecheckS;
    entry.set_memo({std::move(verdict), now + recheck});
  }
  return std::nullopt;
}

VerificationResult Verifier::verify(const VerificationRequest& request) {
  const std::int64_t now = request.now.value_or(clock_());
  Candidate candidate;
  // The first failure is the answer. Everything that needs no network runs
  // before the certificate is fetched; the signature comes last, with the
  // key of a certificate whose chain holds.
  std::optional<VerificationResult> refused = check_request_time(request, now, config_);
  if (!refused) refused = check_identity_parameters(request, config_, candidate);
  if (!refused) refused = check_passport_header(candidate);
  if (!refused) refused = read_claims(candidate);
  if (!refused) refused = check_iat(candidate.claims.iat, now, config_);
  if (!refused) refused = check_telephone_numbers(request, candidate.claims);
  if (!refused) refused = certificate_for(request, candidate.info(), now, candidate.certificate);
  if (!refused) refused = check_chain(request, *candidate.certificate, candidate.claims.iat, now);
  if (!refused) refused = check_signature(candidate.identity, *candidate.certificate);
  return finish(refused ? std::move(*refused) : passed(std::move(candidate)), request, now);
}

VerificationResult Verifier::finish(VerificationResult result, const VerificationRequest& request,
                                    std::int64_t now) {
  if (config_.once_per_day_reason_policy && result.reasoncode && *result.reasoncode != 403) {
    const std::string tn = normalize_tn(request.from_tn);
    if (!tn.empty() && !reason_policy_->allow(tn, now)) {
      result.verstat = kVerstatNoValidation;
      result.reasoncode.reset();
      result.reasontext.clear();
      result.reasondesc.clear();
      result.reason_suppressed = true;
      metrics_.record_reason_suppressed();
    }
  }
  metrics_.record_verification(verstat_index(result.verstat), result.reasoncode.value_or(0),
                               result.error_case);
  return result;
}

}  // namespace stir::vs
