#include "stir/verifier/reason_policy.h"

#include <algorithm>

namespace stir::vs {

ReasonOncePolicy::ReasonOncePolicy(std::size_t capacity, std::int64_t window_s)
    : capacity_(std::max<std::size_t>(1, capacity)), window_s_(window_s) {}

bool ReasonOncePolicy::allow(const std::string& tn, std::int64_t now) {
  std::lock_guard lock(mutex_);
  if (const auto it = index_.find(tn); it != index_.end()) {
    if (now - it->second->second < window_s_) return false;
    it->second->second = now;
    lru_.splice(lru_.begin(), lru_, it->second);
    return true;
  }
  lru_.emplace_front(tn, now);
  index_[tn] = lru_.begin();
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return true;
}

std::size_t ReasonOncePolicy::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace stir::vs
