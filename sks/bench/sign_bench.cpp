// Signing and verification rates, measured in one run on one machine, so
// the ratios mean something on shared hardware:
//   - OpenSSL's raw P-256 sign and verify (software, one thread): the yardstick
//   - C_Sign through the session pool on a fresh SoftHSM2 token, 1 and 2 threads
//   - a whole PASSporT (canonical JSON, SHA-256, token signature, Identity
//     header), 1 and 2 threads
//   - verify_identity of one of our tokens with a known key, one thread
//   - with --keys N: C_Sign (1 thread) in a second token holding N keys
//     against the token holding one, in alternating rounds (median ratio)
// Usage: sks_sign_bench [--seconds S] [--keys N] [--json]
// The token lives in a temporary folder and is deleted at the end.
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "scratch_token.h"
#include "sks/pkcs11/key_store.h"
#include "sks/pkcs11/module.h"
#include "sks/pkcs11/session_pool.h"
#include "sks/pkcs11/token.h"
#include "stir/exit_codes.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verify.h"

using sks::bench::rate;

int main(int argc, char** argv) {
  stir::ignore_broken_pipes();  // see stir/exit_codes.h
  double seconds = 2.0;
  bool json = false;
  long many_keys = 0;
  bool passport_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
      many_keys = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--passport-cpu") == 0) {
      passport_only = true;  // bench/run.sh: the in-process PASSporT only, between rounds
    } else {
      std::cerr << "usage: sks_sign_bench [--seconds S] [--keys N] [--json] [--passport-cpu]\n";
      return 64;
    }
  }

  nlohmann::json report;
  const auto measure = [&] {
    sks::testing::ScratchToken scratch(STIR_SOFTHSM_MODULE, "bench", 2);
    sks::p11::KeyStore& keys = scratch.keys();
    keys.generate("bench");
    const auto key = keys.signing_key("bench");
    const auto public_key = stir::load_public_key_pem(keys.public_key_pem("bench"));
    const stir::PassportHeader header = sks::bench::passport_header();
    const stir::ShakenClaims c = sks::bench::passport_claims();
    auto passport = [&](int) {
      stir::compose_identity_header(stir::sign_passport(header, c, *key), header.x5u);
    };
    if (passport_only) {
      double cpu_us = 0;
      const double per_s = rate(1, seconds, passport, &cpu_us);
      report = {{"passport_sign_1_thread_per_s", per_s}, {"passport_sign_cpu_us", cpu_us}};
      return;
    }

    // OpenSSL software key, same curve, same digest.
    std::unique_ptr<EC_KEY, decltype(&EC_KEY_free)> software(
        EC_KEY_new_by_curve_name(NID_X9_62_prime256v1), EC_KEY_free);
    EC_KEY_generate_key(software.get());
    const stir::Sha256Digest digest = stir::sha256("bench");
    unsigned char der[80];
    unsigned int der_length = sizeof der;
    ECDSA_sign(0, digest.data(), digest.size(), der, &der_length, software.get());

    const double openssl_sign = rate(1, seconds, [&](int) {
      ECDSA_SIG* sig = ECDSA_do_sign(digest.data(), digest.size(), software.get());
      ECDSA_SIG_free(sig);
    });
    const double openssl_verify = rate(1, seconds, [&](int) {
      ECDSA_verify(0, digest.data(), digest.size(), der, der_length, software.get());
    });
    const double token_1 = rate(1, seconds, [&](int) { key->sign_digest(digest); });
    const double token_2 = rate(2, seconds, [&](int) { key->sign_digest(digest); });
    double passport_cpu_us = 0;
    const double passport_1 = rate(1, seconds, passport, &passport_cpu_us);
    const double passport_2 = rate(2, seconds, passport);
    const std::string identity =
        stir::compose_identity_header(stir::sign_passport(header, c, *key), header.x5u);
    const double verify_1 = rate(1, seconds, [&](int) {
      if (!stir::verify_identity(identity, public_key.get(), {}).valid) std::abort();
    });

    report = {{"seconds_per_measurement", seconds},
              {"openssl_p256_sign_per_s", openssl_sign},
              {"openssl_p256_verify_per_s", openssl_verify},
              {"token_sign_1_thread_per_s", token_1},
              {"token_sign_2_threads_per_s", token_2},
              {"passport_sign_1_thread_per_s", passport_1},
              {"passport_sign_cpu_us", passport_cpu_us},
              {"passport_sign_2_threads_per_s", passport_2},
              {"verify_identity_1_thread_per_s", verify_1},
              {"ratio_token_vs_openssl_sign_1_thread", token_1 / openssl_sign},
              {"ratio_passport_vs_token_2_threads", passport_2 / token_2},
              {"ratio_verify_vs_openssl_verify", verify_1 / openssl_verify}};

    if (many_keys > 1) {
      sks::p11::init_token(scratch.module(), "bench-many", sks::testing::kTestSoPin,
                           sks::testing::kTestUserPin);
      sks::p11::Token crowded(scratch.module(), {"bench-many", {}});
      crowded.login(sks::testing::kTestUserPin);
      sks::p11::SessionPool crowded_pool(crowded, 1);
      sks::p11::KeyStore crowded_keys(crowded_pool);
      for (long k = 1; k < many_keys; ++k) crowded_keys.generate("filler-" + std::to_string(k));
      crowded_keys.generate("bench");
      const auto crowded_key = crowded_keys.signing_key("bench");
      // Alternating rounds see the same machine; the median ratio resists noise.
      constexpr int kRounds = 5;
      std::vector<double> ratios;
      double one_best = 0, many_best = 0;
      for (int round = 0; round < kRounds; ++round) {
        const double one = rate(1, seconds / 2, [&](int) { key->sign_digest(digest); });
        const double many = rate(1, seconds / 2, [&](int) { crowded_key->sign_digest(digest); });
        one_best = std::max(one_best, one);
        many_best = std::max(many_best, many);
        ratios.push_back(many / one);
      }
      std::sort(ratios.begin(), ratios.end());
      report["keys_in_crowded_token"] = many_keys;
      report["token_sign_1_key_1_thread_per_s"] = one_best;
      report["token_sign_many_keys_1_thread_per_s"] = many_best;
      report["ratio_many_keys_vs_1_key"] = ratios[kRounds / 2];
    }
  };
  const auto print_table = [&] {
    if (passport_only) {  // bench/run.sh reads it between rounds: one line of JSON
      std::cout << report.dump() << "\n";
      return;
    }
    auto line = [&](const char* what, const char* key) {
      std::printf("%-46s %10.0f /s\n", what, report[key].get<double>());
    };
    line("OpenSSL raw P-256 sign (1 thread)", "openssl_p256_sign_per_s");
    line("OpenSSL raw P-256 verify (1 thread)", "openssl_p256_verify_per_s");
    line("token C_Sign via pool (1 thread)", "token_sign_1_thread_per_s");
    line("token C_Sign via pool (2 threads)", "token_sign_2_threads_per_s");
    line("PASSporT + Identity header (1 thread)", "passport_sign_1_thread_per_s");
    line("PASSporT + Identity header (2 threads)", "passport_sign_2_threads_per_s");
    line("verify_identity, known key (1 thread)", "verify_identity_1_thread_per_s");
    std::printf("ratio token/OpenSSL sign, 1 thread:          %.2f\n",
                report["ratio_token_vs_openssl_sign_1_thread"].get<double>());
    std::printf("ratio PASSporT/token sign, 2 threads:        %.2f\n",
                report["ratio_passport_vs_token_2_threads"].get<double>());
    std::printf("ratio verify_identity/OpenSSL verify:        %.2f\n",
                report["ratio_verify_vs_openssl_verify"].get<double>());
    if (report.contains("ratio_many_keys_vs_1_key")) {
      std::printf("token C_Sign, %ld keys in the token (1 thread) %8.0f /s\n", many_keys,
                  report["token_sign_many_keys_1_thread_per_s"].get<double>());
      std::printf("ratio %ld keys / 1 key (median of 5 rounds):  %.2f\n", many_keys,
                  report["ratio_many_keys_vs_1_key"].get<double>());
    }
  };
  return sks::bench::measure_and_report("sks_sign_bench", json && !passport_only, report, measure,
                                        print_table);
}
