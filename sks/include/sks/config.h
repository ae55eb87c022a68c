// The sks configuration file: one TOML file with comments.
//
// Found as `--config FILE`, else $SKS_CONFIG, else kDefaultConfigPath.
// Relative paths inside the file are taken relative to the file's folder.
// Unknown keys are errors, so a typo never silently falls back to a
// default. load_config() validates everything it can without touching the
// token; errors are stir::Error(kConfig) with the file and line.
//
//   [token]
//   module = "/usr/lib/softhsm/libsofthsm2.so"  # PKCS#11 module path
//   label = "sks"                               # or serial = "..."; never a slot number
//   pin_file = "user.pin"                       # mode 0600; or pin_env = "SKS_PIN"
//   sessions = 0                                # session pool size; 0 = CPU cores
//   [token.module_env]                          # set before the module loads
//   SOFTHSM2_CONF = "/var/lib/sks/softhsm2.conf"
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "sks/secret.h"

namespace sks {

inline constexpr const char* kDefaultConfigPath = "/etc/sks/sks.toml";

struct TokenConfig {
  std::string module;        // absolute path of the PKCS#11 module
  std::string label;         // token label
  std::string serial;        // token serial (alternative or addition to label)
  PinSource pin;             // where the user PIN comes from
  std::size_t sessions = 0;  // session pool size; 0 = number of CPU cores
  // Environment for the module (SOFTHSM2_CONF, ChrystokiConfigurationPath,
  // ...), used verbatim: give absolute paths.
  std::map<std::string, std::string> module_env;
};

struct Config {
  std::string path;  // the file it was read from
  TokenConfig token;
};

// Which file to read: `cli_path` if given, else $SKS_CONFIG, else the default.
std::string resolve_config_path(const std::string& cli_path);

Config load_config(const std::string& path);

// Sets the module environment. Call before loading the module and before
// any other thread starts (setenv is not thread-safe).
void apply_module_env(const TokenConfig& token);

// The text of a config file for a development token (used by `sks init`).
std::string render_dev_config(const std::string& module, const std::string& label,
                              const std::string& pin_file, const std::string& softhsm2_conf);

}  // namespace sks
