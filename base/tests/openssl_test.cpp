#include "stir/openssl.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "software_signer.h"
#include "stir/error.h"

namespace stir {
namespace {

std::string public_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return "";
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no stir::Error thrown";
  return ErrorCode::kInternal;
}

TEST(OpenSsl, Sha256KnownAnswer) {
  // FIPS 180-2 "abc".
  const Sha256Digest d = sha256(std::string_view("abc"));
  EXPECT_EQ(d[0], 0xBA);
  EXPECT_EQ(d[1], 0x78);
  EXPECT_EQ(d[31], 0xAD);
}

// The digest context is reused per thread: each call starts afresh, on
// any thread, for inputs of any length (FIPS 180-2 vectors).
TEST(OpenSsl, Sha256ReusedContextStartsAfreshOnEveryCallAndThread) {
  const auto hex = [](const Sha256Digest& d) {
    std::string text;
    for (unsigned char b : d)
      text += "0123456789abcdef"[b >> 4], text += "0123456789abcdef"[b & 15];
    return text;
  };
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const std::string million(1000000, 'a');
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(hex(sha256(std::string_view(two_blocks))),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(hex(sha256(std::string_view(""))),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex(sha256(std::string_view(million))),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
  std::string other;
  std::thread([&] { other = hex(sha256(std::string_view("abc"))); }).join();
  EXPECT_EQ(other, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(OpenSsl, LoadsP256PublicKeyPem) {
  testing::SoftwareSigner signer;
  const EvpPkeyPtr key = load_public_key_pem(public_pem(signer.key()));
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_eq(key.get(), signer.key()), 1);
}

TEST(OpenSsl, RejectsGarbageAndWrongKeyTypes) {
  EXPECT_EQ(code_of([] { load_public_key_pem("not a pem"); }), ErrorCode::kMalformed);
  EXPECT_EQ(code_of([] { load_public_key_pem(""); }), ErrorCode::kMalformed);
  EvpPkeyPtr rsa(EVP_RSA_gen(2048));
  ASSERT_TRUE(rsa);
  const std::string rsa_pem = public_pem(rsa.get());
  EXPECT_EQ(code_of([&] { load_public_key_pem(rsa_pem); }), ErrorCode::kInvalidArgument);
  EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  ASSERT_TRUE(p384);
  const std::string p384_pem = public_pem(p384.get());
  EXPECT_EQ(code_of([&] { load_public_key_pem(p384_pem); }), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(is_p256_key(p384.get()));
  EXPECT_FALSE(is_p256_key(nullptr));
}

TEST(OpenSsl, ErrorMessagesCarryOpenSslText) {
  try {
    load_public_key_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    ADD_FAILURE() << "accepted a broken key";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMalformed);
    EXPECT_NE(std::string(e.what()).find("error:"), std::string::npos) << e.what();
  }
}

TEST(OpenSsl, FileErrors) {
  EXPECT_EQ(code_of([] { load_public_key_file("/nonexistent/stir/key.pem"); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(code_of([] { public_key_from_certificate_file("/nonexistent/stir/cert.pem"); }),
            ErrorCode::kNotFound);
  testing::SoftwareSigner signer;
  const auto file = std::filesystem::temp_directory_path() /
                    ("stir_openssl_test_" + std::to_string(::getpid()) + ".pem");
  {
    std::ofstream out(file);
    out << public_pem(signer.key());
  }
  EXPECT_EQ(EVP_PKEY_eq(load_public_key_file(file.string()).get(), signer.key()), 1);
  // A bare public key is not a certificate.
  EXPECT_EQ(code_of([&] { public_key_from_certificate_file(file.string()); }),
            ErrorCode::kMalformed);
  std::filesystem::remove(file);
}

TEST(OpenSsl, DerAndRawSignatureLayouts) {
  testing::SoftwareSigner signer;
  const Sha256Digest digest = sha256(std::string_view("payload"));
  const std::vector<std::uint8_t> der = signer.sign_digest_der(digest);
  const Es256Signature raw = ecdsa_der_to_raw(der);
  EXPECT_EQ(ecdsa_raw_to_der(raw), der);
  EXPECT_TRUE(verify_es256_digest(signer.key(), digest, raw));
  Es256Signature zero{};
  EXPECT_FALSE(verify_es256_digest(signer.key(), digest, zero));
  EXPECT_FALSE(verify_es256_digest(nullptr, digest, raw));
  std::vector<std::uint8_t> trailing = der;
  trailing.push_back(0);
  EXPECT_EQ(code_of([&] { ecdsa_der_to_raw(trailing); }), ErrorCode::kMalformed);
  EXPECT_EQ(code_of([] {
              ecdsa_der_to_raw(std::vector<std::uint8_t>{0x30, 0x00});
            }),
            ErrorCode::kMalformed);
}

}  // namespace
}  // namespace stir
