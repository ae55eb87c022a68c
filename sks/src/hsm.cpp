#include "sks/hsm.h"

#include "stir/error.h"

namespace sks {

namespace {
p11::Token& logged_in(p11::Token& token, const Secret& pin) {
  token.login(pin);
  return token;
}
}  // namespace

Hsm::Hsm(const TokenConfig& config, const Secret& pin)
    : module_(config.module),
      token_(module_, {config.label, config.serial}),
      pool_(logged_in(token_, pin), config.sessions),
      keys_(pool_) {
  keys_.signature_check().configure(config.signature_check, config.signature_check_every,
                                    std::chrono::seconds(config.signature_check_strict_s));
}

void Hsm::start_recovery() {
  if (!recovery_) recovery_ = std::make_unique<p11::TokenRecovery>(token_, pool_, keys_);
}

std::unique_ptr<Hsm> Hsm::open(const TokenConfig& config) {
  if (config.module.empty()) {
    throw stir::Error(stir::ErrorCode::kConfig, "this needs a token: the config has no [token]");
  }
  // Read the PIN first: a bad PIN file fails before the module is touched.
  const Secret pin = read_pin(config.pin);
  apply_module_env(config);
  return std::unique_ptr<Hsm>(new Hsm(config, pin));
}

}  // namespace sks
