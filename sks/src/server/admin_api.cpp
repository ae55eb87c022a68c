#include "sks/server/admin_api.h"

#include <algorithm>

#include "sks/server/api_error.h"

namespace sks::server {

AdminResponse admin_keys(const std::vector<std::string>& client_names, const KeyRing& ring,
                         const std::vector<std::string>& admins, std::int64_t now) {
  const bool allowed = std::any_of(client_names.begin(), client_names.end(), [&](const auto& n) {
    return std::find(admins.begin(), admins.end(), n) != admins.end();
  });
  if (!allowed) {
    const ApiError error = ApiError::forbidden("this client identity is not in server.admins");
    return {error.http_status, error.body()};
  }
  return {200, nlohmann::json{{"profiles", ring.describe(now)}}.dump()};
}

}  // namespace sks::server
