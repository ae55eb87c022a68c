// The TNAuthList decoder (stir::tn_auth_list_spc): the input is the
// extension's DER value, put into a test certificate made at start-up. An
// SPC that comes back lies inside the input; anything else is kMalformed.
#include <openssl/x509v3.h>

#include <cstdint>

#include "fuzz_util.h"
#include "stir/error.h"
#include "stir/x509.h"
#include "test_pki.h"

namespace {

X509* certificate() {
  static const stir::testing::TestCert cert = [] {
    stir::testing::CertSpec spec;
    spec.common_name = "SHAKEN 1234";
    return stir::testing::issue(spec, nullptr);
  }();
  return cert.certificate.get();
}

// Replaces the certificate's TNAuthList extension by one holding `der`.
void set_tn_auth_list(X509* cert, const std::uint8_t* der, std::size_t size) {
  static ASN1_OBJECT* const oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.26", 1);
  for (int at; (at = X509_get_ext_by_OBJ(cert, oid, -1)) >= 0;) {
    X509_EXTENSION_free(X509_delete_ext(cert, at));
  }
  ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(value, der, static_cast<int>(size));
  X509_EXTENSION* extension = X509_EXTENSION_create_by_OBJ(nullptr, oid, 0, value);
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  ASN1_OCTET_STRING_free(value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  X509* cert = certificate();
  set_tn_auth_list(cert, data, size);
  try {
    const auto spc = stir::tn_auth_list_spc(cert);
    if (spc && spc->size() > size) stir::fuzz::property_failed("SPC longer than the extension");
  } catch (const stir::Error& e) {
    if (e.code() != stir::ErrorCode::kMalformed) stir::fuzz::property_failed("not kMalformed");
  }
  return 0;
}
