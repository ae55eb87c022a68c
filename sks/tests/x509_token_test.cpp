// Certificates for token keys, on a fresh SoftHSM2 token per test: CSRs
// signed in the token (checked by the openssl command, not by project
// code), the operator path through OpenSSL's pkcs11 engine, and the rules
// of the per-key certificate store.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "process.h"
#include "sks/x509/csr.h"
#include "sks/x509/key_certificates.h"
#include "sks/x509/token_signing.h"
#include "softhsm_token.h"
#include "stir/error.h"
#include "stir/x509.h"
#include "test_pki.h"

namespace sks::testing {
namespace {

namespace fs = std::filesystem;
using stir::Error;
using stir::ErrorCode;
using stir::testing::ProcessResult;

constexpr const char* kEngine = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";
constexpr const char* kEngineConf = STIR_SOURCE_DIR "/hsm-config/openssl-pkcs11.cnf";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

using X509ReqPtr = std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)>;

X509ReqPtr parse_csr(const std::string& pem) {
  stir::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509ReqPtr(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr), X509_REQ_free);
}

// Expects `call` to throw stir::Error with exactly this code and message.
template <typename Call>
void expect_error(Call call, ErrorCode code, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_EQ(std::string(e.what()), message);
  }
}

class X509TokenTest : public SoftHsmTest {
 protected:
  void SetUp() override {
    SoftHsmTest::SetUp();
    keys->generate("L");
    keys->generate("M");
    public_key = stir::load_public_key_pem(keys->public_key_pem("L"));
    other_key = stir::load_public_key_pem(keys->public_key_pem("M"));
  }

  std::string csr(const std::string& subject = "/C=US/O=Example", const std::string& spc = "1234") {
    return x509::make_csr(*keys->signing_key("L"), public_key.get(), x509::parse_subject(subject),
                          spc);
  }

  // A SHAKEN chain (leaf + CA) whose leaf is for `key`.
  std::string chain_for(const EVP_PKEY* key, stir::testing::CertSpec leaf_spec = {}) {
    if (!leaf_spec.spc && leaf_spec.common_name == "Test") {
      leaf_spec.common_name = "SHAKEN 1234";
      leaf_spec.spc = "1234";
    }
    const stir::testing::TestCert leaf = stir::testing::issue(leaf_spec, &pki.ca, key);
    return leaf.certificate_pem() + pki.ca.certificate_pem();
  }

  std::string path(const std::string& name) const { return dir.path() + "/" + name; }

  stir::EvpPkeyPtr public_key;
  stir::EvpPkeyPtr other_key;
  stir::testing::ShakenPki pki = stir::testing::make_shaken_pki();
  x509::KeyCertificates store{dir.path() + "/keyring"};
};

// ---- CSR --------------------------------------------------------------------

