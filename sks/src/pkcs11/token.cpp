#include "sks/pkcs11/token.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "stir/error.h"

namespace sks::p11 {

using stir::Error;
using stir::ErrorCode;

namespace {

// PKCS#11 pads fixed-size text fields with spaces.
std::string trim_padded(const unsigned char* field, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(field), size);
  const auto end = text.find_last_not_of(' ');
  text.erase(end == std::string::npos ? 0 : end + 1);
  return text;
}

std::vector<CK_SLOT_ID> slots_with_token(const Module& module) {
  CK_FUNCTION_LIST* api = module.api();
  CK_ULONG count = 0;
  check(module.call("C_GetSlotList", [&] { return api->C_GetSlotList(CK_TRUE, nullptr, &count); }),
        "C_GetSlotList");
  std::vector<CK_SLOT_ID> slots(count);
  if (count != 0) {
    check(module.call("C_GetSlotList",
                      [&] { return api->C_GetSlotList(CK_TRUE, slots.data(), &count); }),
          "C_GetSlotList");
  }
  slots.resize(count);
  return slots;
}

// SoftHSM2 rewrites its token file at every C_Login (the PIN counters): it
// truncates the file, then locks and writes it. Another process reading it
// in that moment gets CKR_GENERAL_ERROR from C_GetTokenInfo or C_Login, or
// token info without its label and flags: an `sks` command run while
// `sks serve` (or a second instance on the same token) logs in. Seen in CI.
// A read that found the file half written marks SoftHSM2's copy of the token
// invalid until the module reads its files again (C_Initialize), so a retry
// in place helps only with an empty read; the callers below that can
// reinitialize the module do so. Tries are 10, 20, 40, ... 320 ms apart,
// 630 ms in all. Measured with eight processes running `sks keys list` at
// once on one token on a loaded 2-core machine: the old code (four tries,
// in place) lost one command in 230, this one about one in 1,600; with three
// processes neither lost any of 1,200. A wrong PIN is never retried.
constexpr int kTokenFileAttempts = 7;
constexpr int kInPlaceAttempts = 2;

void token_file_backoff(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(10 << (attempt - 1)));
}

template <typename Call>
CK_RV retry_general_error(Call call) {
  CK_RV rv = call();
  for (int attempt = 1; rv == CKR_GENERAL_ERROR && attempt < kInPlaceAttempts; ++attempt) {
    token_file_backoff(attempt);
    rv = call();
  }
  return rv;
}

TokenDescription describe(const Module& module, CK_SLOT_ID slot) {
  CK_TOKEN_INFO info{};
  const CK_RV rv = retry_general_error([&] {
    info = CK_TOKEN_INFO{};
    return module.call("C_GetTokenInfo", [&] { return module.api()->C_GetTokenInfo(slot, &info); });
  });
  check(rv, "C_GetTokenInfo");
  TokenDescription d;
  d.slot = slot;
  d.label = trim_padded(info.label, sizeof info.label);
  d.serial = trim_padded(info.serialNumber, sizeof info.serialNumber);
  d.manufacturer = trim_padded(info.manufacturerID, sizeof info.manufacturerID);
  d.model = trim_padded(info.model, sizeof info.model);
  d.flags = info.flags;
  return d;
}

std::string describe_selector(const TokenSelector& s) {
  std::string text;
  if (!s.label.empty()) text += "label '" + s.label + "'";
  if (!s.serial.empty()) text += (text.empty() ? "" : " and ") + ("serial '" + s.serial + "'");
  return text;
}

}  // namespace

std::vector<TokenDescription> list_tokens(const Module& module) {
  std::vector<TokenDescription> tokens;
  for (CK_SLOT_ID slot : slots_with_token(module)) {
    tokens.push_back(describe(module, slot));
  }
  return tokens;
}

