// The test STI PKI in process, its CA keys in the same fresh SoftHSM2 token
// as the provider key: every field of the ATIS-1000080 profile of an issued
// certificate, checked field by field; the chain checked by the openssl
// command; the CRL before and after a revocation; CSRs that must be refused.
#include "dev_pki/dev_ca.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "process.h"
#include "sks/x509/csr.h"
#include "softhsm_token.h"
#include "stir/error.h"
#include "stir/verifier/chain.h"
#include "stir/x509.h"
#include "test_pki.h"

namespace dev_pki {
namespace {

namespace fs = std::filesystem;
using stir::Error;
using stir::ErrorCode;
using stir::testing::ProcessResult;

constexpr const char* kCrlUrl = "https://sti-pa.example.test/crl/sti-pa.crl";
const std::vector<std::uint8_t> kTnAuthList1234{0x30, 0x08, 0xA0, 0x06, 0x16,
                                                0x04, '1',  '2',  '3',  '4'};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string oid_text(const ASN1_OBJECT* object) {
  char text[128];
  OBJ_obj2txt(text, sizeof text, object, 1);
  return text;
}

std::vector<std::uint8_t> bytes_of(const ASN1_STRING* s) {
  return {ASN1_STRING_get0_data(s), ASN1_STRING_get0_data(s) + ASN1_STRING_length(s)};
}

// OpenSSL gives a CRL without entries a null list.
int revoked_count(X509_CRL* crl) {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  return revoked == nullptr ? 0 : sk_X509_REVOKED_num(revoked);
}

const X509_EXTENSION* extension(const X509* certificate, int nid) {
  const int index = X509_get_ext_by_NID(certificate, nid, -1);
  return index < 0 ? nullptr : X509_get_ext(certificate, index);
}

std::string name_entry(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

// A CSR made with a software key, for requests the token path never makes.
std::string software_csr(const std::string& common_name,
                         const std::vector<std::uint8_t>* tn_auth_list) {
  stir::EvpPkeyPtr key = stir::testing::new_p256_key();
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> request(X509_REQ_new(), X509_REQ_free);
  X509_NAME* name = X509_REQ_get_subject_name(request.get());
  for (const auto& [field, value] :
       {std::pair<const char*, std::string>{"C", "US"}, {"O", "Example"}, {"CN", common_name}}) {
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  }
  X509_REQ_set_pubkey(request.get(), key.get());
  if (tn_auth_list != nullptr) {
    STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
    ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(value, tn_auth_list->data(), static_cast<int>(tn_auth_list->size()));
    ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.26", 1);
    sk_X509_EXTENSION_push(extensions, X509_EXTENSION_create_by_OBJ(nullptr, oid, 0, value));
    X509_REQ_add_extensions(request.get(), extensions);
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(value);
  }
  X509_REQ_sign(request.get(), key.get(), EVP_sha256());
  stir::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), request.get());
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// The same CSR with one bit of its signature's s changed (the last DER byte).
std::string tampered(const std::string& csr_pem) {
  stir::BioPtr in(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> request(
      PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr), X509_REQ_free);
  unsigned char* der = nullptr;
  const int size = i2d_X509_REQ(request.get(), &der);
  der[size - 1] ^= 0x01;
  const unsigned char* p = der;
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> changed(d2i_X509_REQ(nullptr, &p, size),
                                                              X509_REQ_free);
  OPENSSL_free(der);
  stir::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(out.get(), changed.get());
  char* data = nullptr;
  const long length = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

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

class DevCaTest : public sks::testing::SoftHsmTest {
 protected:
  void SetUp() override {
    SoftHsmTest::SetUp();
    keys->generate("L");
    public_key = stir::load_public_key_pem(keys->public_key_pem("L"));
    ca = std::make_unique<DevCa>(*keys, pki_dir);
    ca->init(kCrlUrl);
  }

  std::string token_csr() {
    return sks::x509::make_csr(*keys->signing_key("L"), public_key.get(),
                               sks::x509::parse_subject("/C=US/O=Example"), "1234");
  }

  std::vector<stir::X509Ptr> issue_chain() { return stir::parse_pem_chain(ca->issue(token_csr())); }

  stir::X509Ptr file_certificate(const std::string& path) {
    return std::move(stir::parse_pem_chain(read_text(path)).front());
  }

  ProcessResult openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return stir::testing::run(argv);
  }

  std::string path(const std::string& name) const { return dir.path() + "/" + name; }

  const std::string pki_dir = dir.path() + "/pki";
  stir::EvpPkeyPtr public_key;
  std::unique_ptr<DevCa> ca;
};

TEST_F(DevCaTest, IssuedCertificateHasExactlyTheAtisProfile) {
  const std::vector<stir::X509Ptr> chain = issue_chain();
  ASSERT_EQ(chain.size(), 2u);
  X509* leaf = chain[0].get();
  stir::X509Ptr root = file_certificate(ca->root_path());
  stir::X509Ptr ca_certificate = file_certificate(ca->ca_path());
  EXPECT_EQ(X509_cmp(chain[1].get(), ca_certificate.get()), 0);

  EXPECT_EQ(X509_get_version(leaf), X509_VERSION_3);
  stir::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr));
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_FALSE(BN_is_zero(serial.get()));
  EXPECT_GE(BN_num_bits(serial.get()), 64);
  EXPECT_EQ(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
  EXPECT_TRUE(stir::same_public_key(X509_get0_pubkey(leaf), public_key.get()));

  const X509_NAME* subject = X509_get_subject_name(leaf);
  EXPECT_EQ(X509_NAME_entry_count(subject), 3);
  EXPECT_EQ(name_entry(subject, NID_countryName), "US");
  EXPECT_EQ(name_entry(subject, NID_organizationName), "Example");
  EXPECT_EQ(name_entry(subject, NID_commonName), "SHAKEN 1234");
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca_certificate.get())),
            0);

  // Exactly these seven extensions, in this order, nothing else.
  std::vector<std::string> oids;
  for (int i = 0; i < X509_get_ext_count(leaf); ++i) {
    oids.push_back(oid_text(X509_EXTENSION_get_object(X509_get_ext(leaf, i))));
  }
  EXPECT_EQ(oids, (std::vector<std::string>{"2.5.29.19", "2.5.29.15", "2.5.29.14", "2.5.29.35",
                                            "2.5.29.32", "2.5.29.31", "1.3.6.1.5.5.7.1.26"}));

  // Basic Constraints critical, CA:FALSE.
  const X509_EXTENSION* bc_extension = extension(leaf, NID_basic_constraints);
  ASSERT_NE(bc_extension, nullptr);
  EXPECT_EQ(X509_EXTENSION_get_critical(bc_extension), 1);
  std::unique_ptr<BASIC_CONSTRAINTS, decltype(&BASIC_CONSTRAINTS_free)> bc(
      static_cast<BASIC_CONSTRAINTS*>(
          X509_get_ext_d2i(leaf, NID_basic_constraints, nullptr, nullptr)),
      BASIC_CONSTRAINTS_free);
  ASSERT_TRUE(bc);
  EXPECT_EQ(bc->ca, 0);
  EXPECT_EQ(bc->pathlen, nullptr);

  // Key Usage critical, digitalSignature only.
  const X509_EXTENSION* ku_extension = extension(leaf, NID_key_usage);
  ASSERT_NE(ku_extension, nullptr);
  EXPECT_EQ(X509_EXTENSION_get_critical(ku_extension), 1);
  EXPECT_EQ(X509_get_key_usage(leaf), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));

  // SKI present, AKI = the STI-CA's SKI; both non-critical.
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(leaf);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(leaf);
  ASSERT_NE(ski, nullptr);
  ASSERT_NE(aki, nullptr);
  EXPECT_EQ(ASN1_STRING_length(ski), 20);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca_certificate.get())), 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(extension(leaf, NID_subject_key_identifier)), 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(extension(leaf, NID_authority_key_identifier)), 0);

  // Certificate Policies: one policy, the SHAKEN OID, no qualifiers.
  std::unique_ptr<CERTIFICATEPOLICIES, void (*)(CERTIFICATEPOLICIES*)> policies(
      static_cast<CERTIFICATEPOLICIES*>(
          X509_get_ext_d2i(leaf, NID_certificate_policies, nullptr, nullptr)),
      [](CERTIFICATEPOLICIES* p) { CERTIFICATEPOLICIES_free(p); });
  ASSERT_TRUE(policies);
  ASSERT_EQ(sk_POLICYINFO_num(policies.get()), 1);
  const POLICYINFO* policy = sk_POLICYINFO_value(policies.get(), 0);
  EXPECT_EQ(oid_text(policy->policyid), "2.16.840.1.114569.1.1.3");
  EXPECT_EQ(policy->qualifiers, nullptr);

  // CRL Distribution Points: one point, one URL, cRLIssuer = the root (the CRL's issuer).
  std::unique_ptr<CRL_DIST_POINTS, void (*)(CRL_DIST_POINTS*)> points(
      static_cast<CRL_DIST_POINTS*>(
          X509_get_ext_d2i(leaf, NID_crl_distribution_points, nullptr, nullptr)),
      [](CRL_DIST_POINTS* p) { CRL_DIST_POINTS_free(p); });
  ASSERT_TRUE(points);
  ASSERT_EQ(sk_DIST_POINT_num(points.get()), 1);
  const DIST_POINT* point = sk_DIST_POINT_value(points.get(), 0);
  ASSERT_NE(point->distpoint, nullptr);
  ASSERT_EQ(point->distpoint->type, 0);
  ASSERT_EQ(sk_GENERAL_NAME_num(point->distpoint->name.fullname), 1);
  const GENERAL_NAME* url = sk_GENERAL_NAME_value(point->distpoint->name.fullname, 0);
  ASSERT_EQ(url->type, GEN_URI);
  EXPECT_EQ(bytes_of(url->d.uniformResourceIdentifier),
            std::vector<std::uint8_t>(kCrlUrl, kCrlUrl + std::strlen(kCrlUrl)));
  EXPECT_EQ(point->reasons, nullptr);
  ASSERT_NE(point->CRLissuer, nullptr);
  ASSERT_EQ(sk_GENERAL_NAME_num(point->CRLissuer), 1);
  const GENERAL_NAME* crl_issuer = sk_GENERAL_NAME_value(point->CRLissuer, 0);
  ASSERT_EQ(crl_issuer->type, GEN_DIRNAME);
  EXPECT_EQ(X509_NAME_cmp(crl_issuer->d.directoryName, X509_get_subject_name(root.get())), 0);

  // TNAuthList non-critical, exactly the DER for SPC 1234.
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> tn_oid(
      OBJ_txt2obj("1.3.6.1.5.5.7.1.26", 1), ASN1_OBJECT_free);
  const int tn_index = X509_get_ext_by_OBJ(leaf, tn_oid.get(), -1);
  ASSERT_GE(tn_index, 0);
  X509_EXTENSION* tn = X509_get_ext(leaf, tn_index);
  EXPECT_EQ(X509_EXTENSION_get_critical(tn), 0);
  EXPECT_EQ(bytes_of(X509_EXTENSION_get_data(tn)), kTnAuthList1234);

  // And the chain as the openssl command sees it.
  write_text(path("leaf.pem"), ca->issue(token_csr()));
  const ProcessResult verify = openssl(
      {"verify", "-CAfile", ca->root_path(), "-untrusted", ca->ca_path(), path("leaf.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_EQ(verify.out, path("leaf.pem") + ": OK\n") << verify.describe();
}

TEST_F(DevCaTest, RootAndCaAreCasWithoutTnAuthList) {
  stir::X509Ptr root = file_certificate(ca->root_path());
  stir::X509Ptr ca_certificate = file_certificate(ca->ca_path());
  EXPECT_EQ(name_entry(X509_get_subject_name(root.get()), NID_commonName), "STI-PA Test Root");
  EXPECT_EQ(name_entry(X509_get_subject_name(ca_certificate.get()), NID_commonName), "STI-CA Test");
  for (X509* certificate : {root.get(), ca_certificate.get()}) {
    EXPECT_EQ(X509_get_version(certificate), X509_VERSION_3);
    EXPECT_EQ(X509_get_signature_nid(certificate), NID_ecdsa_with_SHA256);
    EXPECT_EQ(X509_EXTENSION_get_critical(extension(certificate, NID_basic_constraints)), 1);
    EXPECT_NE(X509_get_extension_flags(certificate) & EXFLAG_CA, 0u);
    EXPECT_EQ(X509_EXTENSION_get_critical(extension(certificate, NID_key_usage)), 1);
    EXPECT_EQ(X509_get_key_usage(certificate),
              static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    EXPECT_NE(X509_get0_subject_key_id(certificate), nullptr);
    EXPECT_NE(X509_get0_authority_key_id(certificate), nullptr);
    EXPECT_FALSE(stir::tn_auth_list_spc(certificate));
  }
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(ca_certificate.get()),
                                  X509_get0_subject_key_id(root.get())),
            0);
  EXPECT_EQ(X509_verify(root.get(), X509_get0_pubkey(root.get())), 1);
  EXPECT_EQ(X509_verify(ca_certificate.get(), X509_get0_pubkey(root.get())), 1);
  // The CA keys are in the token, sensitive and not extractable.
  for (const char* label : {kRootKeyLabel, kCaKeyLabel}) {
    const auto info = keys->find(label);
    ASSERT_TRUE(info) << label;
    EXPECT_TRUE(info->sensitive);
    EXPECT_FALSE(info->extractable);
  }
}

TEST_F(DevCaTest, InitAgainChangesNothing) {
  const std::string root = read_text(ca->root_path());
  const std::string ca_pem = read_text(ca->ca_path());
  const std::string crl = read_text(ca->crl_path());
  const std::string state = read_text(ca->state_path());
  DevCa again(*keys, pki_dir);
  const InitResult result = again.init("");
  EXPECT_FALSE(result.created_root);
  EXPECT_FALSE(result.created_ca);
  EXPECT_FALSE(result.created_crl);
  EXPECT_EQ(read_text(ca->root_path()), root);
  EXPECT_EQ(read_text(ca->ca_path()), ca_pem);
  EXPECT_EQ(read_text(ca->crl_path()), crl);
  EXPECT_EQ(read_text(ca->state_path()), state);
  expect_error([&] { again.init("https://other.example.test/crl"); }, ErrorCode::kAlreadyExists,
               "the test PKI in " + pki_dir + " has CRL URL " + kCrlUrl +
                   ", not https://other.example.test/crl; use another --dir");
}

TEST_F(DevCaTest, CrlVerifiesWithTheRootKeyAndListsARevokedSerial) {
  const std::vector<stir::X509Ptr> chain = issue_chain();
  write_text(path("chain.pem"), stir::chain_to_pem(chain));
  stir::X509Ptr root = file_certificate(ca->root_path());

  auto load_crl = [&] {
    const std::string pem = read_text(ca->crl_path());
    stir::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    return std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)>(
        PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr), X509_CRL_free);
  };
  auto crl_verify = [&] {
    return openssl({"verify", "-extended_crl", "-crl_check", "-CRLfile", ca->crl_path(), "-CAfile",
                    ca->root_path(), "-untrusted", ca->ca_path(), path("chain.pem")});
  };

  auto before = load_crl();
  ASSERT_TRUE(before);
  EXPECT_EQ(X509_CRL_verify(before.get(), X509_get0_pubkey(root.get())), 1);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(before.get()), X509_get_subject_name(root.get())), 0);
  EXPECT_EQ(revoked_count(before.get()), 0);
  const ProcessResult good = crl_verify();
  EXPECT_EQ(good.exit_code, 0) << good.describe();
  // Our verifier reads the same indirect CRL (issued by the root for the
  // STI-CA's certificates) as openssl does.
  auto validate = [&] {
    stir::vs::VerifierConfig config;
    config.trust_anchor_files = {ca->root_path()};
    config.crl_files = {ca->crl_path()};
    std::vector<stir::X509Ptr> served;
    for (const auto& cert : chain) served.emplace_back(X509_dup(cert.get()));
    return stir::vs::ChainValidator(config).validate(served, std::time(nullptr));
  };
  const stir::vs::ChainVerdict valid = validate();
  EXPECT_TRUE(valid.ok) << valid.detail;

  stir::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(chain[0].get()), nullptr));
  char* hex = BN_bn2hex(serial.get());
  const std::string serial_hex = hex;
  OPENSSL_free(hex);
  const RevokeResult revoked = ca->revoke(serial_hex);
  EXPECT_FALSE(revoked.already_revoked);
  EXPECT_TRUE(ca->revoke(serial_hex).already_revoked);

  auto after = load_crl();
  ASSERT_TRUE(after);
  EXPECT_EQ(X509_CRL_verify(after.get(), X509_get0_pubkey(root.get())), 1);
  ASSERT_EQ(revoked_count(after.get()), 1);
  const X509_REVOKED* entry = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(after.get()), 0);
  EXPECT_EQ(ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(entry),
                             X509_get0_serialNumber(chain[0].get())),
            0);
  const ProcessResult bad = crl_verify();
  EXPECT_NE(bad.exit_code, 0) << bad.describe();
  EXPECT_NE((bad.out + bad.err).find("certificate revoked"), std::string::npos) << bad.describe();
  const stir::vs::ChainVerdict revoked_verdict = validate();
  EXPECT_FALSE(revoked_verdict.ok);
  EXPECT_EQ(revoked_verdict.reason, "certificate revoked") << revoked_verdict.detail;

  // Re-issuing keeps the entry and raises the CRL number.
  ca->reissue_crl();
  auto reissued = load_crl();
  EXPECT_EQ(revoked_count(reissued.get()), 1);
  std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> n1(
      static_cast<ASN1_INTEGER*>(
          X509_CRL_get_ext_d2i(after.get(), NID_crl_number, nullptr, nullptr)),
      ASN1_INTEGER_free);
  std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> n2(
      static_cast<ASN1_INTEGER*>(
          X509_CRL_get_ext_d2i(reissued.get(), NID_crl_number, nullptr, nullptr)),
      ASN1_INTEGER_free);
  EXPECT_EQ(ASN1_INTEGER_get(n2.get()), ASN1_INTEGER_get(n1.get()) + 1);

  expect_error([&] { ca->revoke("0BADBAD0"); }, ErrorCode::kNotFound,
               "serial 0BADBAD0 was not issued by the test PKI in " + pki_dir);
}

