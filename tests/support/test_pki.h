// A throwaway PKI for tests, made in memory at test time with software keys:
// STI-PA style roots, STI-CA intermediates, SHAKEN end-entity certificates
// with a TNAuthList, TLS server and client certificates, CRLs. Nothing here
// is for production and nothing is committed: every key is new per run.
//
// Threads: no shared state. Errors: std::runtime_error (a test set-up bug).
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stir/openssl.h"

namespace stir::testing {

struct CertSpec {
  std::string common_name = "Test";
  std::string organization = "sks tests";
  std::string country = "US";
  bool ca = false;
  std::optional<std::string> spc;            // TNAuthList with this SPC (SHAKEN end-entity)
  std::vector<std::string> dns_names;        // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;     // subjectAltName IP entries ("127.0.0.1")
  bool tls_server = false;                   // extendedKeyUsage serverAuth
  bool tls_client = false;                   // extendedKeyUsage clientAuth
  std::string crl_url;                       // CRL Distribution Point
  std::string policy_oid;                    // certificatePolicies, e.g. 2.16.840.1.114569.1.1.3
  std::int64_t not_before_offset_s = -3600;  // relative to now
  std::int64_t not_after_offset_s = 30 * 86400;
  std::uint64_t serial = 0;  // 0 = random 64 bits
};

struct TestCert {
  X509Ptr certificate;
  EvpPkeyPtr key;  // private key (software, test only)

  std::string certificate_pem() const;
  std::string private_key_pem() const;  // PKCS#8
  std::string public_key_pem() const;
};

// A new P-256 key pair.
EvpPkeyPtr new_p256_key();

// Issues a certificate for `spec`. `issuer` null means self-signed. With
// `subject_key` given (a public key), the certificate is for that key and
// TestCert::key stays empty.
TestCert issue(const CertSpec& spec, const TestCert* issuer, const EVP_PKEY* subject_key = nullptr);

// A CRL by `issuer` revoking `revoked_serials`; next update in a day.
std::string make_crl_pem(const TestCert& issuer, const std::vector<std::uint64_t>& revoked_serials);

// Writes a file, creating folders; returns the path.
std::string write_file(const std::string& path, const std::string& content, unsigned mode = 0600);

// A complete SHAKEN test PKI: root (trust anchor), intermediate CA, a
// provider end-entity certificate with an SPC, plus TLS material for
// servers on 127.0.0.1 and a client CA with one client.
struct ShakenPki {
  TestCert root;
  TestCert ca;
  TestCert leaf;  // SHAKEN <spc>, TNAuthList spc

  // leaf + ca, PEM, leaf first (what an x5u URL serves)
  std::string chain_pem() const;
};
ShakenPki make_shaken_pki(const std::string& spc = "1234");

struct TlsPki {
  TestCert server_ca;
  TestCert server;  // CN localhost, SAN DNS localhost, IP 127.0.0.1 and ::1
  TestCert client_ca;
  TestCert client;  // CN and SAN DNS from the argument
};
TlsPki make_tls_pki(const std::string& client_name = "sbc1.example.net");
// Writes `folder`/server.pem, server.key, server-ca.pem, clients-ca.pem,
// client.pem and client.key (0600); `folder` ends with '/'.
void write_tls_pki(const TlsPki& tls, const std::string& folder);

}  // namespace stir::testing
