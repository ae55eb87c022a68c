// PKCS#10 certificate requests for keys in the token, as an STI-CA wants
// them: subject C, O and CN "SHAKEN <SPC>", the TNAuthList extension
// (RFC 8226, OID 1.3.6.1.5.5.7.1.26) with the SPC in an extensionRequest
// attribute, ecdsa-with-SHA256. OpenSSL builds the request; only its SHA-256
// digest is signed in the token (see token_signing.h).
//
// Threads: no shared state; safe to call concurrently.
// Errors: stir::Error: kInvalidArgument for a bad subject or SPC (the message
// says which part), kCrypto for OpenSSL failures; signer errors pass through.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "stir/digest_signer.h"

namespace sks::x509 {

inline constexpr const char* kTnAuthListOid = "1.3.6.1.5.5.7.1.26";

struct CsrSubject {
  std::string country;       // C, two letters
  std::string organization;  // O
  std::string common_name;   // CN; empty means "SHAKEN <SPC>"
};

// Parses OpenSSL's one-line form "/C=US/O=Example/CN=SHAKEN 1234". C and O
// are required, CN is optional; other attributes are refused because the
// ATIS-1000080 subject has exactly C, O and CN.
CsrSubject parse_subject(std::string_view text);

// "SHAKEN <SPC>", the CN ATIS-1000080 requires.
std::string shaken_common_name(std::string_view spc);

// The PEM ("CERTIFICATE REQUEST") of a request for `public_key`, signed by
// `signer` (which must hold that key's private half: the request is verified
// before it is returned). A CN other than "SHAKEN <SPC>" is refused.
std::string make_csr(const stir::DigestSigner& signer, const EVP_PKEY* public_key,
                     const CsrSubject& subject, std::string_view spc);

}  // namespace sks::x509
