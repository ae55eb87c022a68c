// LatencyHistogram: latencies with a bounded relative error, in the manner
// of HdrHistogram. Values below 2^kSubBits are kept exactly; above, every
// power-of-two range is split into 2^(kSubBits-1) equal buckets, so a
// reported percentile is at most kRelativeError above the true value and
// never below it. Memory is fixed (about 60 KiB), recording is O(1).
// Not thread-safe: one histogram per thread, merged at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace stir::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 8;
  static constexpr double kRelativeError = 2.0 / (1 << kSubBits);

  LatencyHistogram();

  // Values at or above 2^63 are recorded as 2^63 - 1.
  void record(std::uint64_t value);
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  // The smallest bucket bound v with at least `percent` % of the values <= v,
  // clamped to max(); 0 when empty. `percent` in [0, 100].
  std::uint64_t percentile(double percent) const;

 private:
  static std::size_t index_of(std::uint64_t value);
  static std::uint64_t highest_in(std::size_t index);

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace stir::bench
