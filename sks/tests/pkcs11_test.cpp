// The PKCS#11 layer against a real SoftHSM2 token.
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "sks/pkcs11/attributes.h"
#include "softhsm_token.h"
#include "stir/error.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verify.h"

namespace sks::testing {
namespace {

using stir::ErrorCode;

stir::PassportHeader test_header() {
  stir::PassportHeader header;
  header.x5u = "https://cr.example.net/sks-test.pem";
  return header;
}

stir::ShakenClaims test_claims(int n = 0) {
  stir::ShakenClaims claims;
  claims.attest = "A";
  claims.orig_tn = "12155550121";
  claims.dest_tn = {"1215555" + std::to_string(1000 + n % 9000)};
  claims.iat = 1443208345 + n;
  claims.origid = "123e4567-e89b-12d3-a456-426655440000";
  return claims;
}

// Verifies an Identity header value against the token's exported public key.
stir::VerifyResult verify_with(const std::string& public_pem, const std::string& identity) {
  const auto key = stir::load_public_key_pem(public_pem);
  return stir::verify_identity(identity, key.get(), stir::VerifyOptions{});
}

std::string sign_identity(const p11::TokenKey& key, int n = 0) {
  const auto header = test_header();
  return stir::compose_identity_header(stir::sign_passport(header, test_claims(n), key),
                                       header.x5u);
}

CK_OBJECT_HANDLE private_handle(p11::SessionPool& pool, const std::string& label) {
  auto lease = pool.acquire();
  CK_FUNCTION_LIST* api = pool.token().api();
  p11::AttributeTemplate query;
  query.add_ulong(CKA_CLASS, CKO_PRIVATE_KEY).add_string(CKA_LABEL, label);
  EXPECT_EQ(api->C_FindObjectsInit(lease.handle(), query.data(), query.size()), CKR_OK);
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  CK_ULONG count = 0;
  EXPECT_EQ(api->C_FindObjects(lease.handle(), &handle, 1, &count), CKR_OK);
  EXPECT_EQ(api->C_FindObjectsFinal(lease.handle()), CKR_OK);
  EXPECT_EQ(count, 1u);
  return handle;
}

// The module the suite runs against is the one it says: SoftHSM2 itself, or
// (under the p11kit. prefix) p11-kit's client module talking to a p11-kit
// server, which only then can be seen holding the connection.
TEST_F(SoftHsmTest, RunsAgainstTheModuleChosen) {
  CK_INFO info{};
  ASSERT_EQ(module->api()->C_GetInfo(&info), CKR_OK);
  const std::string description(reinterpret_cast<const char*>(info.libraryDescription),
                                sizeof info.libraryDescription);
  const std::string manufacturer(reinterpret_cast<const char*>(info.manufacturerID),
                                 sizeof info.manufacturerID);
  RecordProperty("module", manufacturer + " / " + description);
  if (remote()) {
    EXPECT_EQ(module->path(), remote_client_module());
    EXPECT_EQ(manufacturer.find("SoftHSM"), std::string::npos) << manufacturer;
  } else {
    EXPECT_EQ(module->path(), STIR_SOFTHSM_MODULE);
    EXPECT_NE(manufacturer.find("SoftHSM"), std::string::npos) << manufacturer;
  }
  std::printf("module: %s / %s\n", manufacturer.c_str(), description.c_str());
}

TEST_F(SoftHsmTest, GeneratesP256KeyThatCannotLeaveTheToken) {
  const auto info = keys->generate("shaken-2026-11");
  EXPECT_EQ(info.label, "shaken-2026-11");
  EXPECT_EQ(info.curve, "P-256");
  EXPECT_EQ(info.id.size(), 16u);
  EXPECT_TRUE(info.sensitive);
  EXPECT_FALSE(info.extractable);
  EXPECT_TRUE(info.has_public_key);

  const CK_OBJECT_HANDLE key = private_handle(*pool, "shaken-2026-11");
  auto lease = pool->acquire();
  CK_FUNCTION_LIST* api = token->api();

  // The private value cannot be read: the token refuses, and says why.
  CK_ATTRIBUTE value{CKA_VALUE, nullptr, 0};
  EXPECT_EQ(api->C_GetAttributeValue(lease.handle(), key, &value, 1), CKR_ATTRIBUTE_SENSITIVE);
  EXPECT_EQ(value.ulValueLen, CK_UNAVAILABLE_INFORMATION);

  CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, always_sensitive = CK_FALSE,
           never_extractable = CK_FALSE, is_private = CK_FALSE, sign = CK_FALSE;
  CK_ATTRIBUTE flags[] = {{CKA_SENSITIVE, &sensitive, sizeof sensitive},
                          {CKA_EXTRACTABLE, &extractable, sizeof extractable},
                          {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof always_sensitive},
                          {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof never_extractable},
                          {CKA_PRIVATE, &is_private, sizeof is_private},
                          {CKA_SIGN, &sign, sizeof sign}};
  ASSERT_EQ(api->C_GetAttributeValue(lease.handle(), key, flags, 6), CKR_OK);
  EXPECT_EQ(sensitive, CK_TRUE);
  EXPECT_EQ(extractable, CK_FALSE);
  EXPECT_EQ(always_sensitive, CK_TRUE);
  EXPECT_EQ(never_extractable, CK_TRUE);
  EXPECT_EQ(is_private, CK_TRUE);
  EXPECT_EQ(sign, CK_TRUE);

  // Making it extractable afterwards is refused too.
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE make_extractable{CKA_EXTRACTABLE, &yes, sizeof yes};
  EXPECT_NE(api->C_SetAttributeValue(lease.handle(), key, &make_extractable, 1), CKR_OK);
}

TEST_F(SoftHsmTest, SignVerifyRoundTrip) {
  keys->generate("k1");
  const std::string pem = keys->public_key_pem("k1");
  EXPECT_EQ(pem.rfind("-----BEGIN PUBLIC KEY-----", 0), 0u);
  const auto identity = sign_identity(*keys->signing_key("k1"));
  const auto result = verify_with(pem, identity);
  EXPECT_TRUE(result.valid) << result.detail;

  // Another key's public half does not verify it.
  keys->generate("k2");
  const auto other = verify_with(keys->public_key_pem("k2"), identity);
  EXPECT_FALSE(other.valid);
  EXPECT_EQ(other.reason, stir::SipReason::kInvalidIdentityHeader);
}

TEST_F(SoftHsmTest, PublicKeyMatchesAcrossSpkiAndPem) {
  keys->generate("k1");
  const auto der = keys->public_key_der("k1");
  const auto from_pem = stir::load_public_key_pem(keys->public_key_pem("k1"));
  unsigned char* again = nullptr;
  const int length = i2d_PUBKEY(from_pem.get(), &again);
  ASSERT_GT(length, 0);
  EXPECT_EQ(std::vector<std::uint8_t>(again, again + length), der);
  OPENSSL_free(again);
  EXPECT_EQ(der.size(), 91u);  // SubjectPublicKeyInfo of an uncompressed P-256 point
}

TEST_F(SoftHsmTest, EightThreadsSignTwoThousandEachAndAllVerify) {
  keys->generate("busy");
  const auto key = keys->signing_key("busy");
  const auto public_key = stir::load_public_key_pem(keys->public_key_pem("busy"));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<std::string>> tokens(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      tokens[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) {
        try {
          tokens[t].push_back(sign_identity(*key, t * kPerThread + i));
        } catch (const std::exception&) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  int verified = 0;
  for (const auto& per_thread : tokens) {
    for (const auto& identity : per_thread) {
      verified += stir::verify_identity(identity, public_key.get(), {}).valid ? 1 : 0;
    }
  }
  EXPECT_EQ(verified, kThreads * kPerThread);
  EXPECT_EQ(pool->replaced(), 0u);
}

TEST_F(SoftHsmTest, SessionClosedUnderThePoolIsReplacedAndTheSignSucceeds) {
  open(1);  // one session, so the sign below must use the one we close
  keys->generate("k1");
  const auto key = keys->signing_key("k1");
  {
    auto lease = pool->acquire();
    ASSERT_EQ(token->api()->C_CloseSession(lease.handle()), CKR_OK);
  }
  const auto identity = sign_identity(*key);
  EXPECT_EQ(pool->replaced(), 1u);
  EXPECT_TRUE(verify_with(keys->public_key_pem("k1"), identity).valid);
  // The anchor session kept the login: the new session signs without C_Login.
  EXPECT_EQ(token->login_attempts(), 1);
}

TEST_F(SoftHsmTest, WrongPinFailsCleanlyAfterOneAttempt) {
  keys->generate("k1");
  keys.reset();
  pool.reset();
  token.reset();
  // Log out (all sessions of this application are gone), then try a wrong PIN.
  p11::Token fresh(*module, {kTokenLabel, {}});
  try {
    fresh.login(Secret("not-the-pin"));
    FAIL() << "a wrong PIN logged in";
  } catch (const p11::Pkcs11Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPinIncorrect);
    EXPECT_EQ(e.function(), "C_Login");
    EXPECT_EQ(e.rv_name(), "CKR_PIN_INCORRECT");
    EXPECT_EQ(std::string(e.what()).find("not-the-pin"), std::string::npos);
  }
  EXPECT_EQ(fresh.login_attempts(), 1);
  // Nothing is logged in: the session cannot see private objects.
  p11::SessionPool unlogged(fresh, 1);
  p11::KeyStore unlogged_keys(unlogged);
  EXPECT_TRUE(unlogged_keys.list().empty());
  // The right PIN still works: one failure did not lock the token.
  fresh.login(kTestUserPin);
  EXPECT_EQ(unlogged_keys.list().size(), 1u);
}

TEST_F(SoftHsmTest, DuplicateLabelIsRefusedAndChangesNothing) {
  const auto first = keys->generate("k1");
  try {
    keys->generate("k1");
    FAIL() << "a second key with the same label was made";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
  }
  const auto all = keys->list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, first.id);
}

TEST_F(SoftHsmTest, InvalidLabelsAreRefused) {
  for (const std::string& label :
       std::vector<std::string>{"", "has space", "slash/", std::string(65, 'a'), "ünï"}) {
    try {
      keys->generate(label);
      FAIL() << "label '" << label << "' was accepted";
    } catch (const stir::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << label;
    }
  }
  EXPECT_TRUE(keys->list().empty());
}

TEST_F(SoftHsmTest, ListFindAndDestroy) {
  keys->generate("b-key");
  keys->generate("a-key");
  const auto all = keys->list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].label, "a-key");
  EXPECT_EQ(all[1].label, "b-key");
  EXPECT_NE(all[0].id, all[1].id);
  ASSERT_TRUE(keys->find("a-key"));
  EXPECT_FALSE(keys->find("missing"));