TEST_F(X509TokenTest, CsrVerifiesWithOpensslAndRequestsTheTnAuthList) {
  write_text(path("csr.pem"), csr());
  const ProcessResult verify =
      stir::testing::run({"openssl", "req", "-verify", "-noout", "-in", path("csr.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_NE(verify.err.find("verify OK"), std::string::npos) << verify.describe();

  const ProcessResult text =
      stir::testing::run({"openssl", "req", "-text", "-noout", "-in", path("csr.pem")});
  ASSERT_EQ(text.exit_code, 0) << text.describe();
  EXPECT_NE(text.out.find("Requested Extensions"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("1.3.6.1.5.5.7.1.26"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Subject: C = US, O = Example, CN = SHAKEN 1234"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("ecdsa-with-SHA256"), std::string::npos) << text.out;
}

TEST_F(X509TokenTest, CsrCarriesTheTokenKeyAndTheExactTnAuthListDer) {
  X509ReqPtr request = parse_csr(csr());
  ASSERT_TRUE(request);
  EXPECT_TRUE(stir::same_public_key(X509_REQ_get0_pubkey(request.get()), public_key.get()));
  EXPECT_FALSE(stir::same_public_key(X509_REQ_get0_pubkey(request.get()), other_key.get()));
  EXPECT_EQ(X509_REQ_get_version(request.get()), 0);

  STACK_OF(X509_EXTENSION)* extensions = X509_REQ_get_extensions(request.get());
  ASSERT_NE(extensions, nullptr);
  ASSERT_EQ(sk_X509_EXTENSION_num(extensions), 1);
  X509_EXTENSION* extension = sk_X509_EXTENSION_value(extensions, 0);
  char oid[64];
  OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(extension), 1);
  EXPECT_STREQ(oid, "1.3.6.1.5.5.7.1.26");
  EXPECT_EQ(X509_EXTENSION_get_critical(extension), 0);
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(extension);
  const std::vector<std::uint8_t> der(ASN1_STRING_get0_data(data),
                                      ASN1_STRING_get0_data(data) + ASN1_STRING_length(data));
  EXPECT_EQ(der,
            (std::vector<std::uint8_t>{0x30, 0x08, 0xA0, 0x06, 0x16, 0x04, '1', '2', '3', '4'}));
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
}

TEST_F(X509TokenTest, CsrRefusesABadSubjectOrSpc) {
  expect_error([&] { csr("/C=US/O=Example/CN=SHAKEN 9999"); }, ErrorCode::kInvalidArgument,
               "CN 'SHAKEN 9999' must be 'SHAKEN 1234' for SPC 1234");
  expect_error([&] { csr("/C=US/CN=SHAKEN 1234"); }, ErrorCode::kInvalidArgument,
               "subject '/C=US/CN=SHAKEN 1234' needs C and O (CN defaults to 'SHAKEN <SPC>')");
  expect_error([&] { csr("/C=US/O=Example/OU=Voice"); }, ErrorCode::kInvalidArgument,
               "subject attribute 'OU' is not allowed: an STI certificate subject has only C, O "
               "and CN");
  expect_error([&] { csr("/C=USA/O=Example"); }, ErrorCode::kInvalidArgument,
               "country 'USA' must be a two-letter code");
  expect_error([&] { csr("/C=US/O=Example", "12 34"); }, ErrorCode::kInvalidArgument,
               "SPC '12 34' may hold only digits and uppercase letters");
}

TEST_F(X509TokenTest, SigningWithAnotherKeysPublicKeyIsRefused) {
  // The token key M signs, but the request claims L's key: the check after
  // signing catches the mismatch instead of returning an invalid request.
  expect_error(
      [&] {
        x509::make_csr(*keys->signing_key("M"), public_key.get(),
                       x509::parse_subject("/C=US/O=Example"), "1234");
      },
      ErrorCode::kCrypto,
      "the certificate request signed in the token does not verify with the expected public key");
}

// The operator path: openssl req with the pkcs11 engine, OPENSSL_CONF set
// only in the child, the PIN from a 0600 file named in the URI.
TEST_F(X509TokenTest, OpensslEngineMakesAValidCsrFromTheSameTokenKey) {
  ASSERT_TRUE(fs::exists(kEngine)) << "libengine-pkcs11-openssl is not installed";
  ASSERT_TRUE(fs::exists(kEngineConf));
  const std::string pin_file = path("user.pin");
  write_text(pin_file, std::string(kTestUserPin.view()));
  fs::permissions(pin_file, fs::perms(0600));
  const std::string uri = std::string("pkcs11:token=") + kTokenLabel +
                          ";object=L;type=private;pin-source=file:" + pin_file;
  const ProcessResult made = stir::testing::run(
      {"openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key", uri, "-subj",
       "/C=US/O=Example/CN=SHAKEN 1234", "-addext",
       "1.3.6.1.5.5.7.1.26=DER:30:08:A0:06:16:04:31:32:33:34", "-out", path("engine-csr.pem")},
      {{"OPENSSL_CONF", kEngineConf},
       {"SOFTHSM2_CONF", dir.path() + "/softhsm2.conf"},
       {"PKCS11_MODULE_PATH", STIR_SOFTHSM_MODULE}});
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  EXPECT_EQ(made.out.find(std::string(kTestUserPin.view())), std::string::npos);
  EXPECT_EQ(made.err.find(std::string(kTestUserPin.view())), std::string::npos);

  const ProcessResult verify =
      stir::testing::run({"openssl", "req", "-verify", "-noout", "-in", path("engine-csr.pem")},
                         {{"OPENSSL_CONF", std::nullopt}});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  X509ReqPtr request = parse_csr(read_text(path("engine-csr.pem")));
  ASSERT_TRUE(request);
  EXPECT_TRUE(stir::same_public_key(X509_REQ_get0_pubkey(request.get()), public_key.get()));
}

// ---- install-cert -------------------------------------------------------------

TEST_F(X509TokenTest, InstallAcceptsTheKeysChainAndASecondInstallChangesNothing) {
  const std::string chain = chain_for(public_key.get());
  const x509::InstallResult first = store.install("L", public_key.get(), chain, {});
  EXPECT_EQ(first.outcome, x509::InstallOutcome::kInstalled);
  EXPECT_EQ(first.path, dir.path() + "/keyring/L.chain.pem");
  EXPECT_TRUE(first.warnings.empty());
  EXPECT_EQ(read_text(first.path), chain);
  EXPECT_EQ(static_cast<unsigned>(fs::status(first.path).permissions()), 0644u);
  const auto mtime = fs::last_write_time(first.path);

  const x509::InstallResult second = store.install("L", public_key.get(), chain, {});
  EXPECT_EQ(second.outcome, x509::InstallOutcome::kUnchanged);
  EXPECT_EQ(fs::last_write_time(first.path), mtime);

  const x509::CertificateInfo info = store.show("L");
  EXPECT_EQ(info.subject, "/C=US/O=sks tests/CN=SHAKEN 1234");
  EXPECT_EQ(info.spc, "1234");
  EXPECT_EQ(info.chain_length, 2u);
  EXPECT_EQ(info.sha256_fingerprint.size(), 32u * 3 - 1);
  EXPECT_FALSE(info.serial.empty());
  EXPECT_EQ(info.not_after.back(), 'Z');
}

TEST_F(X509TokenTest, InstallRefusesAnotherKeysChainAndRecordsNothing) {
  const std::string chain = chain_for(other_key.get());
  expect_error([&] { store.install("L", public_key.get(), chain, {}); },
               ErrorCode::kInvalidArgument, "the chain's leaf key is not the key 'L' in the token");
  EXPECT_FALSE(fs::exists(dir.path() + "/keyring/L.chain.pem"));
}

TEST_F(X509TokenTest, InstallRefusesABrokenChainAndRecordsNothing) {
  // The leaf is followed by a CA that did not issue it.
  const stir::testing::ShakenPki other = stir::testing::make_shaken_pki();
  stir::testing::CertSpec spec;
  spec.common_name = "SHAKEN 1234";
  spec.spc = "1234";
  const std::string chain =
      stir::testing::issue(spec, &pki.ca, public_key.get()).certificate_pem() +
      other.ca.certificate_pem();
  try {
    store.install("L", public_key.get(), chain, {});
    ADD_FAILURE() << "a broken chain was installed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind("certificate 0 (/C=US/O=sks tests/CN=SHAKEN 1234) is not "
                                          "issued by certificate 1",
                                          0),
              0u)
        << e.what();
  }
  expect_error([&] { store.install("L", public_key.get(), "not a PEM chain", {}); },
               ErrorCode::kMalformed, "no PEM certificate found");
  EXPECT_FALSE(fs::exists(dir.path() + "/keyring"));
}

TEST_F(X509TokenTest, InstallRefusesAnExpiredOrNotYetValidLeaf) {
  stir::testing::CertSpec expired;
  expired.common_name = "SHAKEN 1234";
  expired.spc = "1234";
  expired.not_before_offset_s = -2 * 86400;
  expired.not_after_offset_s = -86400;
  const std::string chain = chain_for(public_key.get(), expired);
  try {
    store.install("L", public_key.get(), chain, {});
    ADD_FAILURE() << "an expired leaf was installed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind(
                  "the chain's leaf (/C=US/O=sks tests/CN=SHAKEN 1234) expired at ", 0),
              0u)
        << e.what();
  }
  stir::testing::CertSpec future = expired;
  future.not_before_offset_s = 86400;
  future.not_after_offset_s = 2 * 86400;
  try {
    store.install("L", public_key.get(), chain_for(public_key.get(), future), {});
    ADD_FAILURE() << "a not yet valid leaf was installed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not valid before"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path() + "/keyring/L.chain.pem"));
}

