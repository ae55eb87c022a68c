// The `sks` command line: token set-up, key management, signing and
// verification for operators and scripts. Every subcommand has --help;
// failures print one line to stderr and exit with the code exit_codes.h
// gives their kind.
#include <openssl/rand.h>

#include <CLI/CLI.hpp>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "exit_codes.h"
#include "sks/config.h"
#include "sks/files.h"
#include "sks/hsm.h"
#include "sks/pkcs11/token.h"
#include "stir/error.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verify.h"

namespace sks::cli {
namespace {

using stir::Error;
using stir::ErrorCode;
namespace fs = std::filesystem;

std::string hex(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (auto b : bytes) {
    text += kDigits[b >> 4];
    text += kDigits[b & 15];
  }
  return text;
}

// A random (version 4) UUID for origid when the caller gives none.
std::string random_uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw Error(ErrorCode::kCrypto, "RAND_bytes failed");
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  const std::string h = hex(std::vector<std::uint8_t>(b, b + 16));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

nlohmann::json key_json(const p11::KeyInfo& key) {
  return {{"label", key.label},         {"id", hex(key.id)},
          {"curve", key.curve},         {"sensitive", key.sensitive},
          {"extractable", key.extractable}, {"public_key", key.has_public_key}};
}

std::unique_ptr<Hsm> open_hsm(const std::string& config_flag) {
  const Config config = load_config(resolve_config_path(config_flag));
  return Hsm::open(config.token);
}

// ---- sks init ---------------------------------------------------------------

struct InitOptions {
  std::string dir;
  std::string label = "sks";
  std::string module = "/usr/lib/softhsm/libsofthsm2.so";
};

int run_init(const InitOptions& o) {
  const std::string dir = fs::absolute(o.dir).lexically_normal().string();
  ensure_directory(dir, 0700);
  ensure_directory(dir + "/tokens", 0700);
  const std::string softhsm_conf = dir + "/softhsm2.conf";
  if (!fs::exists(softhsm_conf)) {
    write_file_atomic(softhsm_conf,
                      "# SoftHSM2 configuration for a development token, made by `sks init`.\n"
                      "directories.tokendir = " +
                          dir +
                          "/tokens\n"
                          "objectstore.backend = file\n"
                          "log.level = ERROR\n"
                          "slots.removable = false\n",
                      0600);
  }
  const Secret so_pin = ensure_pin_file(dir + "/so.pin");
  const Secret user_pin = ensure_pin_file(dir + "/user.pin");

  ::setenv("SOFTHSM2_CONF", softhsm_conf.c_str(), 1);
  p11::Module module(o.module);
  auto token = p11::find_token(module, {o.label, {}});
  const bool created = !token;
  if (!token) token = p11::init_token(module, o.label, so_pin, user_pin);

  const std::string config_path = dir + "/sks.toml";
  if (!fs::exists(config_path)) {
    write_file_atomic(config_path,
                      render_dev_config(o.module, o.label, dir + "/user.pin", softhsm_conf), 0600);
  }
  std::cerr << (created ? "created" : "found") << " token label=" << token->label
            << " serial=" << token->serial << "\n";
  std::cout << config_path << "\n";
  return kExitOk;
}

// ---- sks check-config ---------------------------------------------------------

int run_check_config(const std::string& config_flag, bool login) {
  const std::string path = resolve_config_path(config_flag);
  const Config config = load_config(path);
  // The PIN source is checked (exists, mode) without printing the PIN.
  read_pin(config.token.pin);
  std::cout << "config " << path << " is valid: module " << config.token.module << ", token "
            << (config.token.label.empty() ? "serial " + config.token.serial
                                           : "label " + config.token.label)
            << "\n";
  if (login) {
    auto hsm = Hsm::open(config.token);
    std::cout << "token " << hsm->token().description().label << " (serial "
              << hsm->token().description().serial << ") logged in, "
              << hsm->pool().size() << " sessions\n";
  }
  return kExitOk;
}

// ---- sks keys ... -------------------------------------------------------------

int run_keys_generate(const std::string& config_flag, const std::string& label, bool if_missing,
                      bool json) {
  auto hsm = open_hsm(config_flag);
  std::optional<p11::KeyInfo> key;
  bool created = false;
  if (if_missing) key = hsm->keys().find(label);
  if (!key) {
    key = hsm->keys().generate(label);
    created = true;
  }
  if (json) {
    auto out = key_json(*key);
    out["created"] = created;
    std::cout << out.dump() << "\n";
  } else {
    std::cout << (created ? "generated " : "exists ") << key->label << " id=" << hex(key->id)
              << " " << key->curve << "\n";
  }
  return kExitOk;
}

int run_keys_list(const std::string& config_flag, bool json) {
  auto hsm = open_hsm(config_flag);
  const auto keys = hsm->keys().list();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& key : keys) out.push_back(key_json(key));
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  for (const auto& key : keys) {
    std::cout << key.label << "\tid=" << hex(key.id) << "\t" << key.curve
              << (key.sensitive ? "\tsensitive" : "\tNOT-SENSITIVE")
              << (key.extractable ? "\tEXTRACTABLE" : "\tnot-extractable")
              << (key.has_public_key ? "\tpublic-key" : "\tno-public-key") << "\n";
  }
  return kExitOk;
}

int run_keys_public(const std::string& config_flag, const std::string& label,
                    const std::string& out) {
  auto hsm = open_hsm(config_flag);
  const std::string pem = hsm->keys().public_key_pem(label);
  if (out.empty()) {
    std::cout << pem;
  } else {
    write_file_atomic(out, pem, 0644);
  }
  return kExitOk;
}

int run_keys_destroy(const std::string& config_flag, const std::string& label, bool yes) {
  if (!yes) {
    throw Error(ErrorCode::kInvalidArgument,
                "destroying key '" + label + "' cannot be undone; add --yes to confirm");
  }
  auto hsm = open_hsm(config_flag);
  hsm->keys().destroy(label);
  std::cout << "destroyed " << label << "\n";
  return kExitOk;
}

// ---- sks sign -----------------------------------------------------------------

struct SignOptions {
  std::string label;
  std::string x5u;
  std::string orig;
  std::vector<std::string> dest;
  std::string attest;
  std::string origid;
  std::optional<std::int64_t> iat;
};

int run_sign(const std::string& config_flag, const SignOptions& o) {
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
  auto hsm = open_hsm(config_flag);
  auto key = hsm->keys().signing_key(o.label);
  const std::string jws = stir::sign_passport(header, claims, *key);
  std::cout << stir::compose_identity_header(jws, o.x5u) << "\n";
  return kExitOk;
}

// ---- sks verify ---------------------------------------------------------------

struct VerifyCliOptions {
  std::string identity;
  std::string public_key;
  std::string cert;
  std::optional<std::int64_t> time;
  std::int64_t max_age = 60;
};

int run_verify(const VerifyCliOptions& o) {
  const stir::EvpPkeyPtr key = o.cert.empty()
                                   ? stir::load_public_key_file(o.public_key)
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

int run(int argc, char** argv) {
  CLI::App app{"sks: the Secure Key Store for STIR/SHAKEN. ES256 keys live in a PKCS#11 token."};
  app.require_subcommand(1);
  std::string config_flag;
  auto add_config = [&config_flag](CLI::App* sub) {
    sub->add_option("--config", config_flag,
                    std::string("config file (default: $SKS_CONFIG, else ") + kDefaultConfigPath +
                        ")");
  };
  int status = kExitOk;

  InitOptions init;
  auto* init_cmd = app.add_subcommand(
      "init", "development set-up: a SoftHSM2 token, random PINs in 0600 files, a config file");
  init_cmd->add_option("--dir", init.dir, "folder for the token, its PINs and sks.toml")
      ->required();
  init_cmd->add_option("--label", init.label, "token label")->capture_default_str();
  init_cmd->add_option("--module", init.module, "SoftHSM2 module")->capture_default_str();
  init_cmd->callback([&] { status = run_init(init); });

  bool login = false;
  auto* check_cmd = app.add_subcommand("check-config", "validate the config file");
  add_config(check_cmd);
  check_cmd->add_flag("--login", login, "also load the module and log in to the token");
  check_cmd->callback([&] { status = run_check_config(config_flag, login); });

  auto* keys = app.add_subcommand("keys", "manage ES256 keys in the token");
  keys->require_subcommand(1);
  std::string label;
  bool json = false;

  bool if_missing = false;
  auto* generate = keys->add_subcommand("generate", "generate a P-256 key pair in the token");
  add_config(generate);
  generate->add_option("--label", label, "key label (CKA_LABEL)")->required();
  generate->add_flag("--if-missing", if_missing, "succeed without change if the key exists");
  generate->add_flag("--json", json, "machine-readable output");
  generate->callback([&] { status = run_keys_generate(config_flag, label, if_missing, json); });

  auto* list = keys->add_subcommand("list", "list the private keys in the token");
  add_config(list);
  list->add_flag("--json", json, "machine-readable output");
  list->callback([&] { status = run_keys_list(config_flag, json); });

  std::string out;
  auto* pub = keys->add_subcommand("public", "print a key's public half as PEM");
  add_config(pub);
  pub->add_option("--label", label, "key label")->required();
  pub->add_option("--out", out, "write to this file instead of stdout");
  pub->callback([&] { status = run_keys_public(config_flag, label, out); });

  bool yes = false;
  auto* destroy = keys->add_subcommand("destroy", "destroy a key pair in the token");
  add_config(destroy);
  destroy->add_option("--label", label, "key label")->required();
  destroy->add_flag("--yes", yes, "confirm: this cannot be undone");
  destroy->callback([&] { status = run_keys_destroy(config_flag, label, yes); });

  SignOptions sign;
  auto* sign_cmd = app.add_subcommand("sign", "sign a SHAKEN PASSporT; prints the Identity header");
  add_config(sign_cmd);
  sign_cmd->add_option("--label", sign.label, "key label")->required();
  sign_cmd->add_option("--x5u", sign.x5u, "certificate URL (also the info parameter)")
      ->required();
  sign_cmd->add_option("--orig", sign.orig, "calling number, canonical (digits only)")->required();
  sign_cmd->add_option("--dest", sign.dest, "called number(s), comma-separated")
      ->required()
      ->delimiter(',');
  sign_cmd->add_option("--attest", sign.attest, "attestation level")
      ->required()
      ->check(CLI::IsMember({"A", "B", "C"}));
  sign_cmd->add_option("--origid", sign.origid, "origination id (UUID; default: a random one)");
  sign_cmd->add_option("--iat", sign.iat, "issued-at, seconds since 1970 (default: now)");
  sign_cmd->callback([&] { status = run_sign(config_flag, sign); });

  VerifyCliOptions verify;
  auto* verify_cmd = app.add_subcommand(
      "verify", "check an Identity header's signature, SHAKEN claims and freshness");
  verify_cmd->add_option("--identity", verify.identity, "the Identity header value")->required();
  auto* key_option =
      verify_cmd->add_option("--public-key", verify.public_key, "signer's public key (PEM)");
  auto* cert_option =
      verify_cmd->add_option("--cert", verify.cert, "signer's certificate (PEM, leaf first)");
  key_option->excludes(cert_option);
  verify_cmd->add_option("--time", verify.time, "verifier clock, seconds since 1970 (default: now)");
  verify_cmd->add_option("--max-age", verify.max_age, "allowed iat age and future skew, seconds")
      ->capture_default_str();
  verify_cmd->callback([&] {
    if (verify.public_key.empty() == verify.cert.empty()) {
      throw CLI::ValidationError("give exactly one of --public-key and --cert");
    }
    status = run_verify(verify);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return status;
}

}  // namespace
}  // namespace sks::cli

int main(int argc, char** argv) {
  try {
    return sks::cli::run(argc, argv);
  } catch (const stir::Error& e) {
    std::cerr << "sks: " << e.what() << "\n";
    return sks::cli::exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "sks: internal error: " << e.what() << "\n";
    return 70;
  }
}
