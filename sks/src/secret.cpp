#include "sks/secret.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "stir/error.h"
#include "stir/files.h"
#include "stir/hex.h"

namespace sks {

using stir::Error;
using stir::ErrorCode;

Secret::~Secret() {
  if (!value_.empty()) OPENSSL_cleanse(value_.data(), value_.size());
}

namespace {

Secret read_pin_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(ErrorCode::kNotFound,
                "PIN file " + path + " cannot be read: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorCode::kPermission, "PIN file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(ErrorCode::kPermission, "PIN file " + path + " has mode " + mode +
                                            "; it must be readable by its owner only (chmod 600)");
  }
  std::string pin = stir::read_file(path, ErrorCode::kIo, "cannot open PIN file " + path);
  if (!pin.empty() && pin.back() == '\n') pin.pop_back();
  if (!pin.empty() && pin.back() == '\r') pin.pop_back();
  if (pin.empty()) throw Error(ErrorCode::kConfig, "PIN file " + path + " is empty");
  return Secret(std::move(pin));
}

}  // namespace

Secret read_pin(const PinSource& source) {
  if (!source.file.empty() && !source.env.empty()) {
    throw Error(ErrorCode::kConfig, "give the PIN either as pin_file or as pin_env, not both");
  }
  if (!source.file.empty()) return read_pin_file(source.file);
  if (!source.env.empty()) {
    const char* value = std::getenv(source.env.c_str());
    if (value == nullptr) {
      throw Error(ErrorCode::kNotFound, "environment variable " + source.env + " is not set");
    }
    if (*value == '\0') {
      throw Error(ErrorCode::kConfig, "environment variable " + source.env + " is empty");
    }
    return Secret(value);
  }
  throw Error(ErrorCode::kConfig, "no PIN source: set pin_file or pin_env");
}

Secret ensure_pin_file(const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) return read_pin_file(path);
  unsigned char random[16];
  if (RAND_bytes(random, sizeof random) != 1) {
    throw Error(ErrorCode::kCrypto, "RAND_bytes failed while making a PIN");
  }
  std::string pin = stir::hex(random);
  OPENSSL_cleanse(random, sizeof random);
  // O_EXCL: never overwrite a PIN someone else just wrote.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::kIo, "cannot create " + path + ": " + std::strerror(errno));
  std::string line = pin + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  OPENSSL_cleanse(line.data(), line.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced) {
    ::unlink(path.c_str());
    throw Error(ErrorCode::kIo, "cannot write " + path);
  }
  return Secret(std::move(pin));
}

}  // namespace sks
