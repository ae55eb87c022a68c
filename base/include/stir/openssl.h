// Thin OpenSSL 3.0 helpers: RAII owners, public-key loading, SHA-256 and the
// ES256 signature layouts (raw r||s for JWS, DER for OpenSSL).
//
// Ownership: every *Ptr owns its object and frees it with the matching
// OpenSSL _free function; the deleters never throw.
// Threads: the functions keep no state of their own; they are safe to call
// concurrently. An EVP_PKEY may be shared read-only between threads for
// verification (OpenSSL 3.0 guarantees this for const use).
// Errors: loaders throw stir::Error: kNotFound (no such file), kIo (cannot
// read), kMalformed (not PEM / not a key or certificate), kInvalidArgument
// (a key that is not EC P-256), kCrypto (OpenSSL failed). Messages include
// OpenSSL's own error text. Each call clears the OpenSSL error queue it used.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stir/digest_signer.h"

namespace stir {

namespace detail {
template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const noexcept { Free(p); }
};
}  // namespace detail

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, detail::OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using EvpPkeyCtxPtr =
    std::unique_ptr<EVP_PKEY_CTX, detail::OpenSslDeleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr =
    std::unique_ptr<EVP_MD_CTX, detail::OpenSslDeleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, detail::OpenSslDeleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, detail::OpenSslDeleter<BIO, BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, detail::OpenSslDeleter<BIGNUM, BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, detail::OpenSslDeleter<ECDSA_SIG, ECDSA_SIG_free>>;

// Drains this thread's OpenSSL error queue into one line ("" when empty).
std::string openssl_error_string();

// SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), or a certificate PEM whose
// key is taken. The key must be EC P-256.
EvpPkeyPtr load_public_key_pem(std::string_view pem);
// Same, read from a file.
EvpPkeyPtr load_public_key_file(const std::string& path);
// The key of the first certificate in a PEM file (a chain file is fine).
EvpPkeyPtr public_key_from_certificate_file(const std::string& path);

// True when `key` is an EC key on P-256 (prime256v1). Never throws.
bool is_p256_key(const EVP_PKEY* key) noexcept;

Sha256Digest sha256(std::string_view data);
Sha256Digest sha256(std::span<const std::uint8_t> data);

// DER ECDSA-Sig-Value -> raw r||s. Throws Error(kMalformed) when `der` is not
// one DER signature or r or s does not fit 32 bytes.
Es256Signature ecdsa_der_to_raw(std::span<const std::uint8_t> der);
// Raw r||s -> DER ECDSA-Sig-Value, for OpenSSL's verifier. Throws Error(kCrypto).
std::vector<std::uint8_t> ecdsa_raw_to_der(const Es256Signature& raw);

// True only when `raw` is a valid ES256 signature by `key` over `digest`.
// Never throws except std::bad_alloc; any OpenSSL failure is "false".
bool verify_es256_digest(EVP_PKEY* key, const Sha256Digest& digest, const Es256Signature& raw);

}  // namespace stir
