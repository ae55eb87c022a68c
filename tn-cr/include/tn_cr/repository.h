// The TN certificate repository on disk: one folder, one file per published
// certificate chain, the file named as the last segment of its x5u URL.
//
// Rules (PROTOCOL.md section 5, DESIGN.md invariant 3):
// - A name is 1-128 characters of [A-Za-z0-9._-], ends in ".pem", does not
//   start with '.' and holds no "..". Temporary files start with '.', so
//   nothing half-written ever has a servable name.
// - A published chain is PEM, end-entity first, each certificate issued by
//   the next, at most kMaxChainBytes. It is stored in canonical form
//   (stir::chain_to_pem), mode 0644.
// - The content under a name never changes: publishing the same chain again
//   is a no-op, publishing a different chain under a taken name is refused.
// - Publishing is atomic: the chain is written to a temporary file, synced,
//   and hard-linked to its name, which fails when the name exists. A reader
//   sees no file or the whole file, and two racing publishers can never
//   replace each other's content (a rename would silently overwrite).
//
// Threads: a Repository holds only its folder's path; every method may run
// concurrently with any other, in this process or in another one.
// Errors: stir::Error: kInvalidArgument (bad name, a chain that breaks a
// rule, too large), kMalformed (not a PEM certificate chain, a private key in
// it), kAlreadyExists (different content under a taken name), kNotFound (no
// such name), kIo (file system).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tn_cr {

inline constexpr std::size_t kMaxNameLength = 128;
// A STIR/SHAKEN chain is a few KiB; the bound keeps the server's memory and
// every verifier's download small.
inline constexpr std::size_t kMaxChainBytes = std::size_t{64} * 1024;

// Whether `name` may be published and served (the rules above). Never throws.
bool is_valid_name(std::string_view name) noexcept;

enum class PublishOutcome {
  kPublished,         // the name is new and now serves the chain
  kAlreadyPublished,  // the name already served exactly this chain; nothing changed
};

// What `tn-cr list` shows of one published file. Safe to log: certificates
// and hashes only.
struct ChainInfo {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;              // hex SHA-256 of the file (the ETag without quotes)
  std::int64_t mtime = 0;          // seconds since the epoch
  std::string subject;             // end-entity subject, RFC 2253
  std::optional<std::string> spc;  // end-entity TNAuthList SPC
  std::string not_after;           // end-entity notAfter, "2026-11-30T12:00:00Z"
  std::size_t certificates = 0;    // chain length
  std::string error;               // non-empty when the file is not a valid chain
};

class Repository {
 public:
  // `dir` need not exist yet; publish() creates it (mode 0755).
  explicit Repository(std::string dir);

  const std::string& dir() const noexcept { return dir_; }

  // Validates `pem` (parses, end-entity first, each certificate issued by the
  // next) and installs its canonical form under `name`.
  PublishOutcome publish(const std::string& name, std::string_view pem) const;

  // Removes `name`. kNotFound when it is not published.
  void unpublish(const std::string& name) const;

  // The canonical content served under `name`, or nullopt when it is not
  // published. Symbolic links are never followed.
  std::optional<std::string> read(const std::string& name) const;

  // Every file with a valid name, sorted by name. Files that do not hold a
  // valid chain are listed with `error` set rather than failing the list.
  // kNotFound when the folder does not exist.
  std::vector<ChainInfo> list() const;

 private:
  std::string dir_;
};

}  // namespace tn_cr
