#include <unistd.h>

#include <algorithm>

#include "stir/http/listener_reader.h"
#include "stir/http/tls.h"
#include "stir/http/tls_files.h"

namespace stir::http {

namespace {

using Field = stir::toml_config::IntegerField<ListenerConfig>;

// Every integer setting, one row each (stir::toml_config::IntegerField): key,
// member, bounds. Defaults: the member initialisers in ListenerConfig, or
// the server's own, set before reading.
const Field kListenerFields[] = {
    {"port", &ListenerConfig::port, 0, 65535},
    {"io_threads", &ListenerConfig::io_threads, 0, 1024},
    {"backlog", &ListenerConfig::backlog, 0, 65535},
    {"max_connections", &ListenerConfig::max_connections, 1, 1000000},
    {"handshake_timeout_ms", &ListenerConfig::handshake_timeout_ms, 10, 600000},
    {"header_timeout_ms", &ListenerConfig::header_timeout_ms, 10, 600000},
    {"body_timeout_ms", &ListenerConfig::body_timeout_ms, 10, 600000},
    {"write_timeout_ms", &ListenerConfig::write_timeout_ms, 10, 600000},
    {"keep_alive_timeout_s", &ListenerConfig::keep_alive_timeout_s, 1, 3600},
    {"keep_alive_max_requests", &ListenerConfig::keep_alive_max_requests, 1, 100000000},
    {"first_byte_timeout_ms", &ListenerConfig::first_byte_timeout_ms, 10, 600000},
    {"max_handshakes_per_address", &ListenerConfig::max_handshakes_per_address, 0, 1000000},
    {"reserved_connection_percent", &ListenerConfig::reserved_connection_percent, 0, 90},
    {"tls_session_lifetime_s", &ListenerConfig::tls_session_lifetime_s, 0, 86400},
};
// Only with ListenerKeys::body_limit.
const Field kBodyFields[] = {
    {"max_body_bytes", &ListenerConfig::max_body_bytes, 256, 1024 * 1024},
};
// Only with ListenerKeys::client_certificates.
const Field kClientFields[] = {
    {"client_verify_depth", &ListenerConfig::client_verify_depth, 1, 10},
};

// Old names: each gives the value of the fields it stands for; their own
// keys, read afterwards, win.
const Field kAliases[] = {
    {"threads", &ListenerConfig::io_threads, 0, 1024},
    {"read_timeout_ms", &ListenerConfig::header_timeout_ms, 10, 600000},
};

void read_aliases(const stir::toml_config::Reader& reader, const toml::table& table,
                  const std::string& where, ListenerConfig& config) {
  stir::toml_config::read_integers(reader, table, where, kAliases, config);
  // read_timeout_ms stands for both the header's and the body's deadline.
  if (table.get("read_timeout_ms") != nullptr) config.body_timeout_ms = config.header_timeout_ms;
}

void require_tls_files(const stir::toml_config::Reader& reader, const toml::table& table,
                       const std::string& where, const ListenerKeys& keys,
                       const ListenerConfig& config) {
  if (config.lab_plain_http) return;
  if (config.tls_cert.empty() || config.tls_key.empty()) {
    reader.fail(&table, where + ".tls_cert and " + where +
                            ".tls_key are required (or, in a lab only, " + where +
                            ".lab_plain_http = true)");
  }
  if (keys.client_certificates && config.client_ca.empty() && !config.lab_no_client_cert) {
    reader.fail(&table, where + ".client_ca is required for mutual TLS (or, in a lab only, " +
                            where + ".lab_no_client_cert = true)");
  }
}

}  // namespace

std::set<std::string> listener_keys(const ListenerKeys& keys) {
  using stir::toml_config::with_keys;
  auto out = with_keys(with_keys({"listen", "tls_cert", "tls_key"}, kAliases), kListenerFields);
  if (keys.tls_required) out.insert("lab_plain_http");
  if (keys.body_limit) out = with_keys(std::move(out), kBodyFields);
  if (keys.client_certificates) {
    out = with_keys(std::move(out), kClientFields);
    out.insert("client_ca");
    if (keys.tls_required) out.insert("lab_no_client_cert");
  }
  return out;
}

void read_listener(const stir::toml_config::Reader& reader, const toml::table& table,
                   const std::string& where, const ListenerKeys& keys, ListenerConfig& config) {
  using stir::toml_config::read_integers;
  if (auto listen = reader.string(table, "listen", where); !listen.empty()) config.listen = listen;
  config.tls_cert = reader.path(table, "tls_cert", where);
  config.tls_key = reader.path(table, "tls_key", where);
  if (keys.tls_required) {
    config.lab_plain_http = reader.boolean(table, "lab_plain_http", where, config.lab_plain_http);
  }
  read_aliases(reader, table, where, config);
  read_integers(reader, table, where, kListenerFields, config);
  if (keys.body_limit) read_integers(reader, table, where, kBodyFields, config);
  if (keys.client_certificates) {
    config.client_ca = reader.path(table, "client_ca", where);
    if (keys.tls_required) {
      config.lab_no_client_cert =
          reader.boolean(table, "lab_no_client_cert", where, config.lab_no_client_cert);
    }
    read_integers(reader, table, where, kClientFields, config);
  }
  if (keys.tls_required) require_tls_files(reader, table, where, keys, config);
}

Options listener_options(const ListenerConfig& c, std::shared_ptr<boost::asio::ssl::context> tls) {
  using std::chrono::milliseconds;
  Options o;
  o.listen = c.listen;
  o.port = c.port;
  o.tls = std::move(tls);
  o.backlog = c.backlog;
  o.max_connections = c.max_connections;
  o.io_threads = c.io_threads;
  o.handshake_timeout = milliseconds(c.handshake_timeout_ms);
  o.first_byte_timeout = milliseconds(c.first_byte_timeout_ms);
  o.max_handshakes_per_address = c.max_handshakes_per_address;
  o.reserved_connections =
      c.max_connections * static_cast<std::size_t>(c.reserved_connection_percent) / 100;
  o.header_timeout = milliseconds(c.header_timeout_ms);
  o.body_timeout = milliseconds(c.body_timeout_ms);
  o.write_timeout = milliseconds(c.write_timeout_ms);
  o.idle_timeout = std::chrono::seconds(c.keep_alive_timeout_s);
  o.keep_alive_max_requests = c.keep_alive_max_requests;
  o.body_limit = c.max_body_bytes;
  return o;
}

std::shared_ptr<boost::asio::ssl::context> make_listener_tls(
    const ListenerConfig& c, std::string_view program,
    const std::function<void(std::string_view)>& warn) {
  if (c.lab_plain_http) {
    warn("WARNING: lab_plain_http: serving plain HTTP without TLS. Never in production.");
    return nullptr;
  }
  TlsSettings files{c.tls_cert, c.tls_key, c.lab_no_client_cert ? std::string() : c.client_ca};
  files.verify_depth = c.client_verify_depth;
  files.session_lifetime_s = c.tls_session_lifetime_s;
  files.client_certificate_optional = c.client_certificate_optional;
  check_tls_files(files, ::geteuid(), program);
  if (c.lab_no_client_cert) {
    warn("WARNING: lab_no_client_cert: clients are not authenticated. Never in production.");
  }
  return make_server_tls_context(files);
}

bool client_listed(const std::vector<std::string>& allowed,
                   const std::vector<std::string>& client_names) {
  return std::any_of(client_names.begin(), client_names.end(), [&](const std::string& name) {
    return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
  });
}

std::string listener_url(const ListenerConfig& c, int port) {
  const bool v6 = c.listen.find(':') != std::string::npos;
  return std::string(c.lab_plain_http ? "http" : "https") + "://" +
         (v6 ? "[" + c.listen + "]" : c.listen) + ":" + std::to_string(port);
}

}  // namespace stir::http
