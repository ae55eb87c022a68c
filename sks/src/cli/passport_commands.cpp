// sks sign (a PASSporT signed in the token) and sks verify.
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli_support.h"
#include "stir/files.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verifier/verifier.h"
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
  std::string from;
  std::vector<std::string> to;
  std::string trust_anchors;
  std::optional<std::int64_t> time;
  std::int64_t max_age = 60;
  bool json = false;
};

// Signature, SHAKEN claims and freshness against a key the caller holds.
int run_key_check(const VerifyOptions& o) {
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

// The whole STI-VS verification, the same code as POST /stir/v1/verification:
// x5u fetched (or --cert), chain to the trust anchors, CRLs, TNAuthList,
// signature, claims, freshness, orig/dest against --from/--to.
int run_full_verification(const Context& context, const VerifyOptions& o) {
  stir::vs::VerifierConfig config;
  const std::string path = resolve_config_path(context.config_flag);
  if (!context.config_flag.empty() || std::filesystem::exists(path)) {
    if (auto loaded = load_config(path).verifier) config = std::move(*loaded);
  }
  if (!o.trust_anchors.empty()) {
    config.trust_anchors_dir.clear();
    config.trust_anchor_files.clear();
    if (std::filesystem::is_directory(o.trust_anchors)) {
      config.trust_anchors_dir = o.trust_anchors;
    } else {
      config.trust_anchor_files.push_back(o.trust_anchors);
    }
  }
  if (config.trust_anchors_dir.empty() && config.trust_anchor_files.empty()) {
    throw stir::Error(stir::ErrorCode::kConfig,
                      "verification needs trust anchors: [verifier] trust_anchors in the config, "
                      "or --trust-anchors FILE|DIR");
  }
  stir::vs::Verifier verifier(config);
  stir::vs::VerificationRequest request;
  request.identity = o.identity;
  request.from_tn = o.from;
  request.to_tns = o.to;
  request.now = o.time;
  if (!o.cert.empty()) request.certificate_pem = stir::read_file(o.cert);
  const stir::vs::VerificationResult result = verifier.verify(request);
  if (o.json) {
    std::cout << stir::vs::to_verification_response(result).dump() << "\n";
  } else if (result.passed()) {
    std::cout << result.verstat << "\n";
  } else {
    std::cout << result.verstat;
    if (result.reasoncode) {
      std::cout << " " << *result.reasoncode << " " << result.reasontext << ": "
                << result.reasondesc << " (" << result.error_case_id() << ")";
    }
    std::cout << "\n";
  }
  if (!result.passed() && !result.detail.empty()) std::cerr << "detail: " << result.detail << "\n";
  return result.passed() ? kExitOk : kExitInvalidToken;
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
      "verify",
      "verify an Identity header: with --from/--to as a verification service (x5u fetched, "
      "chain, CRL, TNAuthList, claims); with --public-key, signature, claims and freshness only");
  add_config_option(verify_cmd, context);
  verify_cmd->add_option("--identity", verify->identity, "the Identity header value")->required();
  auto* key_option =
      verify_cmd->add_option("--public-key", verify->public_key, "signer's public key (PEM)");
  verify_cmd->add_option("--cert", verify->cert,
                         "signer's certificate chain (PEM, leaf first) instead of fetching x5u");
  auto* from_option =
      verify_cmd->add_option("--from", verify->from, "calling number of the call (full check)");
  auto* to_option = verify_cmd->add_option("--to", verify->to, "called number(s), comma-separated")
                        ->delimiter(',');
  from_option->needs(to_option);
  to_option->needs(from_option);
  key_option->excludes(from_option);
  verify_cmd
      ->add_option("--trust-anchors", verify->trust_anchors,
                   "STI-PA root(s), a PEM file or folder (default: [verifier] in config)")
      ->needs(from_option);
  verify_cmd->add_flag("--json", verify->json, "print the verificationResponse JSON")
      ->needs(from_option);
  verify_cmd->add_option("--time", verify->time,
                         "verifier clock, seconds since 1970 (default: now)");
  verify_cmd
      ->add_option("--max-age", verify->max_age,
                   "allowed iat age and future skew, seconds (--public-key check)")
      ->capture_default_str();
  verify_cmd->callback([&context, verify] {
    if (!verify->from.empty()) {
      context.status = run_full_verification(context, *verify);
      return;
    }
    if (verify->public_key.empty() == verify->cert.empty()) {
      throw CLI::ValidationError(
          "give --from and --to for a full verification, or exactly one of --public-key and "
          "--cert");
    }
    context.status = run_key_check(*verify);
  });
}

}  // namespace sks::cli
