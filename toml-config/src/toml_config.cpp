#include "stir/toml_config.h"

#include <sstream>

#include "stir/error.h"

namespace stir::toml_config {

namespace fs = std::filesystem;

toml::table parse_file(const std::string& path, const std::string& missing_hint) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (!fs::exists(path)) {
      throw Error(ErrorCode::kConfig,
                  "config file " + path + " does not exist (" + missing_hint + ")");
    }
    std::ostringstream message;
    message << path;
    if (const auto& where = e.source().begin) message << ":" << where.line << ":" << where.column;
    message << ": " << e.description();
    throw Error(ErrorCode::kConfig, message.str());
  }
}

Reader::Reader(std::string path)
    : path_(std::move(path)), base_(fs::absolute(path_).parent_path()) {}

void Reader::fail(const toml::node* node, const std::string& message) const {
  std::string where = path_;
  if (node != nullptr && node->source().begin) {
    where += ":" + std::to_string(node->source().begin.line);
  }
  throw Error(ErrorCode::kConfig, where + ": " + message);
}

void Reader::only_keys(const toml::table& table, const std::string& where,
                       const std::set<std::string>& allowed) const {
  for (const auto& [key, value] : table) {
    if (!allowed.contains(std::string(key.str()))) {
      fail(&value, "unknown key '" + std::string(key.str()) + "' in " + where);
    }
  }
}

std::string Reader::string(const toml::table& table, const std::string& key,
                           const std::string& where) const {
  const toml::node* node = table.get(key);
  if (node == nullptr) return {};
  const auto* value = node->as_string();
  if (value == nullptr) fail(node, where + "." + key + " must be a string");
  if (value->get().empty()) fail(node, where + "." + key + " must not be empty");
  return value->get();
}

std::string Reader::path(const toml::table& table, const std::string& key,
                         const std::string& where) const {
  return resolve(string(table, key, where));
}

std::string Reader::resolve(const std::string& value) const {
  if (value.empty() || fs::path(value).is_absolute()) return value;
  return (base_ / value).lexically_normal().string();
}

bool Reader::boolean(const toml::table& table, const std::string& key, const std::string& where,
                     bool fallback) const {
  const toml::node* node = table.get(key);
  if (node == nullptr) return fallback;
  const auto* value = node->as_boolean();
  if (value == nullptr) fail(node, where + "." + key + " must be true or false");
  return value->get();
}

std::int64_t Reader::integer(const toml::table& table, const std::string& key,
                             const std::string& where, std::int64_t fallback, std::int64_t min,
                             std::int64_t max, const std::string& why) const {
  const toml::node* node = table.get(key);
  if (node == nullptr) return fallback;
  const auto* value = node->as_integer();
  if (value == nullptr || value->get() < min || value->get() > max) {
    fail(node, where + "." + key + " must be an integer from " + std::to_string(min) + " to " +
                   std::to_string(max) + why);
  }
  return value->get();
}

std::vector<std::string> Reader::strings(const toml::table& table, const std::string& key,
                                         const std::string& where) const {
  std::vector<std::string> out;
  const toml::node* node = table.get(key);
  if (node == nullptr) return out;
  const auto* array = node->as_array();
  if (array == nullptr) fail(node, where + "." + key + " must be an array of strings");
  for (const auto& item : *array) {
    const auto* text = item.as_string();
    if (text == nullptr || text->get().empty()) {
      fail(&item, where + "." + key + " must hold non-empty strings");
    }
    out.push_back(text->get());
  }
  return out;
}

const toml::table* sub_table(const Reader& reader, const toml::table& parent,
                             const std::string& name) {
  const toml::node* node = parent.get(name);
  if (node == nullptr) return nullptr;
  const toml::table* table = node->as_table();
  if (table == nullptr) reader.fail(node, "[" + name + "] must be a table");
  return table;
}

}  // namespace stir::toml_config
