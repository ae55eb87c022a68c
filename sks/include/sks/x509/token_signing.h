// Signs X.509 structures (certificate requests, certificates, CRLs) with a
// key that only a stir::DigestSigner can use, such as a key in the token.
//
// OpenSSL builds and encodes the structure (both AlgorithmIdentifiers,
// ecdsa-with-SHA256); only the 32-byte SHA-256 digest of the TBS goes to the
// DigestSigner, so no private key exists anywhere but in the token. Every
// result is verified with `public_key` before the function returns.
//
// Ownership: the functions borrow their arguments; the structure is changed
// in place (its signature and algorithm fields).
// Threads: safe to call concurrently on different structures.
// Errors: stir::Error. kInvalidArgument when `public_key` is not EC P-256;
// whatever the DigestSigner throws (kPkcs11, kPinIncorrect, ...) passes
// through unchanged; kCrypto when OpenSSL fails or the signature does not
// verify with `public_key` (the signer holds another key).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "stir/digest_signer.h"

namespace sks::x509 {

void sign_request(X509_REQ* request, const stir::DigestSigner& signer, const EVP_PKEY* public_key);
void sign_certificate(X509* certificate, const stir::DigestSigner& signer,
                      const EVP_PKEY* public_key);
void sign_crl(X509_CRL* crl, const stir::DigestSigner& signer, const EVP_PKEY* public_key);

}  // namespace sks::x509
