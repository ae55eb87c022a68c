// Certificate chain and policy checks of an x5u certificate (E17):
//  - the chain (end-entity first, then intermediates, as served at the x5u)
//    builds to one of the configured trust anchors (STI-PA roots); the
//    served certificates are only untrusted intermediates, never anchors;
//  - every certificate is valid at the given time (the PASSporT's iat);
//  - with CRLs configured, the end-entity certificate (every certificate
//    with crl_check_all) is checked against a CRL whose signature OpenSSL
//    verifies with the issuer's key; a missing, expired or badly signed CRL
//    fails. A CRL issued after the iat is accepted (it is newer knowledge);
//  - the end-entity key is EC P-256, its Key Usage extension is present and
//    has digitalSignature, and its TNAuthList holds an SPC (when
//    require_spc) that is in allowed_spcs (when that list is non-empty).
//
// Ownership: a ChainValidator owns its X509_STORE (anchors) and the
// configured CRLs, loaded once at construction and never changed afterwards.
// Threads: validate() is const and safe from any number of threads.
// Errors: the constructor throws stir::Error(kConfig) naming the file that
// cannot be read or parsed, or when no trust anchor is found. validate()
// never throws except std::bad_alloc: failures are a ChainVerdict.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stir/openssl.h"
#include "stir/verifier/config.h"

namespace stir::vs {

using X509CrlPtr = std::unique_ptr<X509_CRL, stir::detail::OpenSslDeleter<X509_CRL, X509_CRL_free>>;

struct ChainVerdict {
  bool ok = false;
  std::string reason;  // short, for a reasondesc: "certificate revoked"
  std::string detail;  // longer, for logs: OpenSSL's text, depth, subject
  // For an ok verdict: the iat values for which it also holds (the
  // intersection of the validity periods of the chain that was built).
  std::int64_t valid_from = 0;
  std::int64_t valid_until = 0;
  std::optional<std::string> spc;  // the end-entity certificate's SPC
};

class ChainValidator {
 public:
  explicit ChainValidator(const VerifierConfig& config);
  ~ChainValidator();
  // Owns an X509_STORE shared by every validation.
  ChainValidator(const ChainValidator&) = delete;
  ChainValidator& operator=(const ChainValidator&) = delete;

  // Checks `chain` at time `at` (seconds since the epoch). `extra_crls` (not
  // owned, may be empty) are CRLs fetched for this chain, used on top of the
  // configured ones.
  ChainVerdict validate(const std::vector<X509Ptr>& chain, std::int64_t at,
                        const std::vector<X509_CRL*>& extra_crls = {}) const;

  // Whether CRLs are checked (a CRL source is configured).
  bool crl_checking() const noexcept { return crl_checking_; }
  bool crl_check_all() const noexcept { return crl_check_all_; }
  std::size_t trust_anchor_count() const noexcept { return anchors_; }

 private:
  X509_STORE* store_ = nullptr;
  std::vector<X509CrlPtr> static_crls_;  // direct and indirect CRLs alike
  std::size_t anchors_ = 0;
  bool crl_checking_ = false;
  bool crl_check_all_ = false;
  bool require_spc_ = true;
  std::vector<std::string> allowed_spcs_;
};

// Every CRL in a text: PEM blocks ("X509 CRL"), or else one DER CRL. Throws
// stir::Error(kMalformed) when there is none or one does not parse.
std::vector<X509CrlPtr> parse_crls(std::string_view pem_or_der);

// The first https URI of the certificate's CRL Distribution Points, if any.
std::optional<std::string> crl_distribution_point(const X509* certificate);

// notAfter / nextUpdate as seconds since the epoch (nullopt when unreadable).
std::optional<std::int64_t> asn1_time_to_unix(const ASN1_TIME* time);

}  // namespace stir::vs
