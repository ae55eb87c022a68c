#include "sks/pkcs11/module.h"

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <utility>

#include "stir/error.h"

namespace sks::p11 {

struct Module::Calls {
  std::timed_mutex turn;  // held by the one call inside a serial module
  std::mutex mutex;       // guards the rest
  std::uint64_t next_id = 0;
  struct Started {
    const char* function;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::uint64_t, Started> in_flight;  // by id: the first is the oldest
};

CallPolicy CallPolicy::for_module(const std::string& path) {
  CallPolicy policy;
  policy.serial = std::filesystem::path(path).filename() == "p11-kit-client.so";
  return policy;
}

Module::Scope::Scope(const Module& module, const char* function)
    : calls_(*module.calls_), serial_(module.policy_.serial) {
  if (serial_ && !calls_.turn.try_lock_for(module.policy_.timeout)) {
    throw stir::Error(stir::ErrorCode::kUnavailable,
                      std::string(function) + " not called: the token module was busy with " +
                          "another call for " + std::to_string(module.policy_.timeout.count()) +
                          " ms (a call that does not return)");
  }
  std::lock_guard lock(calls_.mutex);
  id_ = calls_.next_id++;
  calls_.in_flight.emplace(id_, Calls::Started{function, std::chrono::steady_clock::now()});
}

Module::Scope::~Scope() {
  {
    std::lock_guard lock(calls_.mutex);
    calls_.in_flight.erase(id_);
  }
  if (serial_) calls_.turn.unlock();
}

std::optional<CallInFlight> Module::oldest_call() const {
  std::lock_guard lock(calls_->mutex);
  if (calls_->in_flight.empty()) return std::nullopt;
  const auto& [id, started] = *calls_->in_flight.begin();
  return CallInFlight{started.function, std::chrono::steady_clock::now() - started.at,
                      calls_->in_flight.size()};
}

Module::Module(const std::string& path) : Module(path, CallPolicy::for_module(path)) {}

Module::Module(const std::string& path, CallPolicy policy)
    : path_(path), policy_(policy), calls_(std::make_unique<Calls>()) {
  library_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library_ == nullptr) {
    const char* why = dlerror();
    throw stir::Error(stir::ErrorCode::kNotFound, "cannot load PKCS#11 module " + path + ": " +
                                                      (why != nullptr ? why : "unknown error"));
  }
  auto get_function_list =
      reinterpret_cast<CK_C_GetFunctionList>(dlsym(library_, "C_GetFunctionList"));
  if (get_function_list == nullptr) {
    dlclose(library_);
    throw stir::Error(stir::ErrorCode::kNotFound,
                      path + " is not a PKCS#11 module (no C_GetFunctionList)");
  }
  CK_RV rv = get_function_list(&api_);
  if (rv != CKR_OK) {
    dlclose(library_);
    check(rv, "C_GetFunctionList", path);
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  rv = call("C_Initialize", [&] { return api_->C_Initialize(&args); });
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    finalize_ = false;  // another user in this process owns initialisation
  } else if (rv != CKR_OK) {
    dlclose(library_);
    check(rv, "C_Initialize", path);
  } else {
    finalize_ = true;
  }
}

void Module::reinitialize() const {
  // CKR_CRYPTOKI_NOT_INITIALIZED is as good as CKR_OK here
  call("C_Finalize", [&] { return api_->C_Finalize(nullptr); });
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = call("C_Initialize", [&] { return api_->C_Initialize(&args); });
  if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) check(rv, "C_Initialize", path_);
}

Module::Module(Module&& other) noexcept
    : path_(std::move(other.path_)),
      policy_(other.policy_),
      calls_(std::move(other.calls_)),
      library_(std::exchange(other.library_, nullptr)),
      api_(std::exchange(other.api_, nullptr)),
      finalize_(std::exchange(other.finalize_, false)) {}

Module::~Module() {
  if (api_ != nullptr && finalize_) {
    try {
      call("C_Finalize", [&] { return api_->C_Finalize(nullptr); });
    } catch (const std::exception&) {  // a call that never returned holds the module
    }
  }
  // The module stays mapped: some modules register atexit handlers or
  // thread-local destructors that would run after an unmap and crash.
}

}  // namespace sks::p11
