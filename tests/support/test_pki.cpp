#include "test_pki.h"

#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "stir/x509.h"

namespace stir::testing {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("test PKI: " + what + ": " + openssl_error_string());
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

void add_tn_auth_list(X509* cert, const std::string& spc) {
  const auto der = tn_auth_list_der(spc);
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(
      OBJ_txt2obj("1.3.6.1.5.5.7.1.26", 1), ASN1_OBJECT_free);
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> value(
      ASN1_OCTET_STRING_new(), ASN1_OCTET_STRING_free);
  ASN1_OCTET_STRING_set(value.get(), der.data(), static_cast<int>(der.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, value.get());
  if (ext == nullptr) fail("TNAuthList");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace

std::string TestCert::certificate_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), certificate.get());
  return bio_text(bio.get());
}

std::string TestCert::private_key_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return bio_text(bio.get());
}

std::string TestCert::public_key_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), X509_get0_pubkey(certificate.get()));
  return bio_text(bio.get());
}

EvpPkeyPtr new_p256_key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EVP_EC_gen");
  return key;
}

TestCert issue(const CertSpec& spec, const TestCert* issuer, const EVP_PKEY* subject_key) {
  TestCert out;
  const EVP_PKEY* public_key = subject_key;
  if (public_key == nullptr) {
    out.key = new_p256_key();
    public_key = out.key.get();
  }
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  std::uint64_t serial = spec.serial;
  if (serial == 0) {
    RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
    serial = (serial >> 1) | (1ULL << 62);  // positive, 63 bits, never 0
  }
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial);
  std::time_t now = std::time(nullptr);
  X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, spec.not_before_offset_s, &now);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, spec.not_after_offset_s, &now);
  X509_set_pubkey(cert.get(), const_cast<EVP_PKEY*>(public_key));

  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add_name = [name](const char* field, const std::string& value) {
    // With its length: a test may put a NUL in a name.
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(value.data()),
                               static_cast<int>(value.size()), -1, 0);
  };
  add_name("C", spec.country);
  add_name("O", spec.organization);
  add_name("CN", spec.common_name);
  X509* issuer_cert = issuer != nullptr ? issuer->certificate.get() : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  add_extension(cert.get(), &ctx, NID_basic_constraints,
                spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert.get(), &ctx, NID_key_usage,
                spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  std::string sans;
  for (const auto& dns : spec.dns_names) sans += (sans.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : spec.ip_addresses) sans += (sans.empty() ? "IP:" : ",IP:") + ip;
  if (!sans.empty()) add_extension(cert.get(), &ctx, NID_subject_alt_name, sans);
  std::string eku;
  if (spec.tls_server) eku = "serverAuth";
  if (spec.tls_client) eku += eku.empty() ? "clientAuth" : ",clientAuth";
  if (!eku.empty()) add_extension(cert.get(), &ctx, NID_ext_key_usage, eku);
  if (!spec.crl_url.empty()) {
    add_extension(cert.get(), &ctx, NID_crl_distribution_points, "URI:" + spec.crl_url);
  }
  if (!spec.policy_oid.empty()) {
    CERTIFICATEPOLICIES* policies = CERTIFICATEPOLICIES_new();
    POLICYINFO* info = POLICYINFO_new();
    info->policyid = OBJ_txt2obj(spec.policy_oid.c_str(), 1);
    sk_POLICYINFO_push(policies, info);
    X509_add1_ext_i2d(cert.get(), NID_certificate_policies, policies, 0, X509V3_ADD_DEFAULT);
    CERTIFICATEPOLICIES_free(policies);
  }
  if (spec.spc) add_tn_auth_list(cert.get(), *spec.spc);

  EVP_PKEY* signing_key = issuer != nullptr ? issuer->key.get() : out.key.get();
  if (signing_key == nullptr) fail("a self-signed certificate needs its own private key");
  if (X509_sign(cert.get(), signing_key, EVP_sha256()) <= 0) fail("X509_sign");
  out.certificate = std::move(cert);
  return out;
}

std::string make_crl_pem(const TestCert& issuer, const std::vector<std::uint64_t>& revoked) {
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(X509_CRL_new(), X509_CRL_free);
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.certificate.get()));
  const std::time_t now = std::time(nullptr);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> last(ASN1_TIME_adj(nullptr, now, 0, -60),
                                                             ASN1_TIME_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> next(ASN1_TIME_adj(nullptr, now, 1, 0),
                                                             ASN1_TIME_free);
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (std::uint64_t serial : revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    ASN1_INTEGER* number = ASN1_INTEGER_new();
    ASN1_INTEGER_set_uint64(number, serial);
    X509_REVOKED_set_serialNumber(entry, number);
    X509_REVOKED_set_revocationDate(entry, last.get());
    ASN1_INTEGER_free(number);
    X509_CRL_add0_revoked(crl.get(), entry);
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), issuer.key.get(), EVP_sha256()) <= 0) fail("X509_CRL_sign");
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl.get());
  return bio_text(bio.get());
}

std::string write_file(const std::string& path, const std::string& content, unsigned mode) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  ::chmod(path.c_str(), mode);
  return path;
}

std::string ShakenPki::chain_pem() const { return leaf.certificate_pem() + ca.certificate_pem(); }

ShakenPki make_shaken_pki(const std::string& spc) {
  ShakenPki pki;
  CertSpec root;
  root.common_name = "Test STI-PA Root";
  root.ca = true;
  root.not_after_offset_s = 365 * 86400;
  pki.root = issue(root, nullptr);
  CertSpec ca;
  ca.common_name = "Test STI-CA";
  ca.ca = true;
  ca.not_after_offset_s = 365 * 86400;
  pki.ca = issue(ca, &pki.root);
  CertSpec leaf;
  leaf.common_name = "SHAKEN " + spc;
  leaf.spc = spc;
  leaf.policy_oid = "2.16.840.1.114569.1.1.3";
  leaf.crl_url = "https://127.0.0.1:8443/crl/sti-pa.crl";
  pki.leaf = issue(leaf, &pki.ca);
  return pki;
}

TlsPki make_tls_pki(const std::string& client_name) {
  TlsPki pki;
  CertSpec server_ca;
  server_ca.common_name = "Test TLS Server CA";
  server_ca.ca = true;
  pki.server_ca = issue(server_ca, nullptr);
  CertSpec server;
  server.common_name = "localhost";
  server.dns_names = {"localhost"};
  server.ip_addresses = {"127.0.0.1", "::1"};
  server.tls_server = true;
  pki.server = issue(server, &pki.server_ca);
  CertSpec client_ca;
  client_ca.common_name = "Test TLS Client CA";
  client_ca.ca = true;
  pki.client_ca = issue(client_ca, nullptr);
  CertSpec client;
  client.common_name = client_name;
  client.dns_names = {client_name};
  client.tls_client = true;
  pki.client = issue(client, &pki.client_ca);
  return pki;
}

void write_tls_pki(const TlsPki& tls, const std::string& folder) {
  write_file(folder + "server.pem", tls.server.certificate_pem());
  write_file(folder + "server.key", tls.server.private_key_pem());
  write_file(folder + "server-ca.pem", tls.server_ca.certificate_pem());
  write_file(folder + "clients-ca.pem", tls.client_ca.certificate_pem());
  write_file(folder + "client.pem", tls.client.certificate_pem());
  write_file(folder + "client.key", tls.client.private_key_pem());
}

}  // namespace stir::testing
