#include "tn_cr/config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "stir/error.h"
#include "tn_cr/http_rules.h"

namespace tn_cr {

using stir::Error;
using stir::ErrorCode;
namespace fs = std::filesystem;

std::string resolve_config_path(const std::string& cli_path) {
  if (!cli_path.empty()) return cli_path;
  if (const char* env = std::getenv("TN_CR_CONFIG"); env != nullptr && *env != '\0') return env;
  return kDefaultConfigPath;
}

namespace {

// Typed reads from one table; every failure names the file, line and key.
class Reader {
 public:
  Reader(std::string path, fs::path base, const toml::table& table, std::string name)
      : path_(std::move(path)), base_(std::move(base)), table_(table), name_(std::move(name)) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& message) const {
    std::string where = path_;
    if (node != nullptr && node->source().begin) {
      where += ":" + std::to_string(node->source().begin.line);
    }
    throw Error(ErrorCode::kConfig, where + ": " + message);
  }
  [[noreturn]] void fail_key(const std::string& key, const std::string& message) const {
    fail(table_.get(key) != nullptr ? table_.get(key) : &table_, name_ + "." + key + " " + message);
  }

  void only_keys(const std::set<std::string>& allowed) const {
    for (const auto& [key, value] : table_) {
      if (!allowed.contains(std::string(key.str()))) {
        fail(&value, "unknown key '" + std::string(key.str()) + "' in [" + name_ + "]");
      }
    }
  }

  std::string string(const std::string& key, const std::string& fallback) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback;
    const auto* value = node->as_string();
    if (value == nullptr || value->get().empty()) fail_key(key, "must be a non-empty string");
    return value->get();
  }

  // A path; relative ones are taken from the config file's folder.
  std::string path(const std::string& key) const {
    std::string value = string(key, "");
    if (value.empty() || fs::path(value).is_absolute()) return value;
    return (base_ / value).lexically_normal().string();
  }

  bool boolean(const std::string& key, bool fallback) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback;
    const auto* value = node->as_boolean();
    if (value == nullptr) fail_key(key, "must be true or false");
    return value->get();
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max, const std::string& why = "") const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback;
    const auto* value = node->as_integer();
    if (value == nullptr || value->get() < min || value->get() > max) {
      fail_key(key, "must be an integer from " + std::to_string(min) + " to " +
                        std::to_string(max) + why);
    }
    return value->get();
  }

 private:
  std::string path_;
  fs::path base_;
  const toml::table& table_;
  std::string name_;
};

const toml::table* sub_table(const std::string& path, const toml::table& root,
                             const std::string& name) {
  const toml::node* node = root.get(name);
  if (node == nullptr) return nullptr;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    throw Error(ErrorCode::kConfig, path + ":" + std::to_string(node->source().begin.line) + ": [" +
                                        name + "] must be a table");
  }
  return table;
}

void read_server(const Reader& r, ServerOptions& s) {
  r.only_keys({"listen", "port", "tls_cert", "tls_key", "lab_plain_http", "max_age_s",
               "path_prefix", "threads", "handshake_timeout_ms", "read_timeout_ms",
               "write_timeout_ms", "keep_alive_timeout_s", "keep_alive_max_requests",
               "max_connections", "backlog"});
  s.listen = r.string("listen", s.listen);
  s.port = static_cast<int>(r.integer("port", s.port, 0, 65535));
  s.tls_cert = r.path("tls_cert");
  s.tls_key = r.path("tls_key");
  s.lab_plain_http = r.boolean("lab_plain_http", false);
  // Upward only: verifiers cache for 24 h whatever the server says.
  s.max_age_s =
      r.integer("max_age_s", kMinMaxAgeSeconds, kMinMaxAgeSeconds, std::int64_t{366} * 86400,
                " (verifiers cache a certificate for at least 24 h)");
  s.path_prefix = r.string("path_prefix", "/");
  if (!http::is_valid_path_prefix(s.path_prefix)) {
    r.fail_key("path_prefix",
               "must start and end with '/' and hold only plain segments of "
               "[A-Za-z0-9._-] (\"/\" or \"/certs/\")");
  }
  s.threads = static_cast<std::size_t>(r.integer("threads", 0, 0, 4096));
  s.handshake_timeout_ms = static_cast<int>(r.integer("handshake_timeout_ms", 5000, 10, 600000));
  s.read_timeout_ms = static_cast<int>(r.integer("read_timeout_ms", 5000, 10, 600000));
  s.write_timeout_ms = static_cast<int>(r.integer("write_timeout_ms", 5000, 10, 600000));
  s.keep_alive_timeout_s = static_cast<int>(r.integer("keep_alive_timeout_s", 5, 1, 3600));
  s.keep_alive_max_requests =
      static_cast<std::size_t>(r.integer("keep_alive_max_requests", 10000, 1, 100000000));
  s.max_connections = static_cast<std::size_t>(r.integer("max_connections", 4096, 1, 1000000));
  s.backlog = static_cast<int>(r.integer("backlog", 0, 0, 65535));
  if (!s.lab_plain_http && (s.tls_cert.empty() || s.tls_key.empty())) {
    r.fail_key(s.tls_cert.empty() ? "tls_cert" : "tls_key",
               "is required: server.tls_cert and server.tls_key (or, in a lab only, "
               "server.lab_plain_http = true)");
  }
}

}  // namespace

Config load_config(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (!fs::exists(path)) {
      throw Error(ErrorCode::kConfig, "config file " + path +
                                          " does not exist (give --config FILE or set "
                                          "TN_CR_CONFIG)");
    }
    std::ostringstream message;
    message << path;
    if (const auto& where = e.source().begin) message << ":" << where.line << ":" << where.column;
    message << ": " << e.description();
    throw Error(ErrorCode::kConfig, message.str());
  }

  Config config;
  config.path = path;
  const fs::path base = fs::absolute(path).parent_path();
  const Reader top(path, base, root, "top level");
  for (const auto& [key, value] : root) {
    if (key.str() != "repository" && key.str() != "server") {
      top.fail(&value, "unknown key '" + std::string(key.str()) + "' at the top level");
    }
  }

  config.repository_dir = (base / "certs").string();
  if (const toml::table* repository = sub_table(path, root, "repository")) {
    const Reader r(path, base, *repository, "repository");
    r.only_keys({"dir"});
    if (auto dir = r.path("dir"); !dir.empty()) config.repository_dir = dir;
  }
  if (const toml::table* server = sub_table(path, root, "server")) {
    config.has_server = true;
    read_server(Reader(path, base, *server, "server"), config.server);
  }
  config.server.repository_dir = config.repository_dir;
  return config;
}

}  // namespace tn_cr
