// ATIS-1000074's optional rule: a failure reason (436/437/438) is reported
// at most once per originating TN per window (24 h); later failures for that
// TN within the window are reported as unsigned calls.
//
// A bounded LRU table: the least recently reported TNs are forgotten first,
// so a flood of distinct TNs costs at most `capacity` entries.
// Threads: allow() is safe from any thread (one mutex).
// Errors: none; nothing throws except std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace stir::vs {

class ReasonOncePolicy {
 public:
  explicit ReasonOncePolicy(std::size_t capacity, std::int64_t window_s = 86400);

  // True when a reason may be reported for `tn` at `now` (and remembers it);
  // false when one was reported within the window.
  bool allow(const std::string& tn, std::int64_t now);

  std::size_t size() const;

 private:
  using Lru = std::list<std::pair<std::string, std::int64_t>>;  // most recent first

  const std::size_t capacity_;
  const std::int64_t window_s_;
  mutable std::mutex mutex_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> index_;
};

}  // namespace stir::vs
