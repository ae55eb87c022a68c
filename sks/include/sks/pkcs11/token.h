// A token found by label or serial (never by slot number: SoftHSM renumbers
// slots when a token is initialised), its anchor session and its login.
//
// Ownership: Token borrows the Module (which must outlive it) and owns the
// anchor session. Login is per application in PKCS#11, and SoftHSM logs the
// application out when its last session closes; the anchor session stays
// open for the Token's lifetime so pool sessions never lose the login.
// Threads: all members are safe to call concurrently.
// Errors: stir::Error; a wrong PIN is kPinIncorrect and is never retried.
// CKR_GENERAL_ERROR from C_GetTokenInfo or C_Login, and a token not found,
// are tried 4 times in about 60 ms first: SoftHSM2 gives them to a process
// that reads its token file while another process's login rewrites it.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sks/pkcs11/module.h"
#include "sks/secret.h"

namespace sks::p11 {

// Which token to use. With both set, both must match.
struct TokenSelector {
  std::string label;
  std::string serial;
};

struct TokenDescription {
  CK_SLOT_ID slot = 0;
  std::string label;
  std::string serial;
  std::string manufacturer;
  std::string model;
  CK_FLAGS flags = 0;
};

// Every present token, initialised or not.
std::vector<TokenDescription> list_tokens(const Module& module);

// The one initialised token matching `selector`; nullopt when none matches.
// Throws kInvalidArgument when several tokens match (give the serial).
std::optional<TokenDescription> find_token(const Module& module, const TokenSelector& selector);

// Development set-up: initialises a free token slot with `label`, the SO PIN
// and the user PIN (C_InitToken, C_InitPIN). Returns the new token.
TokenDescription init_token(const Module& module, const std::string& label, const Secret& so_pin,
                            const Secret& user_pin);

// An open PKCS#11 session (C_OpenSession, read-write). The destructor calls
// C_CloseSession and never C_Logout, which would log out every session.
class Session {
 public:
  Session(const Module& module, CK_SLOT_ID slot);
  ~Session();
  Session(Session&& other) noexcept;
  Session& operator=(Session&&) = delete;
  // One owner per handle: a copy would close the session twice.
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  CK_SESSION_HANDLE handle() const noexcept { return handle_; }

 private:
  const Module* module_;
  CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
};

class Token {
 public:
  // Finds the token and opens the anchor session; does not log in.
  // Throws kNotFound when no token matches, kUnavailable when the module
  // lists no token at all (an HSM or a remote module's server that is down).
  Token(const Module& module, const TokenSelector& selector);

  // C_Login as CKU_USER; CKR_USER_ALREADY_LOGGED_IN counts as success. The
  // PIN is kept (wiped on destruction) so relogin() can restore a login the
  // token dropped; a wrong PIN is not kept and not retried. Call it before
  // any session but the anchor is open: when SoftHSM2 read the token file
  // while another process rewrote it (CKR_USER_PIN_NOT_INITIALIZED,
  // CKR_GENERAL_ERROR), it initialises the module again and retries.
  void login(const Secret& pin);
  // Logs in again with the PIN given to login(); used once after
  // CKR_USER_NOT_LOGGED_IN on the signing path.
  void relogin();

  // The token was pulled or reset: closes the anchor session, initialises
  // the module again (Module::reinitialize), finds the token again (its
  // slot may have changed), opens a new anchor session and logs in with
  // the kept PIN. The caller holds SessionPool::exclusive() and has closed
  // the pool's sessions. Throws stir::Error.
  void reconnect();

  // Opens a new read-write session on this token (C_OpenSession).
  CK_SESSION_HANDLE open_session() const;
  // Closes a session; errors are ignored (it may already be gone).
  void close_session(CK_SESSION_HANDLE session) const noexcept;

  CK_FUNCTION_LIST* api() const noexcept { return module_.api(); }
  // Calls go through module().call() (module.h: calls in flight, serial).
  const Module& module() const noexcept { return module_; }
  const TokenDescription& description() const noexcept { return description_; }
  CK_SESSION_HANDLE anchor_session() const noexcept {
    return anchor_ ? anchor_->handle() : CK_INVALID_HANDLE;
  }
  // C_Login calls made so far (tests prove a wrong PIN is tried once).
  int login_attempts() const noexcept { return login_attempts_.load(); }

 private:
  void login_locked(const Secret& pin);
  CK_RV call_login(const Secret& pin);

  const Module& module_;
  const TokenSelector selector_;
  TokenDescription description_;
  std::optional<Session> anchor_;  // empty only inside reconnect()
  std::mutex login_mutex_;
  Secret pin_;
  std::atomic<int> login_attempts_{0};
};

}  // namespace sks::p11
