// What every test on the rotation stack (rotation_fixture.h) checks its
// tokens with: our STI-VS trusting the test STI-PA root and fetching each
// x5u from the stack's TN-CR over HTTPS (loopback, that port only), and the
// x5u a token names. Header-only; no state.
#pragma once

#include <cstdint>
#include <string>

#include "stir/verifier/verifier.h"

namespace stir::testing {

// `dir` is the stack's folder (RotationStackTest::dir), `tncr_port` its
// TN-CR's port.
inline vs::VerifierConfig stack_verifier_config(const std::string& dir, int tncr_port) {
  vs::VerifierConfig v;
  v.trust_anchor_files = {dir + "/pki/root.pem"};
  v.tls_ca_file = dir + "/tls/server-ca.pem";
  v.allow_loopback = true;
  v.allowed_ports = {static_cast<std::uint16_t>(tncr_port)};
  return v;
}

// The x5u in an Identity header's info=<...> parameter, or "".
inline std::string info_of(const std::string& identity) {
  const auto start = identity.find(";info=<");
  if (start == std::string::npos) return "";
  const auto end = identity.find('>', start);
  return end == std::string::npos ? "" : identity.substr(start + 7, end - start - 7);
}

}  // namespace stir::testing
