// Test fixture: a fresh SoftHSM2 token in a temporary folder for every
// test, logged in, with a session pool and key store over it. The PINs are
// throwaway test PINs.
//
// A second PKCS#11 implementation: with STIR_TEST_P11KIT_CLIENT set to the
// path of p11-kit's client module (p11-kit-client.so), the token is served
// by a `p11-kit server` of the test's own (one per test, on a Unix socket in
// the test's folder) and the fixture's module is the client module, as with
// a network HSM's client library. The token is initialised through SoftHSM2
// directly first (the server exports an existing token only). ctest runs
// the PKCS#11 layer's tests both ways (sks/tests/CMakeLists.txt).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "process.h"
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
      if (const std::string client = remote_client_module(); !client.empty()) {
        {
          const p11::Module softhsm(STIR_SOFTHSM_MODULE);
          p11::init_token(softhsm, kTokenLabel, kTestSoPin, kTestUserPin);
        }  // finalised: from here only the server opens the token files
        start_token_server();
        module = std::make_unique<p11::Module>(client);
      } else {
        module = std::make_unique<p11::Module>(STIR_SOFTHSM_MODULE);
        p11::init_token(*module, kTokenLabel, kTestSoPin, kTestUserPin);
      }
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
    module.reset();  // closes the connection: the server's child for it exits
    token_server.reset();
  }

  // The client module's path when the tests run against p11-kit's client
  // module, else "".
  static std::string remote_client_module() {
    const char* path = std::getenv("STIR_TEST_P11KIT_CLIENT");
    return path == nullptr ? "" : path;
  }
  bool remote() const { return token_server != nullptr; }

  // `p11-kit server` owning the token; returns once it printed its address
  // (it listens by then), with P11_KIT_SERVER_ADDRESS set for the client.
  void start_token_server() {
    const std::string socket = dir.path() + "/p11-kit.sock";
    token_server = std::make_unique<stir::testing::BackgroundProcess>(
        std::vector<std::string>{"p11-kit", "server", "-f", "-n", socket, "--provider",
                                 STIR_SOFTHSM_MODULE, std::string("pkcs11:token=") + kTokenLabel},
        dir.path() + "/p11-kit.log");
    const auto line = token_server->read_line(30000);
    const std::string address = "P11_KIT_SERVER_ADDRESS=unix:path=" + socket;
    if (!line || line->find(address) == std::string::npos) {
      throw std::runtime_error("p11-kit server did not start: " + line.value_or("no output") +
                               "\n" + stir::testing::read_file(dir.path() + "/p11-kit.log"));
    }
    ::setenv("P11_KIT_SERVER_ADDRESS", ("unix:path=" + socket).c_str(), 1);
  }

  TempDir dir;
  // Remote mode only; declared before the module so it outlives it.
  std::unique_ptr<stir::testing::BackgroundProcess> token_server;
  std::unique_ptr<p11::Module> module;
  std::unique_ptr<p11::Token> token;
  std::unique_ptr<p11::SessionPool> pool;
  std::unique_ptr<p11::KeyStore> keys;
};

}  // namespace sks::testing
