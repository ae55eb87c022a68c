#include "cli_support.h"

#include <openssl/rand.h>

#include <iostream>

#include "stir/error.h"
#include "stir/hex.h"

namespace sks::cli {

void add_config_option(CLI::App* command, Context& context) {
  command->add_option(
      "--config", context.config_flag,
      std::string("config file (default: $SKS_CONFIG, else ") + kDefaultConfigPath + ")");
}

Config load_cli_config(const Context& context) {
  Config config = load_config(resolve_config_path(context.config_flag));
  for (const auto& warning : config.warnings) std::cerr << "sks: warning: " << warning << "\n";
  return config;
}

std::unique_ptr<Hsm> open_hsm(const Context& context) {
  return Hsm::open(load_cli_config(context).token);
}

std::string random_uuid() {
  std::vector<std::uint8_t> b(16);
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
    throw stir::Error(stir::ErrorCode::kCrypto, "RAND_bytes failed");
  }
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  const std::string h = stir::hex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

}  // namespace sks::cli
