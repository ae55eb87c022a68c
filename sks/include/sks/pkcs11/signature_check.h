// Checks a token's signature against the key's public key before it
// leaves, so a faulty HSM cannot hand out bad tokens unnoticed.
//
// A P-256 verify costs about as much as the whole signing path, so the
// mode is a setting ([token] signature_check):
//   always  every signature
//   sample  1 in `every` signatures, plus the first signature of every
//           session opened after an error (the default)
//   off     none (the length is still checked: 64 bytes, always)
// A failed check (a wrong length or a signature that does not verify) is
// counted, the session is discarded, and the signature is made once more on
// a fresh session and always checked; only when that one fails too does
// the signer throw stir::Error kCrypto (HTTP 500 POL5000). In sample mode a
// failed check also makes the token check every signature for
// `strict_period` ([token] signature_check_strict_s, default 600 s; each
// further failure extends it): a systematically faulty token is caught on
// every signature, not one in `every`. Metrics and one log line (stderr)
// say when a token enters that state.
//
// Ownership: one per KeyStore, shared by its signers.
// Threads: every member is safe to call from any thread. Errors: none.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sks::p11 {

enum class SignatureCheckMode { kAlways, kSample, kOff };

// "always" | "sample" | "off" into `mode`; false (mode untouched) otherwise.
bool parse_signature_check_mode(std::string_view text, SignatureCheckMode& mode);
std::string_view to_string(SignatureCheckMode mode) noexcept;

class SignatureCheck {
 public:
  static constexpr std::uint64_t kDefaultEvery = 100;
  static constexpr std::chrono::seconds kDefaultStrictPeriod{600};

  void configure(SignatureCheckMode mode, std::uint64_t every,
                 std::chrono::seconds strict_period = kDefaultStrictPeriod) noexcept;
  SignatureCheckMode mode() const noexcept { return mode_.load(); }

  // Whether this signature is checked; `fresh_session` is true for the
  // first signature of a session opened after an error.
  bool should_check(bool fresh_session) noexcept;

  void count_checked() noexcept { checked_.fetch_add(1); }
  // reason: "length" (not 64 bytes) or "verify" (does not verify). In
  // sample mode, starts (or extends) the strict period; `key` names the key
  // in the log line.
  void count_failure(std::string_view reason, std::string_view key = {}) noexcept;
  void count_retry() noexcept { retried_.fetch_add(1); }
  // Sample mode after a failure: every signature is checked until then.
  bool strict() const noexcept;
  std::uint64_t failures() const noexcept { return bad_length_.load() + bad_verify_.load(); }

  std::string render_metrics() const;

 private:
  std::atomic<SignatureCheckMode> mode_{SignatureCheckMode::kSample};
  std::atomic<std::uint64_t> every_{kDefaultEvery};
  std::atomic<std::uint64_t> counter_{0};
  std::atomic<std::uint64_t> checked_{0};
  std::atomic<std::uint64_t> bad_length_{0};
  std::atomic<std::uint64_t> bad_verify_{0};
  std::atomic<std::uint64_t> retried_{0};
  std::atomic<std::uint64_t> strict_entered_{0};
  std::atomic<std::int64_t> strict_period_ns_{
      std::chrono::nanoseconds(kDefaultStrictPeriod).count()};
  std::atomic<std::int64_t> strict_until_ns_{0};  // steady_clock; 0 = never
};

}  // namespace sks::p11
