#include "sks/hsm.h"

#include "stir/error.h"

namespace sks {

namespace {
p11::Token& logged_in(p11::Token& token, const Secret& pin) {
  token.login(pin);
  return token;
}
}  // namespace

namespace {
p11::CallPolicy call_policy(const TokenConfig& config) {
  p11::CallPolicy policy = p11::CallPolicy::for_module(config.module);
  if (config.calls != "auto") policy.serial = config.calls == "serial";
  policy.timeout = std::chrono::milliseconds(config.call_timeout_ms);
  return policy;
}
}  // namespace

Hsm::Hsm(const TokenConfig& config, const Secret& pin)
    : config_(config),
      module_(config.module, call_policy(config)),
      token_(module_, {config.label, config.serial}),
      pool_(logged_in(token_, pin), config.sessions),
      keys_(pool_) {
  keys_.signature_check().configure(config.signature_check, config.signature_check_every,
                                    std::chrono::seconds(config.signature_check_strict_s));
}

void Hsm::start_recovery(p11::TokenWatchdog::Wedged on_wedged) {
  if (!recovery_) recovery_ = std::make_unique<p11::TokenRecovery>(token_, pool_, keys_);
  if (!watchdog_) {
    watchdog_ = std::make_unique<p11::TokenWatchdog>(module_, pool_.breaker(),
                                                     std::chrono::seconds(config_.wedged_exit_s),
                                                     std::move(on_wedged));
  }
}

bool Hsm::quiesce(std::chrono::milliseconds timeout) {
  watchdog_.reset();  // its thread never waits for the module
  if (recovery_ && !recovery_->stop_for(timeout)) return false;
  recovery_.reset();
  return !module_.oldest_call();
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
