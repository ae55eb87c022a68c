// One integer setting of a plain config struct: its key, its member and
// its bounds, so that a table of these is the one place a setting is
// written. The default is the member's initialiser (the value the struct
// holds when the key is absent). stir/toml_config.h reads such tables from
// TOML (read_integers); a library without TOML (the verifier) checks its
// values against the same table.
//
// Header-only, no TOML; value types, no threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

namespace stir::toml_config {

template <class S>
struct IntegerField {
  const char* key;
  std::variant<int S::*, std::int64_t S::*, std::size_t S::*> member;
  std::int64_t min;
  std::int64_t max;

  std::int64_t get(const S& s) const {
    return std::visit([&s](auto m) { return static_cast<std::int64_t>(s.*m); }, member);
  }
  void set(S& s, std::int64_t value) const {
    std::visit([&s, value](auto m) { s.*m = static_cast<std::decay_t<decltype(s.*m)>>(value); },
               member);
  }
  bool within(const S& s) const {
    const std::int64_t value = get(s);
    return value >= min && value <= max;
  }
  // "must be from MIN to MAX"
  std::string bounds() const {
    return "must be from " + std::to_string(min) + " to " + std::to_string(max);
  }
};

}  // namespace stir::toml_config
