// Whole-file reads, and crash-safe file writes: a reader sees the old
// content or the new, never a part.
// Threads: no state; safe to call from any thread. Errors: stir::Error, as
// each function says.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "stir/error.h"

namespace stir {

// The whole file, byte for byte. A file that cannot be opened throws
// Error(`code`, "cannot read PATH").
std::string read_file(const std::string& path, ErrorCode code = ErrorCode::kNotFound);
// The same with the caller's message for a file that cannot be opened.
std::string read_file(const std::string& path, ErrorCode code, const std::string& message);
// The whole file, or nullopt when there is no file at `path`; a file that
// exists but cannot be opened throws Error(kIo, "cannot read PATH").
std::optional<std::string> read_file_if_exists(const std::string& path);

// Writes `content` to a temporary file beside `path`, fsyncs it, renames it
// over `path` and fsyncs the folder. The file gets `mode`.
void write_file_atomic(const std::string& path, const std::string& content, mode_t mode);

// Creates the folder (and its parents) with `mode` when missing.
void ensure_directory(const std::string& path, mode_t mode);

}  // namespace stir
