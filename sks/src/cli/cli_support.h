// What every `sks` subcommand shares. Each group of subcommands lives in its
// own file and registers itself through one add_*_commands function, so a
// new capability adds a file and one line in main.cpp.
//
// A subcommand's callback runs at most once per process, on the main thread.
// It reports failure by throwing stir::Error (main turns it into the exit
// code) or by setting Context::status (used by `verify` for "not valid").
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sks/config.h"
#include "sks/hsm.h"
#include "stir/exit_codes.h"
#include "stir/files.h"

namespace sks::cli {

using stir::ensure_directory;
using stir::exit_code_for;
using stir::kExitInvalidToken;
using stir::kExitOk;
using stir::kExitUsage;
using stir::write_file_atomic;

struct Context {
  std::string config_flag;  // --config, shared by every subcommand that has it
  int status = kExitOk;     // exit status set by the subcommand that ran
};

// Adds `--config FILE` to a subcommand.
void add_config_option(CLI::App* command, Context& context);
// The config named by --config, $SKS_CONFIG or the default path.
Config load_cli_config(const Context& context);
// Loads the config, then the module, and logs in to the token.
std::unique_ptr<Hsm> open_hsm(const Context& context);

// A random (version 4) UUID.
std::string random_uuid();

void add_token_commands(CLI::App& app, Context& context);      // init, check-config
void add_key_commands(CLI::App& keys, Context& context);       // keys generate|list|public|destroy
void add_cert_commands(CLI::App& keys, Context& context);      // keys csr|install-cert|show-cert
void add_passport_commands(CLI::App& app, Context& context);   // sign, verify
void add_serve_command(CLI::App& app, Context& context);       // serve
void add_rotate_commands(CLI::App& rotate, Context& context);  // rotate status|plan|start|...

}  // namespace sks::cli
