#include "stir/verifier/chain.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <limits>

#include "stir/error.h"
#include "stir/files.h"
#include "stir/x509.h"

namespace stir::vs {
namespace {

namespace fs = std::filesystem;

using StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX,
                    stir::detail::OpenSslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

struct X509StackFree {
  void operator()(STACK_OF(X509) * stack) const noexcept { sk_X509_free(stack); }
};
struct CrlStackFree {
  void operator()(STACK_OF(X509_CRL) * stack) const noexcept { sk_X509_CRL_free(stack); }
};

std::vector<std::string> files_in(const std::string& dir, std::string_view what,
                                  bool only_certificate_names) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    throw Error(ErrorCode::kConfig,
                "cannot list " + std::string(what) + " folder " + dir + ": " + ec.message());
  }
  for (const fs::directory_entry& entry : it) {
    if (!entry.is_regular_file()) continue;
    const std::string ext = entry.path().extension().string();
    if (only_certificate_names && ext != ".pem" && ext != ".crt" && ext != ".cer") continue;
    out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string subject_cn(const X509* cert) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, sizeof buffer);
  return buffer;
}

// OpenSSL's verdict as a short reason a peer can read.
std::string short_reason(int error) {
  switch (error) {
    case X509_V_ERR_CERT_REVOKED:
      return "certificate revoked";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate expired at iat";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate not yet valid at iat";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
      return "certificate not issued by a trusted STI-PA root";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
      return "no CRL for the certificate";
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
      return "CRL signature invalid";
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return "CRL expired";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "certificate signature invalid";
    default:
      return "certificate chain invalid";
  }
}

// A CRL issued after the PASSporT's iat is newer knowledge, not a problem.
int verify_callback(int ok, X509_STORE_CTX* ctx) {
  if (ok == 0 && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CRL_NOT_YET_VALID) return 1;
  return ok;
}

ChainVerdict fail(std::string reason, std::string detail) {
  ChainVerdict verdict;
  verdict.reason = std::move(reason);
  verdict.detail = std::move(detail);
  return verdict;
}

}  // namespace

std::optional<std::int64_t> asn1_time_to_unix(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::vector<X509CrlPtr> parse_crls(std::string_view text) {
  std::vector<X509CrlPtr> out;
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw Error(ErrorCode::kMalformed, "CRL text too large");
  }
  if (text.find("-----BEGIN X509 CRL-----") != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    for (;;) {
      X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
      if (crl == nullptr) break;
      out.emplace_back(crl);
    }
    const unsigned long error = ERR_peek_last_error();
    ERR_clear_error();
    // Running out of PEM blocks is the normal end; anything else is a bad block.
    if (out.empty() || (error != 0 && ERR_GET_REASON(error) != PEM_R_NO_START_LINE)) {
      throw Error(ErrorCode::kMalformed, "CRL PEM does not parse");
    }
    return out;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(text.size()));
  if (crl == nullptr || p != reinterpret_cast<const unsigned char*>(text.data()) + text.size()) {
    X509_CRL_free(crl);
    ERR_clear_error();
    throw Error(ErrorCode::kMalformed, "not a PEM or DER CRL");
  }
  out.emplace_back(crl);
  return out;
}

std::optional<std::string> crl_distribution_point(const X509* certificate) {
  auto* points = static_cast<CRL_DIST_POINTS*>(
      X509_get_ext_d2i(certificate, NID_crl_distribution_points, nullptr, nullptr));
  if (points == nullptr) return std::nullopt;
  std::optional<std::string> url;
  for (int i = 0; i < sk_DIST_POINT_num(points) && !url; ++i) {
    const DIST_POINT* point = sk_DIST_POINT_value(points, i);
    if (point->distpoint == nullptr || point->distpoint->type != 0) continue;
    const GENERAL_NAMES* names = point->distpoint->name.fullname;
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, j);
      if (name->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                       static_cast<std::size_t>(ASN1_STRING_length(uri)));
      if (text.rfind("https://", 0) == 0) {
        url = std::move(text);
        break;
      }
    }
  }
  CRL_DIST_POINTS_free(points);
  return url;
}

