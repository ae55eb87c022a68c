#include "sks/pkcs11/signature_check.h"

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

void SignatureCheck::configure(SignatureCheckMode mode, std::uint64_t every) noexcept {
  mode_.store(mode);
  every_.store(every == 0 ? 1 : every);
}

bool SignatureCheck::should_check(bool fresh_session) noexcept {
  switch (mode_.load(std::memory_order_relaxed)) {
    case SignatureCheckMode::kAlways:
      return true;
    case SignatureCheckMode::kOff:
      return false;
    case SignatureCheckMode::kSample:
      return fresh_session || counter_.fetch_add(1, std::memory_order_relaxed) % every_.load() == 0;
  }
  return true;
}

void SignatureCheck::count_failure(std::string_view reason) noexcept {
  (reason == "length" ? bad_length_ : bad_verify_).fetch_add(1);
}

std::string SignatureCheck::render_metrics() const {
  return "# HELP sks_signature_checks_total Token signatures verified with the public key before "
         "leaving (mode " +
         std::string(to_string(mode_.load())) +
         ").\n"
         "# TYPE sks_signature_checks_total counter\n"
         "sks_signature_checks_total " +
         std::to_string(checked_.load()) +
         "\n"
         "# HELP sks_signature_check_failures_total Token signatures refused (500), by reason.\n"
         "# TYPE sks_signature_check_failures_total counter\n"
         "sks_signature_check_failures_total{reason=\"length\"} " +
         std::to_string(bad_length_.load()) +
         "\n"
         "sks_signature_check_failures_total{reason=\"verify\"} " +
         std::to_string(bad_verify_.load()) + "\n";
}

}  // namespace sks::p11
