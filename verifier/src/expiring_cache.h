// Internal: a URL-keyed cache of immutable values with expiry, negative
// entries and single flight (concurrent misses for one key run the loader
// once; the others wait for its result).
//
// Threads: every member is safe from any thread. The loader runs without the
// cache lock held. Errors: a loader must not throw; its failure is an entry
// with an error text (kept until its own expiry, like a value).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace stir::vs::detail {

template <typename V>
class ExpiringCache {
 public:
  struct Entry {
    std::shared_ptr<const V> value;  // null for a failure
    std::string error;
    std::int64_t expires_at = 0;
  };
  // kRefused: `admit` refused; the entry says why and is not kept.
  enum class Source { kHit, kMiss, kShared, kRefused };
  struct Lookup {
    Entry entry;
    Source source = Source::kHit;
  };

  explicit ExpiringCache(std::size_t max_entries)
      : max_entries_(std::max<std::size_t>(1, max_entries)) {}

  // Called, without the lock, before this call runs its load (`loading`)
  // or waits for another caller's: a hold kept until the result is in, or
  // null with the reason in `why` (then nothing waits and nothing is kept).
  using Admit = std::function<std::shared_ptr<void>(bool loading, std::string& why)>;

  // The live entry for `key` at `now`, or the loader's result.
  Lookup get(const std::string& key, std::int64_t now, const std::function<Entry()>& load,
             const Admit& admit = nullptr) {
    std::shared_ptr<Flight> flight;
    bool owner = false;
    {
      std::lock_guard lock(mutex_);
      Slot& slot = slots_[key];
      if (slot.loaded && slot.entry.expires_at > now) return {slot.entry, Source::kHit};
      if (slot.flight) {
        flight = slot.flight;
      } else {
        slot.flight = std::make_shared<Flight>();
        slot.flight->result = slot.flight->promise.get_future().share();
        flight = slot.flight;
        owner = true;
      }
    }
    std::shared_ptr<void> hold;
    if (admit) {
      std::string why;
      hold = admit(owner, why);
      if (!hold) {
        Entry refused;
        refused.error = std::move(why);
        refused.expires_at = now;
        if (owner) {
          {
            std::lock_guard lock(mutex_);
            const auto it = slots_.find(key);
            if (it != slots_.end()) {
              it->second.flight.reset();
              if (!it->second.loaded) slots_.erase(it);
            }
          }
          flight->promise.set_value(refused);
        }
        return {std::move(refused), Source::kRefused};
      }
    }
    if (!owner) return {flight->result.get(), Source::kShared};
    Entry entry = load();
    {
      std::lock_guard lock(mutex_);
      Slot& slot = slots_[key];
      slot.entry = entry;
      slot.loaded = true;
      slot.flight.reset();
      evict_locked(now);
    }
    flight->promise.set_value(entry);
    return {std::move(entry), Source::kMiss};
  }

  // Inserts a value loaded elsewhere (from the persistence folder).
  void put(const std::string& key, Entry entry, std::int64_t now) {
    std::lock_guard lock(mutex_);
    Slot& slot = slots_[key];
    if (slot.flight) return;
    slot.entry = std::move(entry);
    slot.loaded = true;
    evict_locked(now);
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return slots_.size();
  }

  void clear() {
    std::lock_guard lock(mutex_);
    for (auto it = slots_.begin(); it != slots_.end();) {
      it = it->second.flight ? std::next(it) : slots_.erase(it);
    }
  }

 private:
  struct Flight {
    std::promise<Entry> promise;
    std::shared_future<Entry> result;
  };
  struct Slot {
    Entry entry;
    bool loaded = false;
    std::shared_ptr<Flight> flight;
  };

  // Expired entries go first, then those that expire soonest. Slots being
  // loaded stay.
  void evict_locked(std::int64_t now) {
    if (slots_.size() <= max_entries_) return;
    for (auto it = slots_.begin(); it != slots_.end();) {
      const bool expired = !it->second.flight && it->second.entry.expires_at <= now;
      it = expired ? slots_.erase(it) : std::next(it);
    }
    if (slots_.size() <= max_entries_) return;
    std::vector<std::pair<std::int64_t, std::string>> order;
    for (const auto& [key, slot] : slots_) {
      if (!slot.flight) order.emplace_back(slot.entry.expires_at, key);
    }
    std::sort(order.begin(), order.end());
    for (const auto& [expires, key] : order) {
      if (slots_.size() <= max_entries_) break;
      slots_.erase(key);
    }
  }

  const std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace stir::vs::detail
