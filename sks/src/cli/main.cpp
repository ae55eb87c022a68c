// The `sks` command line: token set-up, key management, signing and
// verification for operators and scripts. Every subcommand has --help;
// failures print one line to stderr and exit with the code stir/exit_codes.h
// gives their kind.
#include <iostream>

#include "cli_support.h"
#include "stir/exit_codes.h"

namespace sks::cli {
namespace {

int run(int argc, char** argv) {
  CLI::App app{"sks: the Secure Key Store for STIR/SHAKEN. ES256 keys live in a PKCS#11 token."};
  app.require_subcommand(1);
  Context context;

  add_token_commands(app, context);
  auto* keys = app.add_subcommand("keys", "manage ES256 keys in the token");
  keys->require_subcommand(1);
  add_key_commands(*keys, context);
  add_cert_commands(*keys, context);
  add_passport_commands(app, context);
  add_serve_command(app, context);
  auto* rotate =
      app.add_subcommand("rotate", "rotate the keys and certificates of signing profiles");
  rotate->require_subcommand(1);
  add_rotate_commands(*rotate, context);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return context.status;
}

}  // namespace
}  // namespace sks::cli

int main(int argc, char** argv) {
  return stir::run_main("sks", [&] { return sks::cli::run(argc, argv); });
}
