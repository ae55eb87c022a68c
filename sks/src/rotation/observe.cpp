#include "sks/rotation/observe.h"

#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "sks/rotation/manager.h"
#include "sks/rotation/state.h"

namespace sks::rotation {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxReportBytes = 1 << 20;

InstanceView read_local(const Config& config, bool& present) {
  InstanceView view;
  view.local = true;
  const std::string path = server_status_path(config);
  std::ifstream in(path, std::ios::binary);
  present = static_cast<bool>(in);
  if (!present) return view;
  std::string text(kMaxReportBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  const json document = json::parse(text, nullptr, false);
  if (text.size() > kMaxReportBytes || document.is_discarded() || !document.is_object()) {
    view.name = "local server";
    view.problem = path + " is not a server status document";
    return view;
  }
  view.pid = document.value("pid", 0);
  view.name = "local server (pid " + std::to_string(view.pid) + ")";
  const std::int64_t ticks = document.value("start_ticks", std::int64_t{0});
  if (view.pid <= 0 || ticks == 0 || process_start_ticks(view.pid) != ticks) {
    present = false;  // a server that is no longer running signs nothing
    return view;
  }
  try {
    read_report(document, view);
    view.reachable = true;
  } catch (const std::exception& e) {
    view.problem = path + ": " + e.what();
  }
  return view;
}

InstanceView read_remote(const Config& config, const std::string& url) {
  InstanceView view;
  view.name = url;
  // https://host[:port][/prefix]
  std::string rest = url.substr(8);
  std::string prefix;
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    prefix = rest.substr(slash);
    rest.resize(slash);
  }
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::string host = rest;
  int port = 443;
  if (const auto colon = rest.rfind(':');
      colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    host = rest.substr(0, colon);
    port = std::atoi(rest.substr(colon + 1).c_str());
  }
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const RotationConfig& r = config.rotation;
  httplib::SSLClient client(host, port, r.admin_cert, r.admin_key);
  if (!r.admin_ca.empty()) client.set_ca_cert_path(r.admin_ca.c_str());
  client.enable_server_certificate_verification(true);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(5, 0);
  client.set_write_timeout(5, 0);
  std::string body;
  const auto response =
      client.Get((prefix + "/admin/v1/keys").c_str(), [&](const char* data, std::size_t size) {
        if (body.size() + size > kMaxReportBytes) return false;
        body.append(data, size);
        return true;
      });
  if (!response) {
    view.problem = "does not answer: " + httplib::to_string(response.error());
    return view;
  }
  if (response->status != 200) {
    view.problem = "GET /admin/v1/keys answered " + std::to_string(response->status) +
                   (response->status == 403 ? " (admin_cert is not in its server.admins)" : "");
    return view;
  }
  const json document = json::parse(body, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    view.problem = "GET /admin/v1/keys is not JSON";
    return view;
  }
  try {
    read_report(document, view);
    view.reachable = true;
  } catch (const std::exception& e) {
    view.problem = std::string("GET /admin/v1/keys: ") + e.what();
  }
  return view;
}

}  // namespace

void read_report(const json& document, InstanceView& view) {
  view.generation = document.value("generation", std::int64_t{0});
  view.reload_ok = document.value("reload_ok", true);
  view.reload_error = document.value("error", "");
  view.reload_time = document.value("reload_time", std::int64_t{0});
  const json profiles = document.value("profiles", json::array());
  if (!profiles.is_array()) throw std::runtime_error("profiles is not an array");
  for (const auto& p : profiles) {
    if (!p.is_object() || !p.contains("profile") || !p["profile"].is_string()) continue;
    if (!p.contains("key") || !p["key"].is_string()) continue;  // null: signs nothing
    InstanceView::Signs s;
    s.key = p["key"].get<std::string>();
    s.x5u = p.value("x5u", "");
    s.since = p.value("since", std::int64_t{0});
    view.signs[p["profile"].get<std::string>()] = s;
  }
}

bool InstanceView::signs_x5u(const std::string& x5u) const {
  for (const auto& [profile, s] : signs) {
    if (s.x5u == x5u) return true;
  }
  return false;
}

bool InstanceView::signs_key(const std::string& label) const {
  for (const auto& [profile, s] : signs) {
    if (s.key == label) return true;
  }
  return false;
}

std::string InstanceView::describe(std::int64_t state_generation) const {
  if (!reachable) return name + ": UNKNOWN: " + problem;
  std::string out = name + ": generation " + std::to_string(generation) + " of " +
                    std::to_string(state_generation) +
                    (generation < state_generation ? " (BEHIND)" : " (current)") +
                    ", last reload " + (reload_ok ? "ok" : "FAILED: " + reload_error);
  return out;
}

json InstanceView::to_json(std::int64_t state_generation) const {
  json s = json::array();
  for (const auto& [profile, k] : signs) {
    s.push_back(
        {{"profile", profile}, {"key", k.key}, {"x5u", k.x5u}, {"since", utc_text(k.since)}});
  }
  return {{"name", name},
          {"reachable", reachable},
          {"problem", problem},
          {"generation", generation},
          {"behind", !reachable || generation < state_generation},
          {"reload_ok", reload_ok},
          {"reload_error", reload_error},
          {"reload_time", utc_text(reload_time)},
          {"signs", s}};
}

std::vector<InstanceView> observe_instances(const Config& config) {
  std::vector<InstanceView> out;
  if (!config.rotation.instances.empty()) {
    for (const auto& url : config.rotation.instances) out.push_back(read_remote(config, url));
    return out;
  }
  bool present = false;
  InstanceView local = read_local(config, present);
  if (present) out.push_back(std::move(local));
  return out;
}

std::int64_t process_start_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return 0;
  // The command name (field 2) may hold spaces: count from its ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return 0;
}

}  // namespace sks::rotation