TEST_F(X509TokenTest, InstallRefusesALeafWithoutSpcUnlessAllowed) {
  stir::testing::CertSpec no_spc;
  no_spc.common_name = "SHAKEN 1234";
  const std::string chain = chain_for(public_key.get(), no_spc);
  expect_error([&] { store.install("L", public_key.get(), chain, {}); },
               ErrorCode::kInvalidArgument,
               "the chain's leaf has no TNAuthList SPC (add --allow-no-spc to install it anyway)");
  EXPECT_FALSE(fs::exists(dir.path() + "/keyring/L.chain.pem"));
  x509::InstallOptions allow;
  allow.allow_no_spc = true;
  const x509::InstallResult result = store.install("L", public_key.get(), chain, allow);
  EXPECT_EQ(result.outcome, x509::InstallOutcome::kInstalled);
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_EQ(result.warnings[0], "the chain's leaf has no TNAuthList SPC; verifiers will reject it");
}

TEST_F(X509TokenTest, RenewalNeedsReplaceAndKeepsTheOldChain) {
  const std::string old_chain = chain_for(public_key.get());
  const std::string new_chain = chain_for(public_key.get());
  store.install("L", public_key.get(), old_chain, {});
  try {
    store.install("L", public_key.get(), new_chain, {});
    ADD_FAILURE() << "a different chain replaced the installed one without --replace";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
    EXPECT_NE(std::string(e.what()).find("add --replace to renew it"), std::string::npos);
  }
  EXPECT_EQ(read_text(store.chain_path("L")), old_chain);

  x509::InstallOptions replace;
  replace.replace = true;
  const x509::InstallResult result = store.install("L", public_key.get(), new_chain, replace);
  EXPECT_EQ(result.outcome, x509::InstallOutcome::kReplaced);
  EXPECT_EQ(read_text(result.path), new_chain);
  EXPECT_EQ(read_text(result.previous_path), old_chain);
  EXPECT_EQ(fs::path(result.previous_path).filename().string().size(),
            std::string("L.chain.").size() + 16 + std::string(".pem").size());
}

TEST_F(X509TokenTest, ShowWithoutAChainIsNotFoundAndBadLabelsAreRefused) {
  expect_error([&] { store.show("L"); }, ErrorCode::kNotFound,
               "key 'L' has no certificate chain (" + dir.path() + "/keyring/L.chain.pem)");
  expect_error([&] { store.chain_path("../x"); }, ErrorCode::kInvalidArgument,
               "'../x' is not a valid key label");
}

}  // namespace
}  // namespace sks::testing
