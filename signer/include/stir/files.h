// Crash-safe file writes: a reader sees the old content or the new, never a
// part. Errors: stir::Error(kIo).
#pragma once

#include <sys/types.h>

#include <string>

namespace stir {

// Writes `content` to a temporary file beside `path`, fsyncs it, renames it
// over `path` and fsyncs the folder. The file gets `mode`.
void write_file_atomic(const std::string& path, const std::string& content, mode_t mode);

// Creates the folder (and its parents) with `mode` when missing.
void ensure_directory(const std::string& path, mode_t mode);

}  // namespace stir
