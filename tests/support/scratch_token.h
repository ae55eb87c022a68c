// A throwaway SoftHSM2 token for benchmarks and tests: a new temporary
// folder holds its token store, SOFTHSM2_CONF points at it for the rest of
// the process, and the PINs are throwaway ones. No GoogleTest here, so the
// benchmarks (built without the tests too) share it with softhsm_token.h.
//
// Ownership: ScratchToken owns the module, token, pool and key store; the
// folder is removed when it is destroyed. Threads: as the p11 classes.
// Errors: std::runtime_error when the folder cannot be made; stir::Error
// from the PKCS#11 layer.
#pragma once

#include <stdlib.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "sks/pkcs11/key_store.h"
#include "sks/pkcs11/module.h"
#include "sks/pkcs11/session_pool.h"
#include "sks/pkcs11/token.h"
#include "sks/secret.h"

namespace sks::testing {

inline const Secret kTestUserPin{"test-user-1234"};
inline const Secret kTestSoPin{"test-so-5678"};

// Points SOFTHSM2_CONF at a new token folder inside `dir`.
inline void write_softhsm_conf(const std::string& dir) {
  std::filesystem::create_directories(dir + "/tokens");
  std::ofstream(dir + "/softhsm2.conf") << "directories.tokendir = " << dir << "/tokens\n"
                                        << "objectstore.backend = file\nlog.level = ERROR\n";
  ::setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
}

// A new temporary folder named PREFIX-XXXXXX.
inline std::string make_temp_dir(const std::string& prefix) {
  std::string dir = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp " + dir + " failed");
  return dir;
}

// A token labelled `label` made fresh in a new temporary folder, logged in,
// with a pool of `sessions` sessions and a key store over it.
class ScratchToken {
 public:
  ScratchToken(const std::string& module_path, const std::string& label, std::size_t sessions)
      : dir_(conf_dir()),
        module_(module_path),
        token_(with_token(module_, label), p11::TokenSelector{label, {}}),
        pool_(logged_in(token_), sessions),
        keys_(pool_) {}
  ~ScratchToken() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ScratchToken(const ScratchToken&) = delete;
  ScratchToken& operator=(const ScratchToken&) = delete;

  p11::Module& module() { return module_; }
  p11::KeyStore& keys() { return keys_; }
  const std::string& dir() const { return dir_; }

 private:
  static const p11::Module& with_token(const p11::Module& module, const std::string& label) {
    p11::init_token(module, label, kTestSoPin, kTestUserPin);
    return module;
  }
  static p11::Token& logged_in(p11::Token& token) {
    token.login(kTestUserPin);
    return token;
  }
  static std::string conf_dir() {
    std::string dir = make_temp_dir("sks-scratch-token");
    write_softhsm_conf(dir);
    return dir;
  }

  std::string dir_;
  p11::Module module_;
  p11::Token token_;
  p11::SessionPool pool_;
  p11::KeyStore keys_;
};

}  // namespace sks::testing
