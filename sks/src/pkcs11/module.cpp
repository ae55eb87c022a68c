#include "sks/pkcs11/module.h"

#include <dlfcn.h>

#include <utility>

#include "stir/error.h"

namespace sks::p11 {

Module::Module(const std::string& path) : path_(path) {
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
  rv = api_->C_Initialize(&args);
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
  api_->C_Finalize(nullptr);  // CKR_CRYPTOKI_NOT_INITIALIZED is as good as CKR_OK here
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = api_->C_Initialize(&args);
  if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) check(rv, "C_Initialize", path_);
}

Module::Module(Module&& other) noexcept
    : path_(std::move(other.path_)),
      library_(std::exchange(other.library_, nullptr)),
      api_(std::exchange(other.api_, nullptr)),
      finalize_(std::exchange(other.finalize_, false)) {}

Module::~Module() {
  if (api_ != nullptr && finalize_) api_->C_Finalize(nullptr);
  // The module stays mapped: some modules register atexit handlers or
  // thread-local destructors that would run after an unmap and crash.
}

}  // namespace sks::p11
