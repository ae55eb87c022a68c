// PINs in memory, and where they come from.
//
// A PIN is read from a file that only its owner can read (mode 0600 or
// 0400) or from an environment variable; never from a command line. The
// memory is wiped when a Secret is destroyed. Secrets are never printed:
// there is deliberately no operator<<.
#pragma once

#include <string>
#include <string_view>

namespace sks {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  ~Secret();
  Secret(const Secret&) = default;
  Secret& operator=(const Secret&) = default;
  Secret(Secret&&) = default;
  Secret& operator=(Secret&&) = default;

  std::string_view view() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }

 private:
  std::string value_;
};

// Where the token PIN comes from; exactly one of the two is set.
struct PinSource {
  std::string file;  // path of a file of mode 0600/0400 holding the PIN
  std::string env;   // name of an environment variable holding the PIN
};

// Reads the PIN. Throws stir::Error: kPermission when the file is readable or
// writable by group or others, kNotFound when the file or variable is
// missing, kConfig when the PIN is empty. One trailing newline is stripped.
Secret read_pin(const PinSource& source);

// Writes a new random PIN (32 hex digits) to `path` with mode 0600, unless
// the file exists; returns the PIN in the file either way.
Secret ensure_pin_file(const std::string& path);

}  // namespace sks
