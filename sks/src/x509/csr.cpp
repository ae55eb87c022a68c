#include "sks/x509/csr.h"

#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>

#include "sks/x509/token_signing.h"
#include "stir/error.h"
#include "stir/openssl.h"
#include "stir/x509.h"

namespace sks::x509 {
namespace {

using stir::Error;
using stir::ErrorCode;

using X509ReqPtr = std::unique_ptr<X509_REQ, stir::detail::OpenSslDeleter<X509_REQ, X509_REQ_free>>;
using X509NamePtr =
    std::unique_ptr<X509_NAME, stir::detail::OpenSslDeleter<X509_NAME, X509_NAME_free>>;
using X509ExtensionPtr =
    std::unique_ptr<X509_EXTENSION,
                    stir::detail::OpenSslDeleter<X509_EXTENSION, X509_EXTENSION_free>>;
using AsnObjectPtr =
    std::unique_ptr<ASN1_OBJECT, stir::detail::OpenSslDeleter<ASN1_OBJECT, ASN1_OBJECT_free>>;
using AsnOctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING,
                    stir::detail::OpenSslDeleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;

void add_entry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    throw Error(ErrorCode::kInvalidArgument, std::string("subject ") + field + " '" + value +
                                                 "' is not valid: " + stir::openssl_error_string());
  }
}

X509ExtensionPtr tn_auth_list_extension(std::string_view spc) {
  const std::vector<std::uint8_t> der = stir::tn_auth_list_der(spc);
  AsnObjectPtr oid(OBJ_txt2obj(kTnAuthListOid, 1));
  AsnOctetStringPtr value(ASN1_OCTET_STRING_new());
  if (!oid || !value ||
      ASN1_OCTET_STRING_set(value.get(), der.data(), static_cast<int>(der.size())) != 1) {
    throw Error(ErrorCode::kCrypto, "TNAuthList: " + stir::openssl_error_string());
  }
  X509ExtensionPtr extension(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, value.get()));
  if (!extension) throw Error(ErrorCode::kCrypto, "TNAuthList: " + stir::openssl_error_string());
  return extension;
}

}  // namespace

CsrSubject parse_subject(std::string_view text) {
  if (text.empty() || text.front() != '/') {
    throw Error(
        ErrorCode::kInvalidArgument,
        "subject '" + std::string(text) + "' must look like '/C=US/O=Example/CN=SHAKEN 1234'");
  }
  CsrSubject subject;
  std::size_t at = 1;
  while (at <= text.size()) {
    const std::size_t end = std::min(text.find('/', at), text.size());
    const std::string_view part = text.substr(at, end - at);
    const std::size_t equals = part.find('=');
    if (equals == std::string_view::npos || equals + 1 == part.size()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "subject part '" + std::string(part) + "' is not NAME=VALUE");
    }
    const std::string_view name = part.substr(0, equals);
    std::string* field = name == "C"    ? &subject.country
                         : name == "O"  ? &subject.organization
                         : name == "CN" ? &subject.common_name
                                        : nullptr;
    if (field == nullptr) {
      throw Error(ErrorCode::kInvalidArgument, "subject attribute '" + std::string(name) +
                                                   "' is not allowed: an STI certificate "
                                                   "subject has only C, O and CN");
    }
    if (!field->empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "subject attribute '" + std::string(name) + "' is given twice");
    }
    *field = std::string(part.substr(equals + 1));
    at = end + 1;
  }
  if (subject.country.empty() || subject.organization.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "subject '" + std::string(text) +
                                                 "' needs C and O (CN defaults to 'SHAKEN <SPC>')");
  }
  return subject;
}

std::string shaken_common_name(std::string_view spc) { return "SHAKEN " + std::string(spc); }

std::string make_csr(const stir::DigestSigner& signer, const EVP_PKEY* public_key,
                     const CsrSubject& subject, std::string_view spc) {
  X509ExtensionPtr tn_auth_list = tn_auth_list_extension(spc);  // validates the SPC first
  const std::string common_name =
      subject.common_name.empty() ? shaken_common_name(spc) : subject.common_name;
  if (common_name != shaken_common_name(spc)) {
    throw Error(ErrorCode::kInvalidArgument, "CN '" + common_name + "' must be '" +
                                                 shaken_common_name(spc) + "' for SPC " +
                                                 std::string(spc));
  }
  if (subject.country.size() != 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "country '" + subject.country + "' must be a two-letter code");
  }
  if (subject.organization.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "the subject needs an organization (O)");
  }

  X509ReqPtr request(X509_REQ_new());
  X509NamePtr name(X509_NAME_new());
  if (!request || !name) throw Error(ErrorCode::kCrypto, "X509_REQ_new failed");
  add_entry(name.get(), "C", subject.country);
  add_entry(name.get(), "O", subject.organization);
  add_entry(name.get(), "CN", common_name);

  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  const bool built = extensions != nullptr &&
                     sk_X509_EXTENSION_push(extensions, tn_auth_list.get()) > 0 &&
                     X509_REQ_set_version(request.get(), 0) == 1 &&
                     X509_REQ_set_subject_name(request.get(), name.get()) == 1 &&
                     // X509_REQ_set_pubkey only reads the key (and takes a reference).
                     X509_REQ_set_pubkey(request.get(), const_cast<EVP_PKEY*>(public_key)) == 1 &&
                     X509_REQ_add_extensions(request.get(), extensions) == 1;
  sk_X509_EXTENSION_free(extensions);  // the stack only; tn_auth_list owns the extension
  if (!built) throw Error(ErrorCode::kCrypto, "building the CSR: " + stir::openssl_error_string());

  sign_request(request.get(), signer, public_key);

  stir::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), request.get()) != 1) {
    throw Error(ErrorCode::kCrypto, "PEM_write_bio_X509_REQ: " + stir::openssl_error_string());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace sks::x509
