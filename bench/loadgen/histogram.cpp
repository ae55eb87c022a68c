#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace stir::bench {
namespace {

constexpr std::uint64_t kExact = std::uint64_t{1} << LatencyHistogram::kSubBits;
constexpr std::uint64_t kHalf = kExact / 2;
constexpr std::uint64_t kLargest = (std::uint64_t{1} << 63) - 1;
// kExact exact buckets, then kHalf buckets for each bit width above kSubBits.
constexpr std::size_t kBuckets = kExact + (63 - LatencyHistogram::kSubBits) * kHalf;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

std::size_t LatencyHistogram::index_of(std::uint64_t value) {
  if (value < kExact) return value;
  const int shift = std::bit_width(value) - kSubBits;
  const std::uint64_t top = value >> shift;  // in [kHalf, kExact)
  return kExact + (shift - 1) * kHalf + (top - kHalf);
}

std::uint64_t LatencyHistogram::highest_in(std::size_t index) {
  if (index < kExact) return index;
  const std::size_t above = index - kExact;
  const int shift = static_cast<int>(above / kHalf) + 1;
  const std::uint64_t top = above % kHalf + kHalf;
  return ((top + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t value) {
  value = std::min(value, kLargest);
  ++counts_[index_of(value)];
  ++total_;
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::percentile(double percent) const {
  if (total_ == 0) return 0;
  // The rank of the value wanted; the factor keeps 99.9 % of 1000 at 999
  // although 99.9 / 100 * 1000 is a hair above 999 in binary floating point.
  const double wanted = std::clamp(percent, 0.0, 100.0) / 100.0 * static_cast<double>(total_);
  const auto rank =
      std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(wanted * (1 - 1e-12))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_in(i), max_);
  }
  return max_;
}

}  // namespace stir::bench
