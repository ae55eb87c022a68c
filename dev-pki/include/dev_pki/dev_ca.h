// TEST PKI, NOT FOR PRODUCTION.
//
// A development STI PKI: an "STI-PA Test Root", an "STI-CA Test"
// intermediate signed by it, provider (end-entity) certificates issued from
// CSRs with the ATIS-1000080 profile (PROTOCOL.md section 4), and the
// STI-PA's CRL. Its purpose is to let development and CI run the whole
// certificate flow (CSR from the token, certificate, install, publish,
// verify) without a real STI-CA. Real providers get certificates from an
// approved STI-CA.
//
// The CA keys live in the same token as the signing keys (labels
// kRootKeyLabel and kCaKeyLabel, generated when missing), so no private key
// is ever written to disk. The state folder holds only public data:
//   root.pem   the root certificate (the trust anchor for tests)
//   ca.pem     the STI-CA certificate
//   crl.pem    the STI-PA CRL (also crl.der: what a CRL URL serves)
//   state.json CRL URL, CRL number, issued and revoked serials
// Every write is atomic (write_file_atomic).
//
// The CRL is signed by the root and lists certificates of both CAs, so it
// is an indirect CRL (RFC 5280 5.2.5): its Issuing Distribution Point says
// so and each entry names the certificate's issuer; that is also why a
// provider certificate's CRL Distribution Point carries a cRLIssuer naming
// the root.
//
// Ownership: DevCa borrows the KeyStore, which must outlive it.
// Threads: not thread-safe; one DevCa per process and state folder.
// Errors: stir::Error: kNotFound (init not run, unknown serial),
// kInvalidArgument (a CSR that breaks the profile: the message says how),
// kMalformed (not a CSR), kAlreadyExists (the folder belongs to other token
// keys or another CRL URL), kIo, kCrypto; token errors pass through.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sks/pkcs11/key_store.h"
#include "stir/openssl.h"

namespace dev_pki {

inline constexpr const char* kRootKeyLabel = "dev-sti-pa-root";
inline constexpr const char* kCaKeyLabel = "dev-sti-ca";
inline constexpr const char* kShakenPolicyOid = "2.16.840.1.114569.1.1.3";  // SHAKEN CP 1.3
inline constexpr const char* kDefaultCrlUrl = "https://sti-pa.test.invalid/crl/sti-pa-test.crl";
inline constexpr int kDefaultLeafDays = 365;

struct InitResult {
  bool created_root = false;
  bool created_ca = false;
  bool created_crl = false;
};

struct RevokeResult {
  bool already_revoked = false;
  std::string serial;  // normalised: upper-case hex
};

class DevCa {
 public:
  DevCa(sks::p11::KeyStore& keys, std::string dir);

  // Idempotent: generates missing CA keys in the token, then writes whatever
  // of root.pem, ca.pem, crl.pem and state.json is missing; what exists is
  // checked (it must belong to the token keys and, when `crl_url` is not
  // empty, to that CRL URL) and kept. An empty `crl_url` means
  // kDefaultCrlUrl for a new folder.
  InitResult init(const std::string& crl_url);

  // A provider certificate from a PEM CSR, valid for `days` from now; the
  // result is the PEM chain leaf + STI-CA (what the x5u URL serves). The CSR
  // must verify, hold a P-256 key, a subject of exactly C, O and CN
  // "SHAKEN <SPC>", and a TNAuthList with exactly one SPC. Records the
  // serial in state.json.
  std::string issue(const std::string& csr_pem, int days = kDefaultLeafDays);

  // Adds a serial (hex) issued by this PKI (a provider certificate or the
  // STI-CA's) to the CRL and re-issues it. Revoking twice changes nothing.
  RevokeResult revoke(const std::string& serial_hex);

  // Re-issues the CRL (next CRL number, this update now). Returns its PEM.
  std::string reissue_crl();

  std::string root_path() const { return dir_ + "/root.pem"; }
  std::string ca_path() const { return dir_ + "/ca.pem"; }
  std::string crl_path() const { return dir_ + "/crl.pem"; }
  std::string crl_der_path() const { return dir_ + "/crl.der"; }
  std::string state_path() const { return dir_ + "/state.json"; }

 private:
  struct Revoked {
    std::string serial;
    bool by_root = false;  // issued by the root (the STI-CA certificate), else by the STI-CA
    std::int64_t time = 0;
  };
  struct Issued {
    std::string serial;
    std::string subject;
    std::string not_after;
  };
  struct State {
    std::string crl_url;
    std::int64_t crl_number = 0;
    std::vector<Issued> issued;
    std::vector<Revoked> revoked;
  };

  bool load_state();
  void save_state() const;
  void require_init();
  // Token key + public key for a label, generating the key when missing.
  stir::EvpPkeyPtr ca_public_key(const char* label, bool generate);
  std::string write_crl();

  sks::p11::KeyStore& keys_;
  std::string dir_;
  State state_;
  stir::X509Ptr root_;
  stir::X509Ptr ca_;
};

}  // namespace dev_pki
