// Why EC_KEY_METHOD (deprecated in OpenSSL 3.0, so this one file builds with
// -Wno-deprecated-declarations): OpenSSL 3.0 treats an EC_KEY whose method is
// not the default as a "foreign" key and signs with it through the legacy EC
// path, which hands our sign_sig callback the SHA-256 digest it computed over
// the TBS. X509_REQ_sign, X509_sign and X509_CRL_sign then encode everything
// themselves, both AlgorithmIdentifiers included. libp11's engine works the
// same way. The 3.x alternative, a provider, is several hundred lines for the
// same effect; hand-assembling the DER would duplicate what OpenSSL encodes.
#include "sks/x509/token_signing.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <exception>
#include <string>

#include "stir/error.h"
#include "stir/openssl.h"

namespace sks::x509 {
namespace {

using stir::Error;
using stir::ErrorCode;

using EcKeyPtr = std::unique_ptr<EC_KEY, stir::detail::OpenSslDeleter<EC_KEY, EC_KEY_free>>;

// What the callback needs: the signer, and where to keep its exception
// (an exception must not unwind through OpenSSL's C frames).
struct SignContext {
  const stir::DigestSigner* signer = nullptr;
  std::exception_ptr error;
};

int context_index() {
  static const int index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

ECDSA_SIG* sign_sig(const unsigned char* digest, int digest_length, const BIGNUM*, const BIGNUM*,
                    EC_KEY* key) {
  auto* context = static_cast<SignContext*>(EC_KEY_get_ex_data(key, context_index()));
  if (context == nullptr) return nullptr;
  try {
    stir::Sha256Digest sha256{};
    if (digest_length != static_cast<int>(sha256.size())) {
      throw Error(ErrorCode::kInternal, "token signing: digest is not SHA-256");
    }
    std::copy(digest, digest + sha256.size(), sha256.begin());
    const stir::Es256Signature raw = context->signer->sign_digest(sha256);
    stir::EcdsaSigPtr signature(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(raw.data(), 32, nullptr);
    BIGNUM* s = BN_bin2bn(raw.data() + 32, 32, nullptr);
    if (!signature || r == nullptr || s == nullptr || ECDSA_SIG_set0(signature.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      throw Error(ErrorCode::kCrypto, "ECDSA_SIG_set0 failed");
    }
    return signature.release();
  } catch (...) {
    context->error = std::current_exception();
    return nullptr;
  }
}

// The default EC method with sign_sig replaced; made once, never freed.
const EC_KEY_METHOD* token_method() {
  static EC_KEY_METHOD* const method = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (m == nullptr) return m;
    int (*sign)(int, const unsigned char*, int, unsigned char*, unsigned int*, const BIGNUM*,
                const BIGNUM*, EC_KEY*) = nullptr;
    int (*sign_setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
    EC_KEY_METHOD_get_sign(m, &sign, &sign_setup, nullptr);
    EC_KEY_METHOD_set_sign(m, sign, sign_setup, sign_sig);
    return m;
  }();
  if (method == nullptr) throw Error(ErrorCode::kCrypto, "EC_KEY_METHOD_new failed");
  return method;
}

// An EVP_PKEY with `public_key`'s point whose signatures come from `context`.
stir::EvpPkeyPtr token_pkey(const EVP_PKEY* public_key, SignContext& context) {
  if (!stir::is_p256_key(public_key)) {
    throw Error(ErrorCode::kInvalidArgument, "token signing needs an EC P-256 public key");
  }
  // Through DER, because EVP_PKEY_get1_EC_KEY would cache a legacy copy in
  // the caller's key.
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(public_key, &der);
  if (length <= 0) throw Error(ErrorCode::kCrypto, "i2d_PUBKEY: " + stir::openssl_error_string());
  const unsigned char* p = der;
  EcKeyPtr ec(d2i_EC_PUBKEY(nullptr, &p, length));
  OPENSSL_free(der);
  if (!ec) throw Error(ErrorCode::kCrypto, "d2i_EC_PUBKEY: " + stir::openssl_error_string());
  // The method goes in before the key is wrapped: EVP_PKEY_assign decides
  // then whether the key is foreign.
  if (EC_KEY_set_method(ec.get(), token_method()) != 1 ||
      EC_KEY_set_ex_data(ec.get(), context_index(), &context) != 1) {
    throw Error(ErrorCode::kCrypto, "EC_KEY_set_method: " + stir::openssl_error_string());
  }
  stir::EvpPkeyPtr pkey(EVP_PKEY_new());
  if (!pkey || EVP_PKEY_assign_EC_KEY(pkey.get(), ec.get()) != 1) {
    throw Error(ErrorCode::kCrypto, "EVP_PKEY_assign_EC_KEY: " + stir::openssl_error_string());
  }
  ec.release();  // owned by pkey now
  return pkey;
}

template <typename Sign, typename Verify>
void sign_with_token(const char* what, const stir::DigestSigner& signer, const EVP_PKEY* public_key,
                     Sign sign, Verify verify) {
  SignContext context{&signer, nullptr};
  stir::EvpPkeyPtr pkey = token_pkey(public_key, context);
  const int signed_ok = sign(pkey.get());
  if (context.error) {
    ERR_clear_error();
    std::rethrow_exception(context.error);
  }
  if (signed_ok <= 0) {
    throw Error(ErrorCode::kCrypto,
                std::string(what) + " signing failed: " + stir::openssl_error_string());
  }
  // OpenSSL 3.0's verify functions take a non-const key but only read it.
  if (verify(const_cast<EVP_PKEY*>(public_key)) != 1) {
    ERR_clear_error();
    throw Error(ErrorCode::kCrypto, std::string("the ") + what +
                                        " signed in the token does not verify with the "
                                        "expected public key");
  }
}

}  // namespace

void sign_request(X509_REQ* request, const stir::DigestSigner& signer, const EVP_PKEY* public_key) {
  sign_with_token(
      "certificate request", signer, public_key,
      [&](EVP_PKEY* key) { return X509_REQ_sign(request, key, EVP_sha256()); },
      [&](EVP_PKEY* key) { return X509_REQ_verify(request, key); });
}

void sign_certificate(X509* certificate, const stir::DigestSigner& signer,
                      const EVP_PKEY* public_key) {
  sign_with_token(
      "certificate", signer, public_key,
      [&](EVP_PKEY* key) { return X509_sign(certificate, key, EVP_sha256()); },
      [&](EVP_PKEY* key) { return X509_verify(certificate, key); });
}

void sign_crl(X509_CRL* crl, const stir::DigestSigner& signer, const EVP_PKEY* public_key) {
  sign_with_token(
      "CRL", signer, public_key,
      [&](EVP_PKEY* key) { return X509_CRL_sign(crl, key, EVP_sha256()); },
      [&](EVP_PKEY* key) { return X509_CRL_verify(crl, key); });
}

}  // namespace sks::x509