std::optional<TokenDescription> find_token(const Module& module, const TokenSelector& selector) {
  if (selector.label.empty() && selector.serial.empty()) {
    throw Error(ErrorCode::kConfig, "a token is selected by label or serial; neither is set");
  }
  std::optional<TokenDescription> found;
  for (auto& token : list_tokens(module)) {
    if ((token.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    if (!selector.label.empty() && token.label != selector.label) continue;
    if (!selector.serial.empty() && token.serial != selector.serial) continue;
    if (found) {
      throw Error(ErrorCode::kInvalidArgument, "more than one token has " +
                                                   describe_selector(selector) +
                                                   "; select it by serial as well");
    }
    found = std::move(token);
  }
  return found;
}

TokenDescription init_token(const Module& module, const std::string& label, const Secret& so_pin,
                            const Secret& user_pin) {
  if (label.empty() || label.size() > 32) {
    throw Error(ErrorCode::kInvalidArgument, "a token label has 1 to 32 characters");
  }
  if (find_token(module, {label, {}})) {
    throw Error(ErrorCode::kAlreadyExists, "a token labelled '" + label + "' already exists");
  }
  CK_FUNCTION_LIST* api = module.api();
  std::optional<CK_SLOT_ID> free_slot;
  for (const auto& token : list_tokens(module)) {
    if ((token.flags & CKF_TOKEN_INITIALIZED) == 0) {
      free_slot = token.slot;
      break;
    }
  }
  if (!free_slot) throw Error(ErrorCode::kNotFound, "no free token slot to initialise");

  unsigned char padded[32];
  std::fill(std::begin(padded), std::end(padded), ' ');
  std::copy(label.begin(), label.end(), padded);
  check(module.call("C_InitToken",
                    [&] {
                      return api->C_InitToken(
                          *free_slot,
                          reinterpret_cast<unsigned char*>(const_cast<char*>(so_pin.view().data())),
                          so_pin.view().size(), padded);
                    }),
        "C_InitToken", label);

  // SoftHSM gives the new token another slot id: find it again by label.
  auto token = find_token(module, {label, {}});
  if (!token) throw Error(ErrorCode::kInternal, "token '" + label + "' vanished after C_InitToken");
  Session session(module, token->slot);
  check(module.call("C_Login",
                    [&] {
                      return api->C_Login(
                          session.handle(), CKU_SO,
                          reinterpret_cast<unsigned char*>(const_cast<char*>(so_pin.view().data())),
                          so_pin.view().size());
                    }),
        "C_Login", "security officer");
  const CK_RV rv = module.call("C_InitPIN", [&] {
    return api->C_InitPIN(
        session.handle(),
        reinterpret_cast<unsigned char*>(const_cast<char*>(user_pin.view().data())),
        user_pin.view().size());
  });
  // Set-up only: no pool shares this login.
  module.call("C_Logout", [&] { return api->C_Logout(session.handle()); });
  check(rv, "C_InitPIN");
  return describe(module, token->slot);
}

Session::Session(const Module& module, CK_SLOT_ID slot) : module_(&module) {
  check(module.call("C_OpenSession",
                    [&] {
                      return module.api()->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                         nullptr, nullptr, &handle_);
                    }),
        "C_OpenSession");
}

Session::Session(Session&& other) noexcept
    : module_(other.module_), handle_(std::exchange(other.handle_, CK_INVALID_HANDLE)) {}

Session::~Session() {
  if (handle_ == CK_INVALID_HANDLE) return;
  try {
    module_->call("C_CloseSession", [&] { return module_->api()->C_CloseSession(handle_); });
  } catch (const std::exception&) {  // the module is stuck in another call: leave it
  }
}

namespace {
// find_token, read again from the files after a token file was caught half
// written (CKR_GENERAL_ERROR) or a token was missing: perhaps read while
// another process wrote it.
std::optional<TokenDescription> find_token_settled(const Module& module,
                                                   const TokenSelector& selector) {
  for (int attempt = 1;; ++attempt) {
    try {
      auto token = find_token(module, selector);
      if (token || attempt >= kTokenFileAttempts) return token;
    } catch (const Pkcs11Error& e) {
      if (e.rv() != CKR_GENERAL_ERROR || attempt >= kTokenFileAttempts) throw;
    }
    token_file_backoff(attempt);
    module.reinitialize();
  }
}

TokenDescription require_token(const Module& module, const TokenSelector& selector) {
  auto token = find_token_settled(module, selector);
  if (!token && list_tokens(module).empty()) {
    // Not one slot holds a token: the HSM is down or unreachable (a remote
    // module such as p11-kit-client.so, or a network HSM's client, lists
    // nothing while its server cannot be reached), not a wrong label.
    throw Error(ErrorCode::kUnavailable,
                "the module lists no token at all (is the HSM, or the server behind a remote "
                "module, reachable?): no token with " +
                    describe_selector(selector) + " in " + module.path());
  }
  if (!token) {
    throw Error(ErrorCode::kNotFound, "no initialised token with " + describe_selector(selector) +
                                          " in " + module.path());
  }
  return *token;
}
}  // namespace

Token::Token(const Module& module, const TokenSelector& selector)
    : module_(module), selector_(selector), description_(require_token(module, selector)) {
  anchor_.emplace(module, description_.slot);
}

void Token::reconnect() {
  anchor_.reset();  // errors ignored: after a device reset it is gone anyway
  module_.reinitialize();
  description_ = require_token(module_, selector_);
  anchor_.emplace(module_, description_.slot);
  relogin();
}

void Token::login(const Secret& pin) {
  std::lock_guard lock(login_mutex_);
  CK_RV rv = call_login(pin);
  // Flags read from a token file another process was rewriting stay wrong
  // until the module reads the files again (C_Initialize).
  for (int attempt = 1; (rv == CKR_USER_PIN_NOT_INITIALIZED || rv == CKR_GENERAL_ERROR) &&
                        attempt < kTokenFileAttempts;
       ++attempt) {
    token_file_backoff(attempt);
    anchor_.reset();
    module_.reinitialize();
    description_ = require_token(module_, selector_);
    anchor_.emplace(module_, description_.slot);
    rv = call_login(pin);
  }
  if (rv != CKR_USER_ALREADY_LOGGED_IN) check(rv, "C_Login", "token '" + description_.label + "'");
  pin_ = pin;
}

void Token::relogin() {
  std::lock_guard lock(login_mutex_);
  if (pin_.empty()) throw Error(ErrorCode::kInternal, "relogin() before login()");
  login_locked(pin_);
}

CK_RV Token::call_login(const Secret& pin) {
  login_attempts_.fetch_add(1);
  return retry_general_error([&] {
    return module_.call("C_Login", [&] {
      return api()->C_Login(anchor_session(), CKU_USER,
                            reinterpret_cast<unsigned char*>(const_cast<char*>(pin.view().data())),
                            pin.view().size());
    });
  });
}

void Token::login_locked(const Secret& pin) {
  const CK_RV rv = call_login(pin);
  if (rv == CKR_USER_ALREADY_LOGGED_IN) return;
  check(rv, "C_Login", "token '" + description_.label + "'");
}

CK_SESSION_HANDLE Token::open_session() const {
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  check(module_.call("C_OpenSession",
                     [&] {
                       return api()->C_OpenSession(description_.slot,
                                                   CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                                   nullptr, &session);
                     }),
        "C_OpenSession");
  return session;
}

void Token::close_session(CK_SESSION_HANDLE session) const noexcept {
  try {
    module_.call("C_CloseSession", [&] { return api()->C_CloseSession(session); });
  } catch (const std::exception&) {  // the module is stuck in another call: leave it
  }
}

}  // namespace sks::p11
