// Certificate chain and CRL loading (stir/x509.h, stir/verifier/chain.h).
// Input: "<PEM chain>\n#crl\n<CRLs, PEM or DER>". The chain is parsed, its
// links, TNAuthList and CRL distribution point read, and it is validated
// against a fixed test root (the one the seed chains in
// fuzz/corpus/chain_fuzz/ were issued by), without and with CRL checking.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "stir/error.h"
#include "stir/verifier/chain.h"
#include "stir/x509.h"

namespace {

// Public certificate of the seed corpus' throwaway root (its key is gone).
constexpr const char* kSeedRoot = R"(-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIBATAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJVUzEXMBUG
A1UECgwOc2tzIGZ1enogc2VlZHMxGTAXBgNVBAMMEEZ1enogU1RJLVBBIFJvb3Qw
HhcNMjYxMjAxMjIzODAxWhcNMzYxMTI4MjIzODAxWjBBMQswCQYDVQQGEwJVUzEX
MBUGA1UECgwOc2tzIGZ1enogc2VlZHMxGTAXBgNVBAMMEEZ1enogU1RJLVBBIFJv
b3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATcKktkaPTyEtrX2nwtEjf+/o3p
lWIPH4DIwpjwrUzc3Lv4BMvu3pXE2Cob5ZDIjVEjkl7HfEFShrmwdi/s4EmBo0Iw
QDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUBKOr
dbQzfzuCxXVimHi8TqXNToYwCgYIKoZIzj0EAwIDSAAwRQIhAPDjvS/nGjQQttdd
7Mo8RW/y8F06wr8WvYj+RhbweXPRAiACtvS7nKWabA0nFYQGA+n8y3DKvCY5LFjD
gXSL7EsrDg==
-----END CERTIFICATE-----
)";
// Inside every seed certificate's validity.
constexpr std::int64_t kAt = 1796251082;

struct Validators {
  stir::fuzz::ScratchDir dir;
  std::unique_ptr<stir::vs::ChainValidator> plain, with_crls;

  Validators() {
    stir::vs::VerifierConfig config;
    config.trust_anchor_files = {dir.write("root.pem", kSeedRoot)};
    plain = std::make_unique<stir::vs::ChainValidator>(config);
    config.fetch_crl_from_dp = true;  // CRL checking on, with the input's CRLs only
    config.crl_check_all = true;
    with_crls = std::make_unique<stir::vs::ChainValidator>(config);
  }
};

const Validators& validators() {
  static const Validators instance;
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [pem, crl_text] = stir::fuzz::split_once(stir::fuzz::as_text(data, size), "\n#crl\n");
  std::vector<stir::X509Ptr> chain;
  try {
    chain = stir::parse_pem_chain(pem);
  } catch (const stir::Error&) {
    return 0;
  }
  try {
    stir::check_chain_links(chain);
  } catch (const stir::Error&) {
  }
  for (const stir::X509Ptr& certificate : chain) {
    try {
      (void)stir::tn_auth_list_spc(certificate.get());
    } catch (const stir::Error&) {
    }
    (void)stir::vs::crl_distribution_point(certificate.get());
    (void)stir::iso_time(X509_get0_notAfter(certificate.get()));
  }
  (void)stir::chain_to_pem(chain);

  std::vector<stir::vs::X509CrlPtr> crls;
  if (!crl_text.empty()) {
    try {
      crls = stir::vs::parse_crls(crl_text);
    } catch (const stir::Error&) {
    }
  }
  std::vector<X509_CRL*> extra;
  for (const auto& crl : crls) {
    extra.push_back(crl.get());
    (void)stir::vs::asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl.get()));
  }
  const stir::vs::ChainVerdict plain = validators().plain->validate(chain, kAt);
  if (plain.ok && plain.valid_from > plain.valid_until) {
    stir::fuzz::property_failed("validity interval is empty");
  }
  (void)validators().with_crls->validate(chain, kAt, extra);
  return 0;
}
