#include "stir/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stir/error.h"

namespace stir {

namespace fs = std::filesystem;

namespace {
[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw Error(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}

std::string read_all(std::ifstream& in) {
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}
}  // namespace

std::string read_file(const std::string& path, ErrorCode code) {
  return read_file(path, code, "cannot read " + path);
}

std::string read_file(const std::string& path, ErrorCode code, const std::string& message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(code, message);
  return read_all(in);
}

std::optional<std::string> read_file_if_exists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path)) return std::nullopt;
    throw Error(ErrorCode::kIo, "cannot read " + path);
  }
  return read_all(in);
}

void write_file_atomic(const std::string& path, const std::string& content, mode_t mode) {
  const fs::path target(path);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on
  // `"." + std::string` (GCC bug 105651).
  std::string name = ".";
  name += target.filename().string();
  name += ".XXXXXX";
  std::string temp = (folder / name).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) fail("cannot create a temporary file for", path);
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t written = 0;
  while (ok && written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    fail("cannot write", path);
  }
  // The rename itself is durable only once the folder is synced.
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void ensure_directory(const std::string& path, mode_t mode) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return;
  fs::create_directories(path, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot create folder " + path + ": " + ec.message());
  if (::chmod(path.c_str(), mode) != 0) fail("cannot set the mode of", path);
}

}  // namespace stir
