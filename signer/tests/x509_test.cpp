// PEM chains, their links, and the TNAuthList SPC, on certificates made at
// test time and on the public libstirshaken vector.
#include "stir/x509.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "stir/error.h"
#include "test_pki.h"

namespace stir {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(X509Chain, ParsesAndChecksAGoodChain) {
  const auto pki = testing::make_shaken_pki("1234");
  const auto chain = parse_pem_chain(pki.chain_pem());
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_NO_THROW(check_chain_links(chain));
  EXPECT_EQ(chain_to_pem(chain), pki.chain_pem());
  EXPECT_TRUE(same_public_key(X509_get0_pubkey(chain[0].get()),
                              X509_get0_pubkey(pki.leaf.certificate.get())));
  EXPECT_FALSE(same_public_key(X509_get0_pubkey(chain[0].get()), X509_get0_pubkey(chain[1].get())));
}

TEST(X509Chain, RefusesWrongOrderForeignIssuerAndNonCertificates) {
  const auto pki = testing::make_shaken_pki("1234");
  const auto other = testing::make_shaken_pki("5678");
  auto expect_invalid = [](const std::string& pem, const std::string& needle) {
    try {
      check_chain_links(parse_pem_chain(pem));
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_invalid(pki.ca.certificate_pem() + pki.leaf.certificate_pem(), "certificate 0");
  expect_invalid(pki.leaf.certificate_pem() + other.ca.certificate_pem(), "certificate 0");

  for (const std::string& bad :
       {std::string(""), std::string("hello"), pki.leaf.private_key_pem(),
        pki.chain_pem() + pki.leaf.private_key_pem(),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}) {
    try {
      parse_pem_chain(bad);
      ADD_FAILURE() << "parsed: " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kMalformed);
    }
  }
}

TEST(TnAuthList, EncodesAndReadsTheSpc) {
  const auto der = tn_auth_list_der("6628");
  EXPECT_EQ(der,
            (std::vector<std::uint8_t>{0x30, 0x08, 0xA0, 0x06, 0x16, 0x04, '6', '6', '2', '8'}));
  const auto pki = testing::make_shaken_pki("1234");
  EXPECT_EQ(tn_auth_list_spc(pki.leaf.certificate.get()), "1234");
  EXPECT_EQ(tn_auth_list_spc(pki.ca.certificate.get()), std::nullopt);
  for (const char* bad : {"", "12a4", "12 4", "12345678901234567"}) {
    EXPECT_THROW(tn_auth_list_der(bad), Error) << bad;
  }
}

TEST(TnAuthList, LibstirshakenCertificateHoldsNoSpc) {
  const std::string dir = STIR_TESTVECTORS_DIR;
  const std::string pem = read(dir + "/libstirshaken/sp.pem");
  ASSERT_FALSE(pem.empty()) << "missing test vectors in " << dir;
  const auto chain = parse_pem_chain(pem);
  // Its TNAuthList holds a URL, not an SPC: either no SPC or a parse error.
  try {
    EXPECT_EQ(tn_auth_list_spc(chain[0].get()), std::nullopt);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMalformed);
  }
  const auto ca = parse_pem_chain(read(dir + "/libstirshaken/ca.pem"));
  std::vector<X509Ptr> both;
  both.push_back(std::move(const_cast<X509Ptr&>(chain[0])));
  both.push_back(std::move(const_cast<X509Ptr&>(ca[0])));
  EXPECT_NO_THROW(check_chain_links(both));
}

}  // namespace
}  // namespace stir
