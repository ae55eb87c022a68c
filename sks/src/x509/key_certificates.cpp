#include "sks/x509/key_certificates.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <filesystem>

#include "sks/pkcs11/key_store.h"
#include "stir/error.h"
#include "stir/files.h"
#include "stir/hex.h"
#include "stir/openssl.h"
#include "stir/x509.h"

namespace sks::x509 {
namespace {

namespace fs = std::filesystem;
using stir::Error;
using stir::ErrorCode;

std::string one_line(const X509_NAME* name) {
  char buffer[512];
  X509_NAME_oneline(name, buffer, sizeof buffer);
  return buffer;
}

std::string serial_hex(const X509* certificate) {
  stir::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr));
  if (!serial) return "?";
  char* text = BN_bn2hex(serial.get());
  std::string out = text == nullptr ? "?" : text;
  OPENSSL_free(text);
  return out;
}

std::string certificate_name(std::size_t index, const X509* certificate) {
  return (index == 0 ? std::string("the chain's leaf (")
                     : "certificate " + std::to_string(index) + " (") +
         one_line(X509_get_subject_name(certificate)) + ")";
}

// Every rule of the header comment; `warnings` collects what is accepted
// but worth saying.
void check_chain(const std::string& label, const EVP_PKEY* token_key,
                 const std::vector<stir::X509Ptr>& chain, const InstallOptions& options,
                 std::vector<std::string>& warnings) {
  stir::check_chain_links(chain);
  X509* leaf = chain.front().get();
  if (!stir::same_public_key(X509_get0_pubkey(leaf), token_key)) {
    throw Error(ErrorCode::kInvalidArgument,
                "the chain's leaf key is not the key '" + label + "' in the token");
  }
  const std::time_t now = options.now != 0 ? options.now : std::time(nullptr);
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const X509* certificate = chain[i].get();
    if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(certificate), now) > 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  certificate_name(i, certificate) + " is not valid before " +
                      stir::iso_time(X509_get0_notBefore(certificate)));
    }
    if (ASN1_TIME_cmp_time_t(X509_get0_notAfter(certificate), now) <= 0) {
      throw Error(ErrorCode::kInvalidArgument, certificate_name(i, certificate) + " expired at " +
                                                   stir::iso_time(X509_get0_notAfter(certificate)));
    }
  }
  // X509_get_extension_flags caches the parsed extensions; KU absent means
  // "any use" to OpenSSL, but ATIS-1000080 requires it.
  if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) == 0 ||
      (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "the chain's leaf has no Key Usage digitalSignature, so it cannot sign PASSporTs");
  }
  if (!stir::tn_auth_list_spc(leaf)) {
    if (!options.allow_no_spc) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the chain's leaf has no TNAuthList SPC (add --allow-no-spc to install it "
                  "anyway)");
    }
    warnings.push_back("the chain's leaf has no TNAuthList SPC; verifiers will reject it");
  }
}

}  // namespace

std::string KeyCertificates::chain_path(const std::string& label) const {
  if (!p11::KeyStore::is_valid_label(label)) {
    throw Error(ErrorCode::kInvalidArgument, "'" + label + "' is not a valid key label");
  }
  return (fs::path(dir_) / (label + ".chain.pem")).string();
}

InstallResult KeyCertificates::install(const std::string& label, const EVP_PKEY* token_key,
                                       std::string_view chain_pem,
                                       const InstallOptions& options) const {
  InstallResult result;
  result.path = chain_path(label);
  const std::vector<stir::X509Ptr> chain = stir::parse_pem_chain(chain_pem);
  check_chain(label, token_key, chain, options, result.warnings);
  const std::string normalised = stir::chain_to_pem(chain);

  const std::optional<std::string> installed = stir::read_file_if_exists(result.path);
  if (installed && *installed == normalised) {
    result.outcome = InstallOutcome::kUnchanged;
    return result;
  }
  stir::ensure_directory(dir_, 0755);
  if (installed) {
    if (!options.replace) {
      throw Error(ErrorCode::kAlreadyExists, "key '" + label +
                                                 "' already has a different certificate chain in " +
                                                 result.path + "; add --replace to renew it");
    }
    const stir::Sha256Digest digest = stir::sha256(*installed);
    const std::string prefix = stir::hex(std::span(digest.data(), 8), stir::HexCase::kUpper);
    result.previous_path = (fs::path(dir_) / (label + ".chain." + prefix + ".pem")).string();
    stir::write_file_atomic(result.previous_path, *installed, 0644);
    result.outcome = InstallOutcome::kReplaced;
  }
  stir::write_file_atomic(result.path, normalised, 0644);
  return result;
}

std::optional<std::string> KeyCertificates::chain_pem(const std::string& label) const {
  return stir::read_file_if_exists(chain_path(label));
}

CertificateInfo KeyCertificates::show(const std::string& label) const {
  CertificateInfo info;
  info.label = label;
  info.path = chain_path(label);
  const std::optional<std::string> pem = stir::read_file_if_exists(info.path);
  if (!pem) {
    throw Error(ErrorCode::kNotFound,
                "key '" + label + "' has no certificate chain (" + info.path + ")");
  }
  const std::vector<stir::X509Ptr> chain = stir::parse_pem_chain(*pem);
  const X509* leaf = chain.front().get();
  info.subject = one_line(X509_get_subject_name(leaf));
  info.issuer = one_line(X509_get_issuer_name(leaf));
  info.spc = stir::tn_auth_list_spc(leaf);
  info.not_before = stir::iso_time(X509_get0_notBefore(leaf));
  info.not_after = stir::iso_time(X509_get0_notAfter(leaf));
  info.serial = serial_hex(leaf);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (X509_digest(leaf, EVP_sha256(), digest, &size) != 1) {
    throw Error(ErrorCode::kCrypto, "X509_digest: " + stir::openssl_error_string());
  }
  info.sha256_fingerprint = stir::hex(std::span(digest, size), stir::HexCase::kUpper, ":");
  info.chain_length = chain.size();
  return info;
}

}  // namespace sks::x509