ChainValidator::ChainValidator(const VerifierConfig& config)
    : crl_check_all_(config.crl_check_all),
      require_spc_(config.require_spc),
      allowed_spcs_(config.allowed_spcs) {
  store_ = X509_STORE_new();
  if (store_ == nullptr) throw Error(ErrorCode::kCrypto, "X509_STORE_new failed");
  try {
    std::vector<std::string> anchor_files = config.trust_anchor_files;
    if (!config.trust_anchors_dir.empty()) {
      for (std::string& file : files_in(config.trust_anchors_dir, "trust anchor", true)) {
        anchor_files.push_back(std::move(file));
      }
    }
    for (const std::string& file : anchor_files) {
      std::vector<X509Ptr> certs;
      try {
        certs = parse_pem_chain(
            read_file(file, ErrorCode::kConfig, "cannot read trust anchor file " + file));
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kConfig) throw;
        throw Error(ErrorCode::kConfig, "trust anchor file " + file + ": " + e.what());
      }
      for (const X509Ptr& cert : certs) {
        if (X509_STORE_add_cert(store_, cert.get()) != 1) ERR_clear_error();  // duplicate
        ++anchors_;
      }
    }
    if (anchors_ == 0) {
      throw Error(ErrorCode::kConfig,
                  "no trust anchor: set trust_anchors_dir or trust_anchor_files (STI-PA roots)");
    }
    std::vector<std::string> crl_files = config.crl_files;
    if (!config.crl_dir.empty()) {
      for (std::string& file : files_in(config.crl_dir, "CRL", false)) {
        crl_files.push_back(std::move(file));
      }
    }
    for (const std::string& file : crl_files) {
      std::vector<X509CrlPtr> crls;
      try {
        crls = parse_crls(read_file(file, ErrorCode::kConfig, "cannot read CRL file " + file));
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kConfig) throw;
        throw Error(ErrorCode::kConfig, "CRL file " + file + ": " + e.what());
      }
      for (X509CrlPtr& crl : crls) static_crls_.push_back(std::move(crl));
    }
    crl_checking_ =
        !config.crl_files.empty() || !config.crl_dir.empty() || config.fetch_crl_from_dp;
  } catch (...) {
    X509_STORE_free(store_);
    throw;
  }
}

ChainValidator::~ChainValidator() { X509_STORE_free(store_); }

ChainVerdict ChainValidator::validate(const std::vector<X509Ptr>& chain, std::int64_t at,
                                      const std::vector<X509_CRL*>& extra_crls) const {
  if (chain.empty() || !chain.front()) return fail("no certificate", "empty chain");
  X509* leaf = chain.front().get();
  std::unique_ptr<STACK_OF(X509), X509StackFree> untrusted(sk_X509_new_null());
  std::unique_ptr<STACK_OF(X509_CRL), CrlStackFree> crls(sk_X509_CRL_new_null());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!untrusted || !crls || !ctx) return fail("certificate chain invalid", "out of memory");
  for (std::size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
  for (const X509CrlPtr& crl : static_crls_) sk_X509_CRL_push(crls.get(), crl.get());
  for (X509_CRL* crl : extra_crls) sk_X509_CRL_push(crls.get(), crl);
  if (X509_STORE_CTX_init(ctx.get(), store_, leaf, untrusted.get()) != 1) {
    return fail("certificate chain invalid", "X509_STORE_CTX_init: " + openssl_error_string());
  }
  // Handed to the context, not kept in the store: a store finds CRLs only by
  // the certificate issuer's name, which misses an indirect CRL (ATIS-1000080:
  // the STI-PA's CRL, cRLIssuer naming the STI-PA, covers STI-CA certificates).
  if (sk_X509_CRL_num(crls.get()) > 0) X509_STORE_CTX_set0_crls(ctx.get(), crls.get());
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(at));
  if (crl_checking_) {
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_EXTENDED_CRL_SUPPORT |
                                           (crl_check_all_ ? X509_V_FLAG_CRL_CHECK_ALL : 0));
  }
  X509_STORE_CTX_set_verify_cb(ctx.get(), verify_callback);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    const X509* where = X509_STORE_CTX_get_current_cert(ctx.get());
    ERR_clear_error();
    return fail(short_reason(error), std::string("chain: ") + X509_verify_cert_error_string(error) +
                                         " at depth " + std::to_string(depth) +
                                         (where != nullptr ? " (" + subject_cn(where) + ")" : ""));
  }

  ChainVerdict verdict;
  verdict.valid_from = std::numeric_limits<std::int64_t>::min();
  verdict.valid_until = std::numeric_limits<std::int64_t>::max();
  const STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
  for (int i = 0; i < sk_X509_num(built); ++i) {
    const X509* cert = sk_X509_value(built, i);
    const auto from = asn1_time_to_unix(X509_get0_notBefore(cert));
    const auto until = asn1_time_to_unix(X509_get0_notAfter(cert));
    if (!from || !until) return fail("certificate chain invalid", "unreadable validity dates");
    verdict.valid_from = std::max(verdict.valid_from, *from);
    verdict.valid_until = std::min(verdict.valid_until, *until);
  }

  if (!is_p256_key(X509_get0_pubkey(leaf))) {
    return fail("certificate key is not EC P-256", "end-entity key is not EC P-256");
  }
  try {
    verdict.spc = tn_auth_list_spc(leaf);
  } catch (const Error&) {
    return fail("TNAuthList malformed", "end-entity TNAuthList does not parse");
  }
  if (require_spc_ && !verdict.spc) {
    return fail("no SPC in TNAuthList", "end-entity TNAuthList is missing or holds no SPC");
  }
  if (verdict.spc && !allowed_spcs_.empty() &&
      std::find(allowed_spcs_.begin(), allowed_spcs_.end(), *verdict.spc) == allowed_spcs_.end()) {
    return fail("SPC not allowed", "SPC " + *verdict.spc + " is not in allowed_spcs");
  }
  if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) == 0 ||
      (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
    return fail("key usage lacks digitalSignature",
                "end-entity Key Usage missing or without digitalSignature");
  }
  verdict.ok = true;
  return verdict;
}

}  // namespace stir::vs
