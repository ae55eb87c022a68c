// The cost of each signature check mode ([token] signature_check): whole
// PASSporTs signed through the token (canonical JSON, SHA-256, C_Sign,
// the check, Identity header) with `off`, `sample` (1 in 100) and
// `always`, on 1 and 2 threads, in alternating rounds so every mode sees
// the same machine; the median rate of the rounds is reported, with the
// extra microseconds per signature against `off`.
// Usage: sks_signature_check_bench [--seconds S] [--json]
// The token lives in a temporary folder and is deleted at the end.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
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
#include "stir/passport.h"

namespace {

using sks::p11::SignatureCheckMode;

// Signs PASSporTs on `threads` threads for `seconds`; returns signatures per second.
double rate(int threads, double seconds, const sks::p11::TokenKey& key) {
  const stir::PassportHeader header = sks::bench::passport_header();
  const stir::ShakenClaims claims = sks::bench::passport_claims();
  return sks::bench::rate(threads, seconds, [&](int) {
    stir::compose_identity_header(stir::sign_passport(header, claims, key), header.x5u);
  });
}

}  // namespace

int main(int argc, char** argv) {
  stir::ignore_broken_pipes();  // see stir/exit_codes.h
  double seconds = 2.0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else {
      std::cerr << "usage: sks_signature_check_bench [--seconds S] [--json]\n";
      return 64;
    }
  }

  const std::vector<SignatureCheckMode> modes = {
      SignatureCheckMode::kOff, SignatureCheckMode::kSample, SignatureCheckMode::kAlways};
  nlohmann::json report = {{"seconds_per_round", seconds}, {"rounds", 3}};
  const auto measure = [&] {
    sks::testing::ScratchToken scratch(STIR_SOFTHSM_MODULE, "bench", 2);
    sks::p11::KeyStore& keys = scratch.keys();
    keys.generate("bench");
    const auto key = keys.signing_key("bench");
    for (const int threads : {1, 2}) {
      std::map<SignatureCheckMode, std::vector<double>> rates;
      for (int round = 0; round < 3; ++round) {
        for (const auto mode : modes) {
          keys.signature_check().configure(mode, sks::p11::SignatureCheck::kDefaultEvery);
          rates[mode].push_back(rate(threads, seconds, *key));
        }
      }
      const std::string suffix = threads == 1 ? "_1_thread" : "_2_threads";
      double off_us = 0;
      for (const auto mode : modes) {
        auto& r = rates[mode];
        std::sort(r.begin(), r.end());
        const double median = r[r.size() / 2];
        // Thread time per signature: threads / rate.
        const double us = 1e6 * threads / median;
        if (mode == SignatureCheckMode::kOff) off_us = us;
        const std::string name(sks::p11::to_string(mode));
        report[name + suffix + "_per_s"] = median;
        report[name + suffix + "_extra_us"] = us - off_us;
      }
    }
  };
  const auto print_table = [&] {
    std::printf("%-40s %12s %12s\n", "PASSporT signing, signature_check =", "1 thread /s",
                "2 threads /s");
    for (const char* mode : {"off", "sample", "always"}) {
      const std::string m(mode);
      std::printf("%-40s %12.0f %12.0f\n", mode, report[m + "_1_thread_per_s"].get<double>(),
                  report[m + "_2_threads_per_s"].get<double>());
    }
    for (const char* mode : {"sample", "always"}) {
      const std::string m(mode);
      std::printf("extra per signature, %-19s %10.1f us %10.1f us (thread time)\n", mode,
                  report[m + "_1_thread_extra_us"].get<double>(),
                  report[m + "_2_threads_extra_us"].get<double>());
    }
  };
  return sks::bench::measure_and_report("sks_signature_check_bench", json, report, measure,
                                        print_table);
}
