// Internal: bounds on x5u fetches so that one hostile host cannot hold the
// verification workers: callers in a fetch or waiting for another caller's
// fetch, at most max_total altogether and half of that per host; fetches
// (connections) at most max_per_host per host; hosts whose fetch timed
// out, refused until their failure expires. Waiters are not held to
// max_per_host, so a burst of calls for one new certificate shares one
// fetch instead of being refused.
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
      : max_total_(max_total == 0 ? 1 : max_total),
        max_per_host_(max_per_host == 0 ? 1 : max_per_host) {}

  // A hold on one slot of `host` for a fetch (`fetching`) or a wait for
  // another caller's fetch, released when the last copy goes; or null with
  // the reason in `why`.
  std::shared_ptr<void> enter(const std::string& host, std::int64_t now, bool fetching,
                              std::string& why) {
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
    Host& counts = per_host_[host];
    const std::size_t host_share = std::max(max_per_host_, max_total_ / 2);
    if (counts.callers >= host_share) {
      why = "too many verifications waiting for host " + host + " (" + std::to_string(host_share) +
            ")";
      return nullptr;
    }
    if (fetching && counts.fetches >= max_per_host_) {
      why = "too many x5u fetches in flight for host " + host + " (" +
            std::to_string(max_per_host_) + ")";
      return nullptr;
    }
    ++counts.callers;
    if (fetching) ++counts.fetches;
    ++total_;
    auto self = shared_from_this();
    return std::shared_ptr<void>(static_cast<void*>(this),
                                 [self, host, fetching](void*) { self->leave(host, fetching); });
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

  struct Host {
    std::size_t callers = 0;  // fetching or waiting
    std::size_t fetches = 0;
  };

  void leave(const std::string& host, bool fetching) {
    std::lock_guard lock(mutex_);
    --total_;
    const auto it = per_host_.find(host);
    if (it == per_host_.end()) return;
    if (fetching) --it->second.fetches;
    if (--it->second.callers == 0) per_host_.erase(it);
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
  std::map<std::string, Host> per_host_;
  std::map<std::string, std::int64_t> failed_until_;
};

}  // namespace stir::vs::detail
