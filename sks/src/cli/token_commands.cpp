// sks init (development token set-up) and sks check-config.
#include <filesystem>
#include <iostream>

#include "cli_support.h"
#include "sks/pkcs11/token.h"
#include "stir/files.h"

namespace sks::cli {
namespace {

namespace fs = std::filesystem;

struct InitOptions {
  std::string dir;
  std::string label = "sks";
  std::string module = "/usr/lib/softhsm/libsofthsm2.so";
};

// Idempotent: every step keeps what is already there, so a second run
// changes nothing and prints the same config path.
void run_init(const InitOptions& o) {
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
}

void run_check_config(const Context& context, bool login) {
  const Config config = load_cli_config(context);
  if (config.token.module.empty()) {
    std::cout << "config " << config.path << " is valid: no token (verification only)\n";
    return;
  }
  // The PIN source is checked (exists, mode) without printing the PIN.
  read_pin(config.token.pin);
  std::cout << "config " << config.path << " is valid: module " << config.token.module << ", token "
            << (config.token.label.empty() ? "serial " + config.token.serial
                                           : "label " + config.token.label)
            << "\n";
  if (login) {
    auto hsm = Hsm::open(config.token);
    std::cout << "token " << hsm->token().description().label << " (serial "
              << hsm->token().description().serial << ") logged in, " << hsm->pool().size()
              << " sessions\n";
  }
}

}  // namespace

void add_token_commands(CLI::App& app, Context& context) {
  auto init = std::make_shared<InitOptions>();
  auto* init_cmd = app.add_subcommand(
      "init", "development set-up: a SoftHSM2 token, random PINs in 0600 files, a config file");
  init_cmd->add_option("--dir", init->dir, "folder for the token, its PINs and sks.toml")
      ->required();
  init_cmd->add_option("--label", init->label, "token label")->capture_default_str();
  init_cmd->add_option("--module", init->module, "SoftHSM2 module")->capture_default_str();
  init_cmd->callback([init] { run_init(*init); });

  auto login = std::make_shared<bool>(false);
  auto* check = app.add_subcommand("check-config", "validate the config file");
  add_config_option(check, context);
  check->add_flag("--login", *login, "also load the module and log in to the token");
  check->callback([&context, login] { run_check_config(context, *login); });
}

}  // namespace sks::cli
