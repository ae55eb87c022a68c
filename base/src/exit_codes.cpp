#include "stir/exit_codes.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

namespace stir {

int exit_code_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kMalformed:
      return 65;
    case ErrorCode::kNotFound:
      return 66;
    case ErrorCode::kPkcs11:
    case ErrorCode::kCrypto:
    case ErrorCode::kUnavailable:
      return 69;
    case ErrorCode::kInternal:
      return 70;
    case ErrorCode::kAlreadyExists:
      return 73;
    case ErrorCode::kIo:
      return 74;
    case ErrorCode::kPermission:
    case ErrorCode::kPinIncorrect:
      return 77;
    case ErrorCode::kConfig:
      return 78;
  }
  return 70;
}

void ignore_broken_pipes() noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_IGN;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGPIPE, &action, nullptr);
}

void exit_at_once(std::string_view program, int code, std::string_view message) noexcept {
  std::string line;
  try {
    line.append(program).append(": ").append(message).append("\n");
  } catch (...) {  // no memory: the code alone must do
  }
  for (std::size_t at = 0; at < line.size();) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + at, line.size() - at);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  std::_Exit(code);
}

int run_main(std::string_view program, const std::function<int()>& body) noexcept {
  ignore_broken_pipes();
  try {
    try {
      return body();
    } catch (const Error& e) {
      std::cerr << program << ": " << e.what() << "\n";
      return exit_code_for(e.code());
    } catch (const std::exception& e) {
      std::cerr << program << ": internal error: " << e.what() << "\n";
      return exit_code_for(ErrorCode::kInternal);
    } catch (...) {
      std::cerr << program << ": internal error: an exception of unknown type\n";
      return exit_code_for(ErrorCode::kInternal);
    }
  } catch (...) {  // writing the message failed too
    return exit_code_for(ErrorCode::kInternal);
  }
}

}  // namespace stir
