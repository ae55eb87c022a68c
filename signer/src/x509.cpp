#include "stir/x509.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "stir/error.h"

namespace stir {

namespace {

constexpr const char* kTnAuthListOid = "1.3.6.1.5.5.7.1.26";

std::string name_of(const X509* certificate) {
  char buffer[256];
  X509_NAME_oneline(X509_get_subject_name(certificate), buffer, sizeof buffer);
  return buffer;
}

}  // namespace

std::vector<X509Ptr> parse_pem_chain(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw Error(ErrorCode::kCrypto, "BIO_new_mem_buf failed");
  std::vector<X509Ptr> chain;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long length = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &length) != 1) {
      ERR_clear_error();  // end of input; PEM_read_bio reports it as an error
      break;
    }
    const bool is_certificate = std::strcmp(name, "CERTIFICATE") == 0;
    const std::string block_name = name;
    X509Ptr certificate;
    if (is_certificate) {
      const unsigned char* p = data;
      certificate.reset(d2i_X509(nullptr, &p, length));
      if (certificate && p != data + length) certificate.reset();
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (!is_certificate) {
      throw Error(ErrorCode::kMalformed, "PEM block " + std::to_string(chain.size()) + " is '" +
                                             block_name + "', not a CERTIFICATE");
    }
    if (!certificate) {
      throw Error(ErrorCode::kMalformed, "certificate " + std::to_string(chain.size()) +
                                             " does not parse: " + openssl_error_string());
    }
    chain.push_back(std::move(certificate));
  }
  if (chain.empty()) throw Error(ErrorCode::kMalformed, "no PEM certificate found");
  return chain;
}

void check_chain_links(const std::vector<X509Ptr>& chain) {
  if (chain.empty()) throw Error(ErrorCode::kInvalidArgument, "the chain is empty");
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    X509* subject = chain[i].get();
    X509* issuer = chain[i + 1].get();
    const int issued = X509_check_issued(issuer, subject);
    if (issued != X509_V_OK) {
      throw Error(ErrorCode::kInvalidArgument,
                  "certificate " + std::to_string(i) + " (" + name_of(subject) +
                      ") is not issued by certificate " + std::to_string(i + 1) + " (" +
                      name_of(issuer) + "): " + X509_verify_cert_error_string(issued) +
                      "; the chain must be end-entity first, then each issuer");
    }
    if (X509_verify(subject, X509_get0_pubkey(issuer)) != 1) {
      ERR_clear_error();
      throw Error(ErrorCode::kInvalidArgument,
                  "certificate " + std::to_string(i) + " (" + name_of(subject) +
                      ") has a signature that certificate " + std::to_string(i + 1) +
                      "'s key does not verify");
    }
  }
}

std::string chain_to_pem(const std::vector<X509Ptr>& chain) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) throw Error(ErrorCode::kCrypto, "BIO_new failed");
  for (const auto& certificate : chain) {
    if (PEM_write_bio_X509(bio.get(), certificate.get()) != 1) {
      throw Error(ErrorCode::kCrypto, "PEM_write_bio_X509 failed: " + openssl_error_string());
    }
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string iso_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return "?";
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b) {
  return a != nullptr && b != nullptr && EVP_PKEY_eq(a, b) == 1;
}

std::optional<std::string> tn_auth_list_spc(const X509* certificate) {
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(OBJ_txt2obj(kTnAuthListOid, 1),
                                                                ASN1_OBJECT_free);
  const int index = X509_get_ext_by_OBJ(certificate, oid.get(), -1);
  if (index < 0) return std::nullopt;
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(X509_get_ext(certificate, index));
  const unsigned char* p = ASN1_STRING_get0_data(value);
  const unsigned char* const end = p + ASN1_STRING_length(value);
  auto malformed = [] { return Error(ErrorCode::kMalformed, "TNAuthList does not parse"); };

  // TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
  long length = 0;
  int tag = 0, xclass = 0;
  if ((ASN1_get_object(&p, &length, &tag, &xclass, end - p) & 0x80) != 0 ||
      tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL || p + length != end) {
    ERR_clear_error();
    throw malformed();
  }
  // TNEntry ::= CHOICE { spc [0] ServiceProviderCode, range [1] ..., one [2] ... }
  while (p < end) {
    if ((ASN1_get_object(&p, &length, &tag, &xclass, end - p) & 0x80) != 0 ||
        xclass != V_ASN1_CONTEXT_SPECIFIC) {
      ERR_clear_error();
      throw malformed();
    }
    const unsigned char* entry_end = p + length;
    if (tag == 0) {
      // ServiceProviderCode ::= IA5String, explicitly tagged.
      long spc_length = 0;
      if ((ASN1_get_object(&p, &spc_length, &tag, &xclass, entry_end - p) & 0x80) != 0 ||
          tag != V_ASN1_IA5STRING || p + spc_length != entry_end) {
        ERR_clear_error();
        throw malformed();
      }
      return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(spc_length));
    }
    p = entry_end;
  }
  return std::nullopt;
}

std::vector<std::uint8_t> tn_auth_list_der(std::string_view spc) {
  if (spc.empty() || spc.size() > 16) {
    throw Error(ErrorCode::kInvalidArgument, "an SPC has 1 to 16 characters");
  }
  for (char c : spc) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) {
      throw Error(ErrorCode::kInvalidArgument,
                  "SPC '" + std::string(spc) + "' may hold only digits and uppercase letters");
    }
  }
  const auto n = static_cast<std::uint8_t>(spc.size());
  std::vector<std::uint8_t> der;
  der.reserve(6 + spc.size());
  for (std::uint8_t b : {std::uint8_t{0x30}, static_cast<std::uint8_t>(n + 4), std::uint8_t{0xA0},
                         static_cast<std::uint8_t>(n + 2), std::uint8_t{0x16}, n}) {
    der.push_back(b);
  }
  for (char c : spc) der.push_back(static_cast<std::uint8_t>(c));
  return der;
}

}  // namespace stir
