// What the sks benchmark programs share (sign_bench.cpp,
// signature_check_bench.cpp): the timed loop on N threads, the PASSporT they
// sign, and the end of main (the report as JSON or as a table). Header-only:
// the benchmarks are built without the tests and link nothing more for it.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "stir/passport.h"

namespace sks::bench {

// The process's user + system CPU time, in seconds.
inline double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Runs `work` on `threads` threads for `seconds`; returns operations per
// second and, when asked, the process's CPU time per operation in us (on a
// busy machine a figure that other processes do not move, bench/README.md).
inline double rate(int threads, double seconds, const std::function<void(int)>& work,
                   double* cpu_us_per_op = nullptr) {
  using Clock = std::chrono::steady_clock;
  const double cpu_start = cpu_seconds();
  std::atomic<bool> stop{false};
  std::atomic<long> done{0};
  std::vector<std::thread> pool;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      long local = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        work(t);
        ++local;
      }
      done.fetch_add(local);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& thread : pool) thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (cpu_us_per_op != nullptr) {
    *cpu_us_per_op =
        (cpu_seconds() - cpu_start) * 1e6 / static_cast<double>(std::max(1L, done.load()));
  }
  return static_cast<double>(done.load()) / elapsed;
}

// The PASSporT every benchmark signs; its x5u is never fetched.
inline stir::PassportHeader passport_header() {
  stir::PassportHeader header;
  header.x5u = "https://cr.example.net/bench.pem";
  return header;
}

inline stir::ShakenClaims passport_claims() {
  stir::ShakenClaims c;
  c.attest = "A";
  c.orig_tn = "12155550121";
  c.dest_tn = {"12155550131"};
  c.iat = 1795716877;
  c.origid = "123e4567-e89b-12d3-a456-426655440000";
  return c;
}

// The end of a benchmark's main: `measure` fills `report`, which is then
// printed as JSON (`json`) or by `print_table`. Returns 0, or 69 when
// measuring threw (the reason on stderr as "PROGRAM: reason").
inline int measure_and_report(const char* program, bool json, nlohmann::json& report,
                              const std::function<void()>& measure,
                              const std::function<void()>& print_table) {
  try {
    measure();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 69;
  }
  if (json) {
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  print_table();
  return 0;
}

}  // namespace sks::bench
