// Test fixture: a fresh SoftHSM2 token in a temporary folder for every
// test, logged in, with a session pool and key store over it. The PINs are
// throwaway test PINs.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "scratch_token.h"
#include "sks/pkcs11/key_store.h"
#include "sks/pkcs11/module.h"
#include "sks/pkcs11/session_pool.h"
#include "sks/pkcs11/token.h"
#include "sks/secret.h"
#include "test_files.h"

namespace sks::testing {

using stir::testing::TempDir;

class SoftHsmTest : public ::testing::Test {
 protected:
  static constexpr const char* kTokenLabel = "sks-test";

  void SetUp() override { open(0); }

  // (Re)opens everything with a pool of `sessions` sessions.
  void open(std::size_t sessions) {
    keys.reset();
    pool.reset();
    token.reset();
    if (!module) {
      write_softhsm_conf(dir.path());
      module = std::make_unique<p11::Module>(STIR_SOFTHSM_MODULE);
      p11::init_token(*module, kTokenLabel, kTestSoPin, kTestUserPin);
    }
    token = std::make_unique<p11::Token>(*module, p11::TokenSelector{kTokenLabel, {}});
    token->login(kTestUserPin);
    pool = std::make_unique<p11::SessionPool>(*token, sessions);
    keys = std::make_unique<p11::KeyStore>(*pool);
  }

  void TearDown() override {
    keys.reset();
    pool.reset();
    token.reset();
    module.reset();
  }

  TempDir dir;
  std::unique_ptr<p11::Module> module;
  std::unique_ptr<p11::Token> token;
  std::unique_ptr<p11::SessionPool> pool;
  std::unique_ptr<p11::KeyStore> keys;
};

}  // namespace sks::testing
