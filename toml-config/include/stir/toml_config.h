// Reading the project's TOML configuration files (sks.toml, tn-cr.toml):
// parsing, and typed reads of one table's keys, the same rules for every
// program.
//
// Errors: every failure is stir::Error with ErrorCode::kConfig, and its
// message starts with the file, and the line when one applies:
//   "FILE:LINE:COLUMN: <TOML syntax error>"     parse_file
//   "FILE:LINE: <where>.<key> must be ..."      wrong type, empty, out of range
//   "FILE:LINE: unknown key 'K' in <where>"     only_keys: unknown keys are errors
//   "FILE: <message>"                           fail(nullptr, ...): no line applies
// where <where> is the caller's name for the table ("server", "[token]").
// Absent keys are never errors here: each read returns the caller's
// fallback, and the caller decides what is required.
//
// Threads: a Reader is immutable; reads are const and may run concurrently.
// Ownership: a Reader holds no TOML; tables are passed in by reference and
// must outlive the call.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "stir/config_field.h"

namespace stir::toml_config {

// Parses the file at `path`. A file that does not exist is
// "config file PATH does not exist (MISSING_HINT)".
toml::table parse_file(const std::string& path, const std::string& missing_hint);

class Reader {
 public:
  // `path` names the file in messages; relative paths read by path() are
  // taken from the file's folder.
  explicit Reader(std::string path);

  [[noreturn]] void fail(const toml::node* node, const std::string& message) const;

  // "unknown key 'K' in WHERE" for the first key of `table` not in `allowed`.
  void only_keys(const toml::table& table, const std::string& where,
                 const std::set<std::string>& allowed) const;

  // A non-empty string ("" when absent): "WHERE.KEY must be a string",
  // "WHERE.KEY must not be empty".
  std::string string(const toml::table& table, const std::string& key,
                     const std::string& where) const;

  // string(), then a relative path is resolved from the file's folder.
  std::string path(const toml::table& table, const std::string& key,
                   const std::string& where) const;

  // A relative `value` taken from the file's folder; absolute ones unchanged.
  std::string resolve(const std::string& value) const;

  bool boolean(const toml::table& table, const std::string& key, const std::string& where,
               bool fallback) const;

  // "WHERE.KEY must be an integer from MIN to MAX" followed by `why`.
  std::int64_t integer(const toml::table& table, const std::string& key, const std::string& where,
                       std::int64_t fallback, std::int64_t min, std::int64_t max,
                       const std::string& why = "") const;

  // An array of non-empty strings (empty when absent).
  std::vector<std::string> strings(const toml::table& table, const std::string& key,
                                   const std::string& where) const;

  const std::string& file() const { return path_; }
  const std::filesystem::path& folder() const { return base_; }

 private:
  std::string path_;
  std::filesystem::path base_;
};

// The table `name` inside `parent`, nullptr when absent; "[NAME] must be a
// table" when it is something else.
const toml::table* sub_table(const Reader& reader, const toml::table& parent,
                             const std::string& name);

// Reads every field of `fields` present in `table` into `s`.
template <class S, class Fields>
void read_integers(const Reader& reader, const toml::table& table, const std::string& where,
                   const Fields& fields, S& s) {
  for (const IntegerField<S>& field : fields) {
    field.set(s, reader.integer(table, field.key, where, field.get(s), field.min, field.max));
  }
}

// The keys of `fields`, added to `keys`.
template <class Fields>
std::set<std::string> with_keys(std::set<std::string> keys, const Fields& fields) {
  for (const auto& field : fields) keys.insert(field.key);
  return keys;
}

}  // namespace stir::toml_config
