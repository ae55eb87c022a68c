// Reading a ListenerConfig from a server's [server] table
// (stir/http/listener.h): one reader for `sks serve` and `tn-cr serve`.
//
// Threads: stateless. Errors: stir::Error(kConfig) with the file and line
// (stir/toml_config.h).
#pragma once

#include <toml++/toml.h>

#include <set>
#include <string>

#include "stir/http/listener.h"
#include "stir/toml_config.h"

namespace stir::http {

// Which settings a server offers in its [server] table: tn-cr has no
// client certificates and a fixed body limit.
struct ListenerKeys {
  bool client_certificates = true;  // client_ca, lab_no_client_cert, client_verify_depth
  bool body_limit = true;           // max_body_bytes
  // false: the TLS files (and client_ca) are optional and the lab switches
  // are not offered; the caller decides what their absence means (sks's
  // [metrics]: plain HTTP, on loopback only).
  bool tls_required = true;  // lab_plain_http, lab_no_client_cert
};

// The keys read_listener() reads with `keys`, aliases included; the caller
// adds its own to the table's allowed keys.
std::set<std::string> listener_keys(const ListenerKeys& keys);

// Reads the listener settings of `table` (named `where` in messages) into
// `config`; an absent key keeps the value `config` holds. With
// keys.tls_required, checks that TLS files are given unless lab_plain_http
// (and client_ca unless lab_no_client_cert, when the server has client
// certificates).
void read_listener(const stir::toml_config::Reader& reader, const toml::table& table,
                   const std::string& where, const ListenerKeys& keys, ListenerConfig& config);

}  // namespace stir::http
