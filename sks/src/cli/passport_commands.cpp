// sks sign (a PASSporT signed in the token) and sks verify.
#include <ctime>
#include <iostream>
#include <optional>

#include "cli_support.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verify.h"

namespace sks::cli {
namespace {

struct SignOptions {
  std::string label;
  std::string x5u;
  std::string orig;
  std::vector<std::string> dest;
  std::string attest;
  std::string origid;
  std::optional<std::int64_t> iat;
};

void run_sign(const Context& context, const SignOptions& o) {
  stir::PassportHeader header;
  header.x5u = o.x5u;
  stir::ShakenClaims claims;
  claims.attest = o.attest;
  claims.orig_tn = o.orig;
  claims.dest_tn = o.dest;
  claims.iat = o.iat.value_or(static_cast<std::int64_t>(std::time(nullptr)));
  claims.origid = o.origid.empty() ? random_uuid() : o.origid;
  // Check the claims before touching the token: bad input changes nothing.
  stir::validate_claims(claims);
  auto hsm = open_hsm(context);
  auto key = hsm->keys().signing_key(o.label);
  const std::string jws = stir::sign_passport(header, claims, *key);
  std::cout << stir::compose_identity_header(jws, o.x5u) << "\n";
}

struct VerifyOptions {
  std::string identity;
  std::string public_key;
  std::string cert;
  std::optional<std::int64_t> time;
  std::int64_t max_age = 60;
};

int run_verify(const VerifyOptions& o) {
  const stir::EvpPkeyPtr key = o.cert.empty() ? stir::load_public_key_file(o.public_key)
                                              : stir::public_key_from_certificate_file(o.cert);
  stir::VerifyOptions options;
  options.now = o.time.value_or(static_cast<std::int64_t>(std::time(nullptr)));
  options.max_age_seconds = o.max_age;
  options.max_future_seconds = o.max_age;
  const stir::VerifyResult result = stir::verify_identity(o.identity, key.get(), options);
  if (result.valid) {
    const auto& c = result.passport->claims;
    std::string dest;
    for (const auto& tn : c.dest_tn) dest += (dest.empty() ? "" : ",") + tn;
    std::cout << "valid: attest=" << c.attest << " orig=" << c.orig_tn << " dest=" << dest
              << " iat=" << c.iat << " origid=" << c.origid
              << " x5u=" << result.passport->header.x5u << "\n";
    return kExitOk;
  }
  std::cout << "invalid: " << static_cast<int>(result.reason) << " "
            << stir::sip_reason_text(result.reason) << ": " << result.detail << "\n";
  return kExitInvalidToken;
}

}  // namespace

void add_passport_commands(CLI::App& app, Context& context) {
  auto sign = std::make_shared<SignOptions>();
  auto* sign_cmd =
      app.add_subcommand("sign", "sign a SHAKEN PASSporT; prints the Identity header value");
  add_config_option(sign_cmd, context);
  sign_cmd->add_option("--label", sign->label, "key label")->required();
  sign_cmd->add_option("--x5u", sign->x5u, "certificate URL (also the info parameter)")->required();
  sign_cmd->add_option("--orig", sign->orig, "calling number, canonical (digits only)")->required();
  sign_cmd->add_option("--dest", sign->dest, "called number(s), comma-separated")
      ->required()
      ->delimiter(',');
  sign_cmd->add_option("--attest", sign->attest, "attestation level")
      ->required()
      ->check(CLI::IsMember({"A", "B", "C"}));
  sign_cmd->add_option("--origid", sign->origid, "origination id (UUID; default: a random one)");
  sign_cmd->add_option("--iat", sign->iat, "issued-at, seconds since 1970 (default: now)");
  sign_cmd->callback([&context, sign] { run_sign(context, *sign); });

  auto verify = std::make_shared<VerifyOptions>();
  auto* verify_cmd = app.add_subcommand(
      "verify", "check an Identity header's signature, SHAKEN claims and freshness");
  verify_cmd->add_option("--identity", verify->identity, "the Identity header value")->required();
  auto* key_option =
      verify_cmd->add_option("--public-key", verify->public_key, "signer's public key (PEM)");
  auto* cert_option =
      verify_cmd->add_option("--cert", verify->cert, "signer's certificate (PEM, leaf first)");
  key_option->excludes(cert_option);
  verify_cmd->add_option("--time", verify->time,
                         "verifier clock, seconds since 1970 (default: now)");
  verify_cmd->add_option("--max-age", verify->max_age, "allowed iat age and future skew, seconds")
      ->capture_default_str();
  verify_cmd->callback([&context, verify] {
    if (verify->public_key.empty() == verify->cert.empty()) {
      throw CLI::ValidationError("give exactly one of --public-key and --cert");
    }
    context.status = run_verify(*verify);
  });
}

}  // namespace sks::cli
