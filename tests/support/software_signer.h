// TEST ONLY: a DigestSigner over a P-256 key generated in memory by OpenSSL.
// Production signs inside a PKCS#11 token (sks/); this exists so the signer
// library's unit tests need no HSM. Not thread-safe by contract (tests use
// it from one thread). Throws stir::Error(kCrypto) on OpenSSL failure.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>

#include <vector>

#include "stir/digest_signer.h"
#include "stir/error.h"
#include "stir/openssl.h"

namespace stir::testing {

class SoftwareSigner : public DigestSigner {
 public:
  SoftwareSigner() : key_(EVP_EC_gen("P-256")) {
    if (!key_) throw Error(ErrorCode::kCrypto, "EVP_EC_gen: " + openssl_error_string());
  }

  Es256Signature sign_digest(const Sha256Digest& digest) const override {
    return ecdsa_der_to_raw(sign_digest_der(digest));
  }

  // OpenSSL's native DER signature, for tests that feed the wrong layout.
  std::vector<std::uint8_t> sign_digest_der(const Sha256Digest& digest) const {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
    std::size_t len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
      throw Error(ErrorCode::kCrypto, "EVP_PKEY_sign: " + openssl_error_string());
    }
    std::vector<std::uint8_t> der(len);
    if (EVP_PKEY_sign(ctx.get(), der.data(), &len, digest.data(), digest.size()) != 1) {
      throw Error(ErrorCode::kCrypto, "EVP_PKEY_sign: " + openssl_error_string());
    }
    der.resize(len);
    return der;
  }

  // The key pair; its public half verifies this signer's signatures.
  EVP_PKEY* key() const { return key_.get(); }

 private:
  EvpPkeyPtr key_;
};

}  // namespace stir::testing
