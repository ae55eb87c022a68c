// sks_faultp11: a PKCS#11 module for tests that forwards every call to a
// real module (SoftHSM2) and injects faults on command, so the tests can
// break the token under a running `sks serve` and give it back.
//
// Environment (read by C_GetFunctionList, i.e. when sks loads the module):
//   FAULTP11_MODULE  the real module (default /usr/lib/softhsm/libsofthsm2.so)
//   FAULTP11_CONFIG  the control file; absent or missing file = no faults
//
// The control file is re-read whenever its mtime or size changes (checked
// on every intercepted call), one `key = value` per line, `#` comments:
//   pulled = CKR_TOKEN_NOT_PRESENT   every call that reaches the token fails
//                                    with this (or CKR_DEVICE_REMOVED, ...)
//   sign_error = CKR_DEVICE_ERROR    C_Sign fails with this CKR name ...
//   sign_error_every = 10            ... on every 10th C_Sign of a thread
//                                    (1 = all; per thread, so the caller's
//                                    immediate retry is never hit again)
//   wrong_length_every = 10          C_Sign returns 63 bytes every 10th time
//   corrupt_every = 10               C_Sign returns a 64-byte signature with
//                                    one bit flipped every 10th time
//   latency_ms = 50                  every C_Sign waits this long first
//   hang_sign = 1                    every C_Sign waits, without returning,
//                                    for as long as the file says so (a
//                                    network HSM's client waiting forever
//                                    for a reply)
//   spare_new_sessions = 1           the first C_Sign of each session is
//                                    never corrupt or short (it still
//                                    counts): faults that a fresh session
//                                    cures, so a caller's retry on one is
//                                    not hit by the next fault in turn
// With CKR_SESSION_HANDLE_INVALID or CKR_SESSION_CLOSED the session is
// really closed in the real module before the error is returned.
//
// For in-process tests, faultp11_stat("max_signs_in_flight" | "signs" |
// "session_calls" | "injected") reads counters and faultp11_reset() zeroes them (dlsym on
// the loaded module). The control file is best replaced by rename().
//
// Threads: every entry point is safe to call concurrently (the real module
// is initialised with the caller's arguments). Test-only: never production.
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace {

struct Faults {
  CK_RV pulled = CKR_OK;
  CK_RV sign_error = CKR_OK;
  unsigned long sign_error_every = 0;
  unsigned long wrong_length_every = 0;
  unsigned long corrupt_every = 0;
  unsigned long latency_ms = 0;
  unsigned long spare_new_sessions = 0;
  unsigned long hang_sign = 0;
};

const std::map<std::string, CK_RV>& known_errors() {
  static const std::map<std::string, CK_RV> names = {
      {"CKR_OK", CKR_OK},
      {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
      {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
      {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
      {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
      {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
      {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
      {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
      {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
      {"CKR_FUNCTION_REJECTED", CKR_FUNCTION_REJECTED},
  };
  return names;
}

CK_FUNCTION_LIST* real = nullptr;
CK_FUNCTION_LIST table;  // the real table with our wrappers in it
std::mutex config_mutex;
Faults current;
std::string seen_path;
struct timespec seen_mtime {};
off_t seen_size = -1;
ino_t seen_inode = 0;
thread_local unsigned long thread_signs = 0;
std::atomic<unsigned long> sign_count{0};
std::mutex unsigned_mutex;
std::set<CK_SESSION_HANDLE> unsigned_sessions;  // opened, not signed with yet
std::atomic<unsigned long> session_calls{0};
std::atomic<unsigned long> signs_in_flight{0};
std::atomic<unsigned long> max_signs_in_flight{0};
std::atomic<unsigned long> injected{0};

Faults parse(const std::string& path) {
  Faults f;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key, value;
    std::istringstream(line.substr(0, eq)) >> key;
    std::istringstream(line.substr(eq + 1)) >> value;
    const auto error = known_errors().find(value);
    const unsigned long number = std::strtoul(value.c_str(), nullptr, 10);
    if (key == "pulled" && error != known_errors().end()) f.pulled = error->second;
    if (key == "sign_error" && error != known_errors().end()) f.sign_error = error->second;
    if (key == "sign_error_every") f.sign_error_every = number;
    if (key == "wrong_length_every") f.wrong_length_every = number;
    if (key == "corrupt_every") f.corrupt_every = number;
    if (key == "latency_ms") f.latency_ms = number;
    if (key == "spare_new_sessions") f.spare_new_sessions = number;
    if (key == "hang_sign") f.hang_sign = number;
  }
  return f;
}

// The faults in force now; re-reads the control file when it changed.
Faults faults() {
  const char* path = std::getenv("FAULTP11_CONFIG");
  std::lock_guard lock(config_mutex);
  struct stat st {};
  if (path == nullptr || ::stat(path, &st) != 0) {
    current = Faults{};
    seen_size = -1;
    return current;
  }
  if (path != seen_path || st.st_ino != seen_inode || st.st_size != seen_size ||
      st.st_mtim.tv_sec != seen_mtime.tv_sec || st.st_mtim.tv_nsec != seen_mtime.tv_nsec) {
    current = parse(path);
    seen_path = path;
    seen_inode = st.st_ino;
    seen_mtime = st.st_mtim;
    seen_size = st.st_size;
  }
  return current;
}

bool every(unsigned long n, unsigned long count) { return n != 0 && count % n == 0; }

// Calls a signing request makes (all but C_GetTokenInfo, which finding
// the token also makes) count in "session_calls".
CK_RV pulled(bool session_call = true) {
  if (session_call) session_calls.fetch_add(1);
  const CK_RV rv = faults().pulled;
  if (rv != CKR_OK) injected.fetch_add(1);
  return rv;
}

CK_RV w_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void* app, CK_NOTIFY notify,
                    CK_SESSION_HANDLE* session) {
  if (CK_RV rv = pulled()) return rv;
  const CK_RV rv = real->C_OpenSession(slot, flags, app, notify, session);
  if (rv == CKR_OK && session != nullptr) {
    std::lock_guard lock(unsigned_mutex);
    unsigned_sessions.insert(*session);
  }
  return rv;
}

CK_RV w_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO* info) {
  if (CK_RV rv = pulled(false)) return rv;
  return real->C_GetTokenInfo(slot, info);
}

CK_RV w_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO* info) {
  if (CK_RV rv = pulled()) return rv;
  return real->C_GetSessionInfo(session, info);
}

CK_RV w_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, unsigned char* pin, CK_ULONG length) {
  if (CK_RV rv = pulled()) return rv;
  return real->C_Login(session, user, pin, length);
}

CK_RV w_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE* templ, CK_ULONG count) {
  if (CK_RV rv = pulled()) return rv;
  return real->C_FindObjectsInit(session, templ, count);
}

CK_RV w_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM* mechanism, CK_OBJECT_HANDLE key) {
  if (CK_RV rv = pulled()) return rv;
  return real->C_SignInit(session, mechanism, key);
}

struct InFlight {
  InFlight() {
    const unsigned long now = signs_in_flight.fetch_add(1) + 1;
    unsigned long seen = max_signs_in_flight.load();
    while (now > seen && !max_signs_in_flight.compare_exchange_weak(seen, now)) {
    }
  }
  ~InFlight() { signs_in_flight.fetch_sub(1); }
};

CK_RV w_Sign(CK_SESSION_HANDLE session, unsigned char* data, CK_ULONG data_length,
             unsigned char* signature, CK_ULONG* signature_length) {
  InFlight in_flight;
  sign_count.fetch_add(1);
  session_calls.fetch_add(1);
  Faults f = faults();
  if (f.hang_sign != 0) injected.fetch_add(1);
  while (f.hang_sign != 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    f = faults();
  }
  if (f.latency_ms != 0) std::this_thread::sleep_for(std::chrono::milliseconds(f.latency_ms));
  if (f.pulled != CKR_OK) {
    injected.fetch_add(1);
    return f.pulled;
  }
  const unsigned long n = ++thread_signs;
  if (f.sign_error != CKR_OK && every(f.sign_error_every, n)) {
    injected.fetch_add(1);
    if (f.sign_error == CKR_SESSION_HANDLE_INVALID || f.sign_error == CKR_SESSION_CLOSED) {
      real->C_CloseSession(session);  // really gone, as after a device reset
    } else {
      // End the operation C_SignInit began, as a failed C_Sign does.
      unsigned char scratch[128];
      CK_ULONG scratch_length = sizeof scratch;
      real->C_Sign(session, data, data_length, scratch, &scratch_length);
    }
    return f.sign_error;
  }
  const CK_RV rv = real->C_Sign(session, data, data_length, signature, signature_length);
  if (rv != CKR_OK || signature == nullptr || *signature_length == 0) return rv;
  bool first_of_session = false;
  {
    std::lock_guard lock(unsigned_mutex);
    first_of_session = unsigned_sessions.erase(session) != 0;
  }
  if (first_of_session && f.spare_new_sessions != 0) return rv;
  if (every(f.wrong_length_every, n)) {
    injected.fetch_add(1);
    *signature_length -= 1;
  } else if (every(f.corrupt_every, n)) {
    injected.fetch_add(1);
    signature[*signature_length / 2] ^= 0x01;
  }
  return rv;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST** list) {
  if (list == nullptr) return CKR_ARGUMENTS_BAD;
  static std::once_flag once;
  static CK_RV loaded = CKR_OK;
  std::call_once(once, [] {
    const char* path = std::getenv("FAULTP11_MODULE");
    void* library =
        dlopen(path != nullptr ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
    auto get = library != nullptr
                   ? reinterpret_cast<CK_C_GetFunctionList>(dlsym(library, "C_GetFunctionList"))
                   : nullptr;
    if (get == nullptr || get(&real) != CKR_OK) {
      loaded = CKR_GENERAL_ERROR;
      return;
    }
    table = *real;
    table.C_OpenSession = w_OpenSession;
    table.C_GetTokenInfo = w_GetTokenInfo;
    table.C_GetSessionInfo = w_GetSessionInfo;
    table.C_Login = w_Login;
    table.C_FindObjectsInit = w_FindObjectsInit;
    table.C_SignInit = w_SignInit;
    table.C_Sign = w_Sign;
  });
  if (loaded != CKR_OK) return loaded;
  *list = &table;
  return CKR_OK;
}

__attribute__((visibility("default"))) unsigned long faultp11_stat(const char* name) {
  const std::string n = name != nullptr ? name : "";
  if (n == "max_signs_in_flight") return max_signs_in_flight.load();
  if (n == "signs") return sign_count.load();
  if (n == "session_calls") return session_calls.load();
  if (n == "injected") return injected.load();
  return 0;
}

__attribute__((visibility("default"))) void faultp11_reset() {
  sign_count.store(0);
  session_calls.store(0);
  max_signs_in_flight.store(signs_in_flight.load());
  injected.store(0);
}

}  // extern "C"
