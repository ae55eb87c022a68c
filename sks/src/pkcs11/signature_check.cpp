#include "sks/pkcs11/signature_check.h"

#include <cstdio>

#include "stir/metrics_text.h"

namespace sks::p11 {

bool parse_signature_check_mode(std::string_view text, SignatureCheckMode& mode) {
  if (text == "always") {
    mode = SignatureCheckMode::kAlways;
  } else if (text == "sample") {
    mode = SignatureCheckMode::kSample;
  } else if (text == "off") {
    mode = SignatureCheckMode::kOff;
  } else {
    return false;
  }
  return true;
}

std::string_view to_string(SignatureCheckMode mode) noexcept {
  switch (mode) {
    case SignatureCheckMode::kAlways:
      return "always";
    case SignatureCheckMode::kSample:
      return "sample";
    case SignatureCheckMode::kOff:
      return "off";
  }
  return "sample";
}

namespace {
std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void SignatureCheck::configure(SignatureCheckMode mode, std::uint64_t every,
                               std::chrono::seconds strict_period) noexcept {
  mode_.store(mode);
  every_.store(every == 0 ? 1 : every);
  strict_period_ns_.store(std::chrono::nanoseconds(strict_period).count());
}

bool SignatureCheck::strict() const noexcept {
  return mode_.load(std::memory_order_relaxed) == SignatureCheckMode::kSample &&
         strict_until_ns_.load(std::memory_order_relaxed) > steady_ns();
}

bool SignatureCheck::should_check(bool fresh_session) noexcept {
  switch (mode_.load(std::memory_order_relaxed)) {
    case SignatureCheckMode::kAlways:
      return true;
    case SignatureCheckMode::kOff:
      return false;
    case SignatureCheckMode::kSample:
      return fresh_session || strict() ||
             counter_.fetch_add(1, std::memory_order_relaxed) % every_.load() == 0;
  }
  return true;
}

void SignatureCheck::count_failure(std::string_view reason, std::string_view key) noexcept {
  (reason == "length" ? bad_length_ : bad_verify_).fetch_add(1);
  if (mode_.load() != SignatureCheckMode::kSample) return;
  const std::int64_t now = steady_ns();
  const std::int64_t until = now + strict_period_ns_.load();
  std::int64_t previous = strict_until_ns_.load();
  while (previous < until && !strict_until_ns_.compare_exchange_weak(previous, until)) {
  }
  if (previous <= now) {  // this failure started the strict period
    strict_entered_.fetch_add(1);
    std::fprintf(stderr,
                 "signature check: key '%.*s' gave a signature that failed its check (%.*s); "
                 "checking every signature of this token for %lld s\n",
                 static_cast<int>(key.size()), key.data(), static_cast<int>(reason.size()),
                 reason.data(), static_cast<long long>(strict_period_ns_.load() / 1000000000));
  }
}

std::string SignatureCheck::render_metrics() const {
  return stir::metric_family("sks_signature_checks_total", "counter",
                             "Token signatures verified with the public key before leaving (mode " +
                                 std::string(to_string(mode_.load())) + ").",
                             {{"", std::to_string(checked_.load())}}) +
         stir::metric_family("sks_signature_check_failures_total", "counter",
                             "Token signatures refused (500), by reason.",
                             {{"{reason=\"length\"}", std::to_string(bad_length_.load())},
                              {"{reason=\"verify\"}", std::to_string(bad_verify_.load())}}) +
         stir::metric_family("sks_signature_check_retries_total", "counter",
                             "Signatures made again on a fresh session after one failed its check.",
                             {{"", std::to_string(retried_.load())}}) +
         stir::metric_family("sks_signature_check_strict", "gauge",
                             "1 while a failed check makes sample mode check every signature.",
                             {{"", strict() ? "1" : "0"}}) +
         stir::metric_family("sks_signature_check_strict_periods_total", "counter",
                             "Times a failed check started checking every signature (sample mode).",
                             {{"", std::to_string(strict_entered_.load())}});
}

}  // namespace sks::p11