  const auto signer = keys->signing_key("a-key");
  keys->destroy("a-key");
  EXPECT_FALSE(keys->find("a-key"));
  ASSERT_EQ(keys->list().size(), 1u);
  // The public object went with it.
  auto lease = pool->acquire();
  p11::AttributeTemplate query;
  query.add_ulong(CKA_CLASS, CKO_PUBLIC_KEY).add_string(CKA_LABEL, "a-key");
  CK_FUNCTION_LIST* api = token->api();
  ASSERT_EQ(api->C_FindObjectsInit(lease.handle(), query.data(), query.size()), CKR_OK);
  CK_OBJECT_HANDLE handle;
  CK_ULONG count = 1;
  ASSERT_EQ(api->C_FindObjects(lease.handle(), &handle, 1, &count), CKR_OK);
  api->C_FindObjectsFinal(lease.handle());
  EXPECT_EQ(count, 0u);

  try {
    keys->destroy("a-key");
    FAIL() << "destroyed a key twice";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  // A signer still held for a destroyed key fails cleanly, it never signs.
  try {
    sign_identity(*signer);
    FAIL() << "a destroyed key signed";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(SoftHsmTest, TokenIsFoundByLabelOrSerialNeverBySlot) {
  const auto description = token->description();
  EXPECT_EQ(description.label, kTokenLabel);
  EXPECT_FALSE(description.serial.empty());
  auto by_serial = p11::find_token(*module, {{}, description.serial});
  ASSERT_TRUE(by_serial);
  EXPECT_EQ(by_serial->label, kTokenLabel);
  EXPECT_FALSE(p11::find_token(*module, {"no-such-token", {}}));
  EXPECT_FALSE(p11::find_token(*module, {kTokenLabel, "0000000000000000"}));
  try {
    p11::Token missing(*module, {"no-such-token", {}});
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(SoftHsmTest, InitTokenRefusesAnExistingLabel) {
  try {
    p11::init_token(*module, kTokenLabel, kTestSoPin, kTestUserPin);
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
  }
}

TEST_F(SoftHsmTest, KeysAreFoundByLabelOrById) {
  const auto a = keys->generate("a-key");
  keys->generate("b-key");
  const auto by_id = keys->find_by_id(a.id);
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->label, "a-key");
  EXPECT_FALSE(keys->find_by_id(std::vector<std::uint8_t>(16, 0)));
}

TEST_F(SoftHsmTest, EcPointIsReadAsDerOrBare) {
  keys->generate("k1");
  // What SoftHSM stores: a DER OCTET STRING around the point.
  auto lease = pool->acquire();
  p11::AttributeTemplate query;
  query.add_ulong(CKA_CLASS, CKO_PUBLIC_KEY).add_string(CKA_LABEL, "k1");
  CK_FUNCTION_LIST* api = token->api();
  ASSERT_EQ(api->C_FindObjectsInit(lease.handle(), query.data(), query.size()), CKR_OK);
  CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
  CK_ULONG count = 0;
  ASSERT_EQ(api->C_FindObjects(lease.handle(), &public_key, 1, &count), CKR_OK);
  api->C_FindObjectsFinal(lease.handle());
  ASSERT_EQ(count, 1u);
  std::vector<std::uint8_t> der(128);
  CK_ATTRIBUTE point{CKA_EC_POINT, der.data(), der.size()};
  ASSERT_EQ(api->C_GetAttributeValue(lease.handle(), public_key, &point, 1), CKR_OK);
  der.resize(point.ulValueLen);
  ASSERT_EQ(der.size(), 67u);
  ASSERT_EQ(der[0], 0x04);  // OCTET STRING
  ASSERT_EQ(der[1], 0x41);  // of 65 bytes
  const auto from_der = p11::KeyStore::ec_point_from_attribute(der);
  const std::vector<std::uint8_t> bare(der.begin() + 2, der.end());
  EXPECT_EQ(from_der, bare);
  // What some modules return: the bare point.
  EXPECT_EQ(p11::KeyStore::ec_point_from_attribute(bare), bare);
  // Anything else is refused.
  for (const auto& bad : {std::vector<std::uint8_t>{}, std::vector<std::uint8_t>(65, 0x02),
                          std::vector<std::uint8_t>{0x04, 0x03, 0x04, 0x01, 0x02},
                          std::vector<std::uint8_t>(der.begin(), der.end() - 1)}) {
    EXPECT_THROW(p11::KeyStore::ec_point_from_attribute(bad), stir::Error);
  }
}

TEST(Pkcs11Module, MissingModuleIsNotFound) {
  try {
    p11::Module module("/nonexistent/libpkcs11.so");
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST(Pkcs11Errors, CarryFunctionAndCkrName) {
  try {
    p11::check(CKR_SESSION_HANDLE_INVALID, "C_Sign", "k1");
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPkcs11);
    EXPECT_STREQ(e.what(), "C_Sign: CKR_SESSION_HANDLE_INVALID (k1)");
  }
  EXPECT_EQ(p11::ckr_name(0x12345), "CKR_0x12345");
}

}  // namespace
}  // namespace sks::testing
