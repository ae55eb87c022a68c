// The `tn-cr` command line: the TN certificate repository's HTTPS server and
// the publisher that key rotation uses. Every subcommand has --help;
// failures print one line to stderr and exit with the code stir/exit_codes.h
// gives their kind.
#include <iostream>

#include "cli.h"
#include "stir/exit_codes.h"

namespace tn_cr::cli {

void add_repository_options(CLI::App* command, Context& context, bool with_dir) {
  auto* config = command->add_option(
      "--config", context.config_flag,
      std::string("config file (default: $TN_CR_CONFIG, else ") + kDefaultConfigPath + ")");
  if (with_dir) {
    command->add_option("--dir", context.dir_flag, "the repository folder (instead of --config)")
        ->excludes(config);
  }
}

Config load_cli_config(const Context& context) {
  return load_config(resolve_config_path(context.config_flag));
}

Repository open_repository(const Context& context) {
  if (!context.dir_flag.empty()) return Repository(context.dir_flag);
  return Repository(load_cli_config(context).repository_dir);
}

namespace {

int run(int argc, char** argv) {
  CLI::App app{
      "tn-cr: the TN certificate repository. Serves immutable STIR/SHAKEN certificate "
      "chains at their x5u URLs and publishes new ones atomically."};
  app.require_subcommand(1);
  Context context;
  add_server_commands(app, context);
  add_repository_commands(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return kExitOk;
}

}  // namespace
}  // namespace tn_cr::cli

int main(int argc, char** argv) {
  return stir::run_main("tn-cr", [&] { return tn_cr::cli::run(argc, argv); });
}
