// Internal: bounds on x5u fetches so that one hostile host cannot hold the
// verification workers: fetches in flight altogether and per host (a
// caller waiting for another's fetch counts as one), and hosts whose fetch
// timed out, refused until their failure expires.
//
// Threads: every member is safe from any thread. Errors: none thrown
// (except std::bad_alloc); a refusal is a null hold and a reason.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace stir::vs::detail {

class FetchGate : public std::enable_shared_from_this<FetchGate> {
 public:
  FetchGate(std::size_t max_total, std::size_t max_per_host)
      : max_total_(max_total == 0 ? 1 : max_total), max_per_host_(max_per_host == 0 ? 1 : max_per_host) {}

  // A hold on one fetch slot of `host` (released when the last copy goes),
  // or null with the reason in `why`.
  std::shared_ptr<void> enter(const std::string& host, std::int64_t now, std::string& why) {
    std::lock_guard lock(mutex_);
    if (const auto failed = failed_until_.find(host); failed != failed_until_.end()) {
      if (failed->second > now) {
        why = "host " + host + " timed out recently; not tried again before " +
              std::to_string(failed->second);
        return nullptr;
      }
      failed_until_.erase(failed);
    }
    if (total_ >= max_total_) {
      why = "too many x5u fetches in flight (" + std::to_string(max_total_) + ")";
      return nullptr;
    }
    std::size_t& count = per_host_[host];
    if (count >= max_per_host_) {
      why = "too many x5u fetches in flight for host " + host + " (" +
            std::to_string(max_per_host_) + ")";
      return nullptr;
    }
    ++count;
    ++total_;
    auto self = shared_from_this();
    return std::shared_ptr<void>(static_cast<void*>(this), [self, host](void*) { self->leave(host); });
  }

  // `host` timed out: refused until `until`.
  void failed(const std::string& host, std::int64_t until) {
    std::lock_guard lock(mutex_);
    if (failed_until_.size() >= kMaxFailedHosts) prune_locked(until);
    std::int64_t& entry = failed_until_[host];
    entry = std::max(entry, until);
  }

  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return total_;
  }

 private:
  static constexpr std::size_t kMaxFailedHosts = 10000;

  void leave(const std::string& host) {
    std::lock_guard lock(mutex_);
    --total_;
    const auto it = per_host_.find(host);
    if (it != per_host_.end() && --it->second == 0) per_host_.erase(it);
  }

  // Drops the entries that expire soonest (a bound, not an LRU).
  void prune_locked(std::int64_t) {
    while (failed_until_.size() >= kMaxFailedHosts) {
      auto oldest = failed_until_.begin();
      for (auto it = failed_until_.begin(); it != failed_until_.end(); ++it) {
        if (it->second < oldest->second) oldest = it;
      }
      failed_until_.erase(oldest);
    }
  }

  const std::size_t max_total_;
  const std::size_t max_per_host_;
  mutable std::mutex mutex_;
  std::size_t total_ = 0;
  std::map<std::string, std::size_t> per_host_;
  std::map<std::string, std::int64_t> failed_until_;
};

}  // namespace stir::vs::detail
