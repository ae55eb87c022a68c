#include "histogram.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace stir::bench {
namespace {

// A reported value is never below the true one and at most kRelativeError above.
void expect_close(std::uint64_t reported, std::uint64_t truth) {
  EXPECT_GE(reported, truth);
  EXPECT_LE(static_cast<double>(reported),
            static_cast<double>(truth) * (1.0 + LatencyHistogram::kRelativeError))
      << "truth " << truth;
}

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.percentile(100), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 200; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 100u);
  EXPECT_EQ(h.percentile(90), 180u);
  EXPECT_EQ(h.percentile(0), 1u);
  EXPECT_EQ(h.percentile(100), 200u);
}

TEST(LatencyHistogram, UniformMicrosecondsWithinRelativeError) {
  LatencyHistogram h;
  for (std::uint64_t us = 1; us <= 100000; ++us) h.record(us * 1000);  // ns
  EXPECT_EQ(h.count(), 100000u);
  expect_close(h.percentile(50), 50000u * 1000);
  expect_close(h.percentile(90), 90000u * 1000);
  expect_close(h.percentile(99), 99000u * 1000);
  expect_close(h.percentile(99.9), 99900u * 1000);
  EXPECT_EQ(h.percentile(100), 100000u * 1000);
  EXPECT_EQ(h.max(), 100000u * 1000);
}

TEST(LatencyHistogram, AnySingleValueWithinRelativeErrorAndMaxExact) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t v = random() >> (random() % 63 + 1);
    LatencyHistogram h;
    h.record(v);
    expect_close(h.percentile(50), v);
    EXPECT_EQ(h.percentile(100), v);
  }
}

TEST(LatencyHistogram, OutlierOnlyMovesTheTail) {
  LatencyHistogram h;
  for (int i = 0; i < 999; ++i) h.record(2'000'000);
  h.record(900'000'000);
  expect_close(h.percentile(50), 2'000'000);
  expect_close(h.percentile(99.9), 2'000'000);
  EXPECT_EQ(h.percentile(100), 900'000'000u);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram all, odd, even;
  for (std::uint64_t v = 1; v <= 50000; ++v) {
    all.record(v * 37);
    (v % 2 ? odd : even).record(v * 37);
  }
  odd.merge(even);
  EXPECT_EQ(odd.count(), all.count());
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) EXPECT_EQ(odd.percentile(p), all.percentile(p));
}

TEST(LatencyHistogram, HugeValuesAreClamped) {
  LatencyHistogram h;
  h.record(UINT64_MAX);
  EXPECT_EQ(h.max(), (std::uint64_t{1} << 63) - 1);
  EXPECT_EQ(h.percentile(50), h.max());
}

}  // namespace
}  // namespace stir::bench
