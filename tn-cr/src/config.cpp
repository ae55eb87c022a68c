#include "tn_cr/config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <set>

#include "stir/http/listener_reader.h"
#include "stir/toml_config.h"
#include "tn_cr/http_rules.h"

namespace tn_cr {

std::string resolve_config_path(const std::string& cli_path) {
  if (!cli_path.empty()) return cli_path;
  if (const char* env = std::getenv("TN_CR_CONFIG"); env != nullptr && *env != '\0') return env;
  return kDefaultConfigPath;
}

namespace {

// Typed reads from one table, named `name` in messages; the rules and the
// file and line in every error come from stir::toml_config::Reader.
class Reader {
 public:
  Reader(const stir::toml_config::Reader& file, const toml::table& table, std::string name)
      : file_(file), table_(table), name_(std::move(name)) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& message) const {
    file_.fail(node, message);
  }
  [[noreturn]] void fail_key(const std::string& key, const std::string& message) const {
    fail(table_.get(key) != nullptr ? table_.get(key) : &table_, name_ + "." + key + " " + message);
  }

  void only_keys(const std::set<std::string>& allowed) const {
    file_.only_keys(table_, "[" + name_ + "]", allowed);
  }

  std::string string(const std::string& key, const std::string& fallback) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback;
    const auto* value = node->as_string();
    if (value == nullptr || value->get().empty()) fail_key(key, "must be a non-empty string");
    return value->get();
  }

  // A path; relative ones are taken from the config file's folder.
  std::string path(const std::string& key) const { return file_.resolve(string(key, "")); }

  std::vector<std::string> strings(const std::string& key) const {
    return file_.strings(table_, key, name_);
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max, const std::string& why = "") const {
    return file_.integer(table_, key, name_, fallback, min, max, why);
  }

 private:
  const stir::toml_config::Reader& file_;
  const toml::table& table_;
  std::string name_;
};

void read_server(const Reader& r, const stir::toml_config::Reader& file, const toml::table& table,
                 ServerOptions& s) {
  // Client certificates only for /metrics (client_ca, metrics_clients), and
  // request bodies are never used (a fixed limit).
  const stir::http::ListenerKeys listener{.client_certificates = false, .body_limit = false};
  std::set<std::string> keys = stir::http::listener_keys(listener);
  keys.insert({"max_age_s", "path_prefix", "client_ca", "metrics_clients"});
  r.only_keys(keys);
  stir::http::read_listener(file, table, "server", listener, s);
  // Upward only: verifiers cache for 24 h whatever the server says.
  s.max_age_s =
      r.integer("max_age_s", kMinMaxAgeSeconds, kMinMaxAgeSeconds, std::int64_t{366} * 86400,
                " (verifiers cache a certificate for at least 24 h)");
  s.path_prefix = r.string("path_prefix", "/");
  if (!http_rules::is_valid_path_prefix(s.path_prefix)) {
    r.fail_key("path_prefix",
               "must start and end with '/' and hold only plain segments of "
               "[A-Za-z0-9._-] (\"/\" or \"/certs/\")");
  }
  s.client_ca = r.path("client_ca");
  s.metrics_clients = r.strings("metrics_clients");
  if (!s.metrics_clients.empty() && (s.client_ca.empty() || s.lab_plain_http)) {
    r.fail_key("metrics_clients",
               "needs server.client_ca and TLS: /metrics is served only to clients that show a "
               "certificate from client_ca");
  }
}

}  // namespace

Config load_config(const std::string& path) {
  const toml::table root =
      stir::toml_config::parse_file(path, "give --config FILE or set TN_CR_CONFIG");

  Config config;
  config.path = path;
  const stir::toml_config::Reader file(path);
  for (const auto& [key, value] : root) {
    if (key.str() != "repository" && key.str() != "server") {
      file.fail(&value, "unknown key '" + std::string(key.str()) + "' at the top level");
    }
  }

  config.repository_dir = (file.folder() / "certs").string();
  if (const toml::table* repository = stir::toml_config::sub_table(file, root, "repository")) {
    const Reader r(file, *repository, "repository");
    r.only_keys({"dir"});
    if (auto dir = r.path("dir"); !dir.empty()) config.repository_dir = dir;
  }
  if (const toml::table* server = stir::toml_config::sub_table(file, root, "server")) {
    config.has_server = true;
    read_server(Reader(file, *server, "server"), file, *server, config.server);
  }
  config.server.repository_dir = config.repository_dir;
  return config;
}

}  // namespace tn_cr
