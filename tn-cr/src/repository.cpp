#include "tn_cr/repository.h"

#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "stir/error.h"
#include "stir/files.h"
#include "stir/hex.h"
#include "stir/openssl.h"
#include "stir/x509.h"

namespace tn_cr {

using stir::Error;
using stir::ErrorCode;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_io(const std::string& what, const std::string& path) {
  throw Error(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}

void check_name(const std::string& name) {
  if (!is_valid_name(name)) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + name +
                    "' is not a valid name: 1-128 characters of [A-Za-z0-9._-], "
                    "ending in .pem, not starting with '.', no '..'");
  }
}

// Closes a file descriptor; never throws.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;  // owns the descriptor
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports whether close succeeded.
  bool close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

// Removes a temporary file unless released; never throws.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;  // removes the file when destroyed
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct FileRead {
  std::string content;
  struct stat st {};
};

// Reads a regular file without following a symbolic link; nullopt when it
// does not exist. Files larger than `limit` are kInvalidArgument.
std::optional<FileRead> read_regular_file(const std::string& path, std::size_t limit) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    if (errno == ELOOP) {
      throw Error(ErrorCode::kInvalidArgument, path + " is a symbolic link, never served");
    }
    fail_io("cannot open", path);
  }
  FileRead file;
  if (::fstat(fd.get(), &file.st) != 0) fail_io("cannot stat", path);
  if (!S_ISREG(file.st.st_mode)) {
    throw Error(ErrorCode::kInvalidArgument, path + " is not a regular file");
  }
  if (static_cast<std::uint64_t>(file.st.st_size) > limit) {
    throw Error(ErrorCode::kInvalidArgument,
                path + " is larger than " + std::to_string(limit) + " bytes");
  }
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_io("cannot read", path);
    }
    file.content.append(buffer, static_cast<std::size_t>(n));
    if (file.content.size() > limit) {
      throw Error(ErrorCode::kInvalidArgument,
                  path + " is larger than " + std::to_string(limit) + " bytes");
    }
  }
  return file;
}

void sync_folder(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) fail_io("cannot sync folder", dir);
}

// Writes `content` to a new temporary file in `dir` and syncs it.
std::unique_ptr<TempFile> write_temp_file(const std::string& dir, const std::string& name,
                                          const std::string& content) {
  std::string pattern = (fs::path(dir) / ("." + name + ".XXXXXX")).string();
  const int raw = ::mkstemp(pattern.data());
  if (raw < 0) fail_io("cannot create a temporary file in", dir);
  Fd fd(raw);
  auto temp = std::make_unique<TempFile>(pattern);
  if (::fchmod(fd.get(), 0644) != 0) fail_io("cannot set the mode of", pattern);
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_io("cannot write", pattern);
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail_io("cannot sync", pattern);
  if (!fd.close()) fail_io("cannot close", pattern);
  return temp;
}

// Same chain (also when the existing file was placed by hand in another PEM
// layout): nothing to do. Anything else would change what the URL serves.
PublishOutcome compare_existing(const std::string& name, const std::string& existing,
                                const std::string& canonical) {
  if (existing == canonical) return PublishOutcome::kAlreadyPublished;
  try {
    if (stir::chain_to_pem(stir::parse_pem_chain(existing)) == canonical) {
      return PublishOutcome::kAlreadyPublished;
    }
  } catch (const Error&) {
    // Not a chain at all: certainly different content.
  }
  throw Error(ErrorCode::kAlreadyExists,
              "'" + name +
                  "' is already published with different content; the content "
                  "behind a URL never changes: publish the new chain under a new name");
}

std::string iso8601(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string rfc2253(const X509_NAME* name) {
  stir::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

void describe_chain(const std::string& content, ChainInfo& info) {
  try {
    const auto chain = stir::parse_pem_chain(content);
    stir::check_chain_links(chain);
    const X509* leaf = chain.front().get();
    info.certificates = chain.size();
    info.subject = rfc2253(X509_get_subject_name(leaf));
    info.not_after = iso8601(X509_get0_notAfter(leaf));
    info.spc = stir::tn_auth_list_spc(leaf);
  } catch (const Error& e) {
    info.error = e.what();
  }
}

}  // namespace

bool is_valid_name(std::string_view name) noexcept {
  constexpr std::string_view kSuffix = ".pem";
  if (name.size() <= kSuffix.size() || name.size() > kMaxNameLength) return false;
  if (!name.ends_with(kSuffix) || name.front() == '.') return false;
  if (name.find("..") != std::string_view::npos) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Repository::Repository(std::string dir) : dir_(std::move(dir)) {}

PublishOutcome Repository::publish(const std::string& name, std::string_view pem) const {
  check_name(name);
  if (pem.size() > kMaxChainBytes) {
    throw Error(ErrorCode::kInvalidArgument,
                "the chain is larger than " + std::to_string(kMaxChainBytes) + " bytes");
  }
  const auto chain = stir::parse_pem_chain(pem);
  stir::check_chain_links(chain);
  const std::string canonical = stir::chain_to_pem(chain);

  stir::ensure_directory(dir_, 0755);
  const std::string path = (fs::path(dir_) / name).string();
  if (auto existing = read_regular_file(path, kMaxChainBytes)) {
    return compare_existing(name, existing->content, canonical);
  }
  const auto temp = write_temp_file(dir_, name, canonical);
  // link() never replaces an existing name, so a racing publisher of other
  // content under the same name loses instead of overwriting.
  if (::link(temp->path().c_str(), path.c_str()) != 0) {
    if (errno != EEXIST) fail_io("cannot publish", path);
    auto existing = read_regular_file(path, kMaxChainBytes);
    if (!existing) throw Error(ErrorCode::kIo, path + " vanished while publishing; try again");
    return compare_existing(name, existing->content, canonical);
  }
  sync_folder(dir_);
  return PublishOutcome::kPublished;
}

void Repository::unpublish(const std::string& name) const {
  check_name(name);
  const std::string path = (fs::path(dir_) / name).string();
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) throw Error(ErrorCode::kNotFound, "'" + name + "' is not published");
    fail_io("cannot unpublish", path);
  }
  sync_folder(dir_);
}

std::optional<std::string> Repository::read(const std::string& name) const {
  check_name(name);
  auto file = read_regular_file((fs::path(dir_) / name).string(), kMaxChainBytes);
  if (!file) return std::nullopt;
  return std::move(file->content);
}

std::vector<ChainInfo> Repository::list() const {
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) {
      throw Error(ErrorCode::kNotFound, "repository folder " + dir_ + " does not exist");
    }
    throw Error(ErrorCode::kIo, "cannot list " + dir_ + ": " + ec.message());
  }
  std::vector<ChainInfo> out;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (!is_valid_name(name)) continue;
    ChainInfo info;
    info.name = name;
    try {
      auto file = read_regular_file(entry.path().string(), kMaxChainBytes);
      if (!file) continue;  // unpublished meanwhile
      info.size = file->content.size();
      info.sha256 = stir::hex(stir::sha256(std::string_view(file->content)));
      info.mtime = file->st.st_mtim.tv_sec;
      describe_chain(file->content, info);
    } catch (const Error& e) {
      info.error = e.what();
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const ChainInfo& a, const ChainInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace tn_cr
