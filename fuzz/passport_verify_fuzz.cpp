// The PASSporT decoder and verifier (stir/verify.h) with a trusted P-256 key
// made at start-up. The first input byte picks the mode:
//  - 'I': the rest is an Identity header value, verified as received;
//  - 'J': the rest is a compact JWS, verified as received;
//  - else: the rest is "<header JSON>\n<payload JSON>"; the target encodes
//    and signs them with the trusted key, so the signature verifies and the
//    header, claim and freshness checks see arbitrary JSON.
// An invalid result always names a SIP reason; a valid one has a passport.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "software_signer.h"
#include "stir/base64url.h"
#include "stir/passport.h"
#include "stir/verify.h"

namespace {

constexpr std::int64_t kNow = 1796251082;

const stir::testing::SoftwareSigner& signer() {
  static const stir::testing::SoftwareSigner key;
  return key;
}

std::string sign_segments(std::string_view header_json, std::string_view payload_json) {
  const std::string input =
      stir::base64url_encode(header_json) + "." + stir::base64url_encode(payload_json);
  const stir::Es256Signature signature = signer().sign_digest(stir::sha256(input));
  return input + "." + stir::base64url_encode(std::span<const std::uint8_t>(signature));
}

void check(const stir::VerifyResult& result) {
  if (result.valid) {
    if (!result.passport || result.reason != stir::SipReason::kNone) {
      stir::fuzz::property_failed("valid result without a passport");
    }
  } else if (result.reason == stir::SipReason::kNone) {
    stir::fuzz::property_failed("invalid result without a SIP reason");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const char mode = static_cast<char>(data[0]);
  const std::string_view rest = stir::fuzz::as_text(data + 1, size - 1);
  stir::VerifyOptions options;
  options.now = kNow;
  EVP_PKEY* key = signer().key();
  if (mode == 'I') {
    check(stir::verify_identity(rest, key, options));
  } else if (mode == 'J') {
    check(stir::verify_passport(rest, key, options));
  } else {
    const auto [header, payload] = stir::fuzz::split_once(rest, "\n");
    const std::string jws = sign_segments(header, payload);
    check(stir::verify_passport(jws, key, options));
    options.require_shaken_claims = false;
    options.now.reset();
    check(stir::verify_identity(jws + ";info=<https://cr.example.net/sp.pem>;alg=ES256;ppt=shaken",
                                key, options));
  }
  return 0;
}
