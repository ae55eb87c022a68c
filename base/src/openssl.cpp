#include "stir/openssl.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "stir/error.h"

namespace stir {
namespace {

// Certificates and keys are a few KiB; anything far larger is not one.
constexpr std::streamsize kMaxPemFileSize = 1 << 20;

Error openssl_error(ErrorCode code, const std::string& what) {
  std::string message = what;
  const std::string detail = openssl_error_string();
  if (!detail.empty()) message += ": " + detail;
  return Error(code, message);
}

BioPtr memory_bio(std::string_view data) {
  if (data.size() > static_cast<std::size_t>(INT_MAX)) {
    throw Error(ErrorCode::kMalformed, "PEM input too large");
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) throw openssl_error(ErrorCode::kCrypto, "BIO_new_mem_buf failed");
  return bio;
}

std::string read_pem_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const ErrorCode code = err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
    throw Error(code, "cannot open " + path + ": " + std::strerror(err));
  }
  std::string data;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    data.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (static_cast<std::streamsize>(data.size()) > kMaxPemFileSize) {
      throw Error(ErrorCode::kMalformed, path + ": larger than 1 MiB, not a PEM key");
    }
  }
  if (in.bad()) throw Error(ErrorCode::kIo, "cannot read " + path);
  return data;
}

EvpPkeyPtr require_p256(EvpPkeyPtr key, std::string_view source) {
  if (!is_p256_key(key.get())) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(source) + ": public key is not EC P-256 (ES256 needs P-256)");
  }
  return key;
}

EvpPkeyPtr key_of_certificate(X509* cert, std::string_view source) {
  EvpPkeyPtr key(X509_get_pubkey(cert));
  if (!key) {
    throw openssl_error(ErrorCode::kMalformed,
                        std::string(source) + ": cannot read the certificate's public key");
  }
  return require_p256(std::move(key), source);
}

}  // namespace

std::string openssl_error_string() {
  std::string out;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out;
}

EvpPkeyPtr load_public_key_pem(std::string_view pem) {
  ERR_clear_error();
  {
    BioPtr bio = memory_bio(pem);
    EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (key) return require_p256(std::move(key), "public key PEM");
  }
  // Not a PUBLIC KEY block: try a certificate before giving up.
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    throw openssl_error(ErrorCode::kMalformed,
                        "neither a PUBLIC KEY nor a CERTIFICATE PEM block was found");
  }
  return key_of_certificate(cert.get(), "certificate PEM");
}

EvpPkeyPtr load_public_key_file(const std::string& path) {
  const std::string pem = read_pem_file(path);
  try {
    return load_public_key_pem(pem);
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

EvpPkeyPtr public_key_from_certificate_file(const std::string& path) {
  const std::string pem = read_pem_file(path);
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) throw openssl_error(ErrorCode::kMalformed, path + ": no PEM certificate");
  return key_of_certificate(cert.get(), path);
}

bool is_p256_key(const EVP_PKEY* key) noexcept {
  if (key == nullptr || !EVP_PKEY_is_a(key, "EC")) return false;
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
      1) {
    ERR_clear_error();
    return false;
  }
  return std::string_view(group, len) == SN_X9_62_prime256v1;
}

Sha256Digest sha256(std::span<const std::uint8_t> data) {
  // SHA-256 fetched from the provider once per process and one digest
  // context per thread, reset for each use: EVP_Digest with EVP_sha256()
  // fetches the implementation and makes a context on every call, which
  // cost four times the hash of a PASSporT's signing input (issue 20).
  static const std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(
      EVP_MD_fetch(nullptr, "SHA256", nullptr), EVP_MD_free);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
      EVP_MD_CTX_new(), EVP_MD_CTX_free);
  Sha256Digest digest{};
  unsigned int len = 0;
  if (!md || !context || EVP_DigestInit_ex2(context.get(), md.get(), nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest.data(), &len) != 1 || len != digest.size()) {
    throw openssl_error(ErrorCode::kCrypto, "SHA-256 failed");
  }
  return digest;
}

Sha256Digest sha256(std::string_view data) {
  return sha256(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

Es256Signature ecdsa_der_to_raw(std::span<const std::uint8_t> der) {
  if (der.size() > 256) throw Error(ErrorCode::kMalformed, "DER ECDSA signature too long");
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size()) {
    ERR_clear_error();
    throw Error(ErrorCode::kMalformed, "not one DER ECDSA signature");
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  Es256Signature raw{};
  if (BN_bn2binpad(r, raw.data(), 32) != 32 || BN_bn2binpad(s, raw.data() + 32, 32) != 32) {
    ERR_clear_error();
    throw Error(ErrorCode::kMalformed, "ECDSA r or s longer than 32 bytes");
  }
  return raw;
}

std::vector<std::uint8_t> ecdsa_raw_to_der(const Es256Signature& raw) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BignumPtr r(BN_bin2bn(raw.data(), 32, nullptr));
  BignumPtr s(BN_bin2bn(raw.data() + 32, 32, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    throw openssl_error(ErrorCode::kCrypto, "cannot build ECDSA_SIG");
  }
  // ECDSA_SIG_set0 took ownership of r and s.
  static_cast<void>(r.release());
  static_cast<void>(s.release());
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) throw openssl_error(ErrorCode::kCrypto, "i2d_ECDSA_SIG failed");
  std::vector<std::uint8_t> der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) {
    throw openssl_error(ErrorCode::kCrypto, "i2d_ECDSA_SIG failed");
  }
  return der;
}

bool verify_es256_digest(EVP_PKEY* key, const Sha256Digest& digest, const Es256Signature& raw) {
  if (!is_p256_key(key)) return false;
  std::vector<std::uint8_t> der;
  try {
    der = ecdsa_raw_to_der(raw);
  } catch (const Error&) {
    return false;
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
  const bool ok =
      ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
      EVP_PKEY_verify(ctx.get(), der.data(), der.size(), digest.data(), digest.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace stir
