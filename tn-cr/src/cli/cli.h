// What every `tn-cr` subcommand shares. Each group of subcommands registers
// itself through one add_*_commands function.
//
// A subcommand's callback runs at most once per process, on the main thread,
// and reports failure by throwing stir::Error; main() turns it into the exit
// code stir/exit_codes.h gives its kind.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "stir/exit_codes.h"
#include "tn_cr/config.h"
#include "tn_cr/repository.h"

namespace tn_cr::cli {

using stir::exit_code_for;
using stir::kExitOk;
using stir::kExitUsage;

struct Context {
  std::string config_flag;  // --config
  std::string dir_flag;     // --dir: the repository folder, without a config file
};

// Adds `--config FILE` to a subcommand; with `with_dir`, also `--dir DIR`
// (the two exclude each other).
void add_repository_options(CLI::App* command, Context& context, bool with_dir);

// The config named by --config, $TN_CR_CONFIG or the default path.
Config load_cli_config(const Context& context);

// The repository named by --dir, else by the config file.
Repository open_repository(const Context& context);

void add_repository_commands(CLI::App& app, Context& context);  // publish, unpublish, list
void add_server_commands(CLI::App& app, Context& context);      // serve, check-config

}  // namespace tn_cr::cli
