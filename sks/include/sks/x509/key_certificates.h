// The certificate store: the certificate chain of each key, kept in
// Config::certificates.dir as `<label>.chain.pem`: end-entity first, then each
// issuer, exactly what the key's x5u URL will serve.
//
// A chain is installed only when it belongs to the key and is usable: it
// parses, each certificate is issued by the next, the leaf's public key is
// the token key's, every certificate is within its validity period, the leaf
// may sign (Key Usage digitalSignature) and carries a TNAuthList SPC. A
// chain that fails any check changes nothing.
//
// Ownership: a value type holding the folder path; the files are the state.
// Threads and processes: every file write is atomic (write_file_atomic), so
// a reader sees a whole old or a whole new chain. Two concurrent installs
// for the same label race (the last one wins); callers serialise rotation.
// Errors: stir::Error: kMalformed (not a PEM chain), kInvalidArgument (the
// chain breaks a rule; the message says which), kAlreadyExists (another
// chain is installed and --replace was not given), kNotFound, kIo.
#pragma once

#include <openssl/evp.h>

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sks::x509 {

struct InstallOptions {
  bool replace = false;       // renewal: replace a different installed chain
  bool allow_no_spc = false;  // accept a leaf without TNAuthList SPC (with a warning)
  std::time_t now = 0;        // validity is checked at this time; 0 = the current time
};

enum class InstallOutcome {
  kInstalled,  // there was no chain for the key
  kUnchanged,  // the same chain was already installed; nothing was written
  kReplaced,   // a different chain was replaced; the old one was kept aside
};

struct InstallResult {
  InstallOutcome outcome = InstallOutcome::kInstalled;
  std::string path;                   // <dir>/<label>.chain.pem
  std::string previous_path;          // kReplaced: where the old chain was kept
  std::vector<std::string> warnings;  // e.g. "the leaf has no TNAuthList SPC"
};

// What an operator wants to see of an installed chain; no key material.
struct CertificateInfo {
  std::string label;
  std::string path;
  std::string subject;  // leaf, OpenSSL one-line form
  std::string issuer;
  std::optional<std::string> spc;
  std::string not_before;  // ISO 8601 UTC, e.g. 2026-11-26T18:00:00Z
  std::string not_after;
  std::string serial;              // hex, upper case
  std::string sha256_fingerprint;  // of the leaf's DER, hex pairs joined by ':'
  std::size_t chain_length = 0;
};

class KeyCertificates {
 public:
  explicit KeyCertificates(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const noexcept { return dir_; }
  // <dir>/<label>.chain.pem. Throws kInvalidArgument for a label that is not
  // a valid key label (so it cannot name a file elsewhere).
  std::string chain_path(const std::string& label) const;

  // Checks `chain_pem` against the key `label` whose public key is
  // `token_key` and records it. The file is written in a normalised PEM form
  // (mode 0644); installing the same chain again writes nothing. With
  // `replace`, a different chain is replaced and the old one kept as
  // <label>.chain.<first 16 hex digits of its SHA-256>.pem.
  InstallResult install(const std::string& label, const EVP_PKEY* token_key,
                        std::string_view chain_pem, const InstallOptions& options) const;

  // The installed chain's PEM, or nullopt when the key has none.
  std::optional<std::string> chain_pem(const std::string& label) const;
  // Throws kNotFound when the key has no chain.
  CertificateInfo show(const std::string& label) const;

 private:
  std::string dir_;
};

}  // namespace sks::x509
