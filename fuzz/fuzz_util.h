// Helpers shared by the fuzz targets: bytes as text, splitting an input into
// parts, and a private folder for targets whose code under test reads files.
//
// Threads: libFuzzer calls a target from one thread; nothing here locks.
// Errors: a set-up failure aborts the fuzzer (it is a harness bug).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

#include "stir/error.h"

namespace stir::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The text before the first `separator` and the text after it; the whole
// input and "" when there is none.
inline std::pair<std::string_view, std::string_view> split_once(std::string_view text,
                                                                std::string_view separator) {
  const std::size_t at = text.find(separator);
  if (at == std::string_view::npos) return {text, {}};
  return {text.substr(0, at), text.substr(at + separator.size())};
}

// Stops the fuzzer with a message: a property the code promises was broken.
[[noreturn]] inline void property_failed(const char* what) {
  std::fprintf(stderr, "fuzz property failed: %s\n", what);
  std::abort();
}

// A folder made once per process under $TMPDIR (else /tmp), removed at exit.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/stir-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Writes (replaces) a file in the folder; returns its path.
  std::string write(const std::string& name, std::string_view content) const {
    const std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) {
      std::perror(file.c_str());
      std::abort();
    }
    return file;
  }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// Runs a config reader (`load(path)`) on `text` as the content of a file
// named `file_name`. Their contract: a config, or stir::Error(kConfig); any
// other exception escapes to libFuzzer, which reports it.
template <typename Load>
void load_config_text(std::string_view text, const std::string& file_name, Load load) {
  static const ScratchDir dir;
  const std::string path = dir.write(file_name, text);
  try {
    (void)load(path);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kConfig) property_failed("config error is not kConfig");
  }
}

}  // namespace stir::fuzz
