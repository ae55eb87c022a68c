#include "sks/server/admin_api.h"

#include <algorithm>

#include "stir/request_error.h"

namespace sks::server {

nlohmann::json describe_ring(const KeyRing& ring, const RingReport& report, std::int64_t now) {
  nlohmann::json profiles = ring.describe(now);
  for (auto& p : profiles) {
    const auto it = report.since.find(p["profile"].get<std::string>());
    p["since"] = it == report.since.end() ? report.loaded_at : it->second;
  }
  return {{"generation", report.generation},
          {"loaded_at", report.loaded_at},
          {"reload_ok", report.reload_ok},
          {"error", report.error},
          {"reload_time", report.reload_time},
          {"reloads", report.reloads},
          {"profiles", profiles}};
}

std::string admin_keys(const std::vector<std::string>& client_names, const KeyRing& ring,
                       const RingReport& report, const std::vector<std::string>& admins,
                       std::int64_t now) {
  const bool allowed = std::any_of(client_names.begin(), client_names.end(), [&](const auto& n) {
    return std::find(admins.begin(), admins.end(), n) != admins.end();
  });
  if (!allowed) {
    throw stir::RequestError::forbidden("this client identity is not in server.admins");
  }
  return describe_ring(ring, report, now).dump();
}

}  // namespace sks::server