TEST_F(DevCaTest, IssueRefusesCsrsThatBreakTheProfile) {
  const std::vector<std::uint8_t> two_entries{0x30, 0x10, 0xA0, 0x06, 0x16, 0x04, '1', '2', '3',
                                              '4',  0xA0, 0x06, 0x16, 0x04, '5',  '6', '7', '8'};
  expect_error([&] { ca->issue(software_csr("SHAKEN 1234", nullptr)); },
               ErrorCode::kInvalidArgument,
               "the CSR requests no TNAuthList (OID 1.3.6.1.5.5.7.1.26); a SHAKEN certificate "
               "needs the SPC");
  expect_error([&] { ca->issue(software_csr("SHAKEN 9999", &kTnAuthList1234)); },
               ErrorCode::kInvalidArgument,
               "the CSR's CN 'SHAKEN 9999' is not 'SHAKEN 1234' (its TNAuthList SPC is 1234)");
  expect_error([&] { ca->issue(software_csr("SHAKEN 1234", &two_entries)); },
               ErrorCode::kInvalidArgument,
               "the CSR's TNAuthList must hold exactly one SPC and no TNs or ranges");
  expect_error([&] { ca->issue(tampered(software_csr("SHAKEN 1234", &kTnAuthList1234))); },
               ErrorCode::kInvalidArgument, "the CSR's signature does not verify");
  expect_error([&] { ca->issue(token_csr(), 0); }, ErrorCode::kInvalidArgument,
               "--days 0 must be at least 1 and end before the STI-CA certificate does (" +
                   [&] {
                     stir::X509Ptr c = file_certificate(ca->ca_path());
                     std::tm tm{};
                     ASN1_TIME_to_tm(X509_get0_notAfter(c.get()), &tm);
                     char text[32];
                     std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
                     return std::string(text);
                   }() +
                   ")");
  try {
    ca->issue("not a CSR");
    ADD_FAILURE() << "garbage was accepted as a CSR";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMalformed);
  }
  // A well-formed software CSR is fine: the profile, not the key's home, decides.
  EXPECT_NO_THROW(ca->issue(software_csr("SHAKEN 1234", &kTnAuthList1234)));
}

TEST_F(DevCaTest, CommandsBeforeInitSayWhatToDo) {
  DevCa empty(*keys, dir.path() + "/empty");
  expect_error([&] { empty.issue(token_csr()); }, ErrorCode::kNotFound,
               "no test PKI in " + dir.path() + "/empty; run `sti-dev-ca init --dir " + dir.path() +
                   "/empty` first");
}

}  // namespace
}  // namespace dev_pki
