#include "stir/http/tls_files.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "stir/error.h"

namespace stir::http {

namespace {

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

void check_file(const std::string& what, const std::string& path, uid_t euid,
                std::string_view program, bool private_key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(ErrorCode::kNotFound,
                what + " " + path + " cannot be read: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorCode::kPermission, what + " " + path + " is not a regular file");
  }
  if (st.st_uid != euid && st.st_uid != 0) {
    throw Error(ErrorCode::kPermission,
                what + " " + path + " is owned by uid " + std::to_string(st.st_uid) +
                    "; it must be owned by the user " + std::string(program) + " runs as (uid " +
                    std::to_string(euid) + ") or root");
  }
  const std::string mode = octal(st.st_mode);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw Error(ErrorCode::kPermission, what + " " + path + " has mode " + mode +
                                            "; it must not be writable by group or others "
                                            "(chmod go-w)");
  }
  if (!private_key) return;
  if ((st.st_mode & S_IROTH) != 0) {
    throw Error(ErrorCode::kPermission, what + " " + path + " has mode " + mode +
                                            "; it must not be readable by others (chmod 600, or "
                                            "640 with owner root)");
  }
  if ((st.st_mode & S_IRGRP) != 0 && st.st_uid != 0) {
    throw Error(ErrorCode::kPermission,
                what + " " + path + " has mode " + mode +
                    "; owned by the service user it must be readable by its owner only (chmod "
                    "600)");
  }
}

}  // namespace

void check_tls_files(const TlsSettings& settings, uid_t euid, std::string_view program) {
  check_file("TLS certificate chain", settings.cert_chain_file, euid, program, false);
  check_file("TLS key", settings.key_file, euid, program, true);
  if (!settings.client_ca_file.empty()) {
    check_file("client CA file", settings.client_ca_file, euid, program, false);
  }
}

}  // namespace stir::http
