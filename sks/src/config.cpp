#include "sks/config.h"

#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "stir/error.h"

namespace sks {

using stir::Error;
using stir::ErrorCode;
namespace fs = std::filesystem;

std::string resolve_config_path(const std::string& cli_path) {
  if (!cli_path.empty()) return cli_path;
  if (const char* env = std::getenv("SKS_CONFIG"); env != nullptr && *env != '\0') return env;
  return kDefaultConfigPath;
}

namespace {

class Reader {
 public:
  Reader(std::string path, fs::path base) : path_(std::move(path)), base_(std::move(base)) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& message) const {
    std::string where = path_;
    if (node != nullptr && node->source().begin) {
      where += ":" + std::to_string(node->source().begin.line);
    }
    throw Error(ErrorCode::kConfig, where + ": " + message);
  }

  void only_keys(const toml::table& table, const std::string& name,
                 const std::set<std::string>& allowed) const {
    for (const auto& [key, value] : table) {
      if (!allowed.contains(std::string(key.str()))) {
        fail(&value, "unknown key '" + std::string(key.str()) + "' in " + name);
      }
    }
  }

  std::string string(const toml::table& table, const std::string& key,
                     const std::string& where) const {
    const toml::node* node = table.get(key);
    if (node == nullptr) return {};
    const auto* value = node->as_string();
    if (value == nullptr) fail(node, where + "." + key + " must be a string");
    if (value->get().empty()) fail(node, where + "." + key + " must not be empty");
    return value->get();
  }

  std::string path(const toml::table& table, const std::string& key,
                   const std::string& where) const {
    std::string value = string(table, key, where);
    if (value.empty()) return value;
    fs::path p(value);
    return p.is_absolute() ? value : (base_ / p).lexically_normal().string();
  }

 private:
  std::string path_;
  fs::path base_;
};

}  // namespace

Config load_config(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::ostringstream message;
    message << path;
    if (where) message << ":" << where.line << ":" << where.column;
    message << ": " << e.description();
    if (!fs::exists(path)) {
      throw Error(ErrorCode::kConfig, "config file " + path +
                                          " does not exist (give --config FILE or set "
                                          "SKS_CONFIG; `sks init --dir DIR` makes one)");
    }
    throw Error(ErrorCode::kConfig, message.str());
  }

  Config config;
  config.path = path;
  const Reader reader(path, fs::absolute(path).parent_path());
  reader.only_keys(root, "the top level", {"token"});

  const toml::node* token_node = root.get("token");
  if (token_node == nullptr) reader.fail(nullptr, "missing [token] table");
  const toml::table* token = token_node->as_table();
  if (token == nullptr) reader.fail(token_node, "token must be a table");
  reader.only_keys(*token, "[token]",
                   {"module", "label", "serial", "pin_file", "pin_env", "sessions", "module_env"});

  TokenConfig& t = config.token;
  t.module = reader.path(*token, "module", "token");
  t.label = reader.string(*token, "label", "token");
  t.serial = reader.string(*token, "serial", "token");
  t.pin.file = reader.path(*token, "pin_file", "token");
  t.pin.env = reader.string(*token, "pin_env", "token");

  if (t.module.empty()) reader.fail(token, "token.module (the PKCS#11 module path) is required");
  if (!fs::is_regular_file(t.module)) {
    reader.fail(token->get("module"), "PKCS#11 module " + t.module + " does not exist");
  }
  if (t.label.empty() && t.serial.empty()) {
    reader.fail(token, "token.label or token.serial is required (never a slot number)");
  }
  if (t.label.size() > 32) reader.fail(token->get("label"), "token.label is longer than 32");
  if (t.pin.file.empty() == t.pin.env.empty()) {
    reader.fail(token, "exactly one of token.pin_file and token.pin_env is required");
  }
  if (const toml::node* node = token->get("sessions")) {
    const auto* value = node->as_integer();
    if (value == nullptr || value->get() < 0 || value->get() > 1024) {
      reader.fail(node, "token.sessions must be an integer from 0 (one per core) to 1024");
    }
    t.sessions = static_cast<std::size_t>(value->get());
  }
  if (const toml::node* node = token->get("module_env")) {
    const toml::table* env = node->as_table();
    if (env == nullptr) reader.fail(node, "token.module_env must be a table");
    for (const auto& [key, value] : *env) {
      const auto* text = value.as_string();
      if (text == nullptr) {
        reader.fail(&value, "token.module_env." + std::string(key.str()) + " must be a string");
      }
      t.module_env.emplace(std::string(key.str()), text->get());
    }
  }
  return config;
}

void apply_module_env(const TokenConfig& token) {
  for (const auto& [name, value] : token.module_env) ::setenv(name.c_str(), value.c_str(), 1);
}

std::string render_dev_config(const std::string& module, const std::string& label,
                              const std::string& pin_file, const std::string& softhsm2_conf) {
  std::ostringstream out;
  out << "# sks configuration for a development SoftHSM2 token, made by `sks init`.\n"
         "# Not for production: the token's PINs sit in files next to it.\n"
         "\n"
         "[token]\n"
         "# The PKCS#11 module; any HSM's module works the same way.\n"
         "module = "
      << toml::value<std::string>(module)
      << "\n"
         "# The token is found by its label (or serial), never by slot number.\n"
         "label = "
      << toml::value<std::string>(label)
      << "\n"
         "# The user PIN: a file only its owner can read (or pin_env = \"NAME\").\n"
         "pin_file = "
      << toml::value<std::string>(pin_file)
      << "\n"
         "# Sessions in the signing pool; 0 means one per CPU core.\n"
         "sessions = 0\n"
         "\n"
         "[token.module_env]\n"
         "# SoftHSM2 reads its token directory from this file.\n"
         "SOFTHSM2_CONF = "
      << toml::value<std::string>(softhsm2_conf) << "\n";
  return out.str();
}

}  // namespace sks
