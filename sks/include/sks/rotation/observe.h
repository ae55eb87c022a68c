// What the running signing instances actually do, as the rotation manager
// sees it (intent is not fact: sks/rotation/manager.h acts on this).
//
// The fleet: the admin URLs of [rotation] instances, each read with
// GET /admin/v1/keys and the admin client certificate; without them, the
// local `sks serve`, through the status file it writes beside the rotation
// state at start-up and at every reload (a file left by a server that is
// no longer running is ignored: its pid and start time must match a live
// process).
//
// Threads: blocking calls (one HTTPS request per instance, 5 s timeout);
// no shared state. Errors: never throws for an instance that does not
// answer: its view says why (reachable = false).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sks/config.h"

namespace sks::rotation {

struct InstanceView {
  struct Signs {
    std::string key;
    std::string x5u;
    std::int64_t since = 0;  // when it started signing with this (key, x5u)
  };
  std::string name;    // "local server (pid N)" or the admin URL
  bool local = false;  // the local server (reloaded with SIGHUP when no reload_command)
  pid_t pid = 0;       // local only
  bool reachable = false;
  std::string problem;          // why it could not be read
  std::int64_t generation = 0;  // the rotation state generation it loaded
  bool reload_ok = true;
  std::string reload_error;
  std::int64_t reload_time = 0;
  std::map<std::string, Signs> signs;  // profile -> what it signs with (absent: nothing)

  // Whether any profile signs with this x5u (or, with only_key, this key label).
  bool signs_x5u(const std::string& x5u) const;
  bool signs_key(const std::string& label) const;
  // Reachable and at `generation` or later.
  bool current(std::int64_t generation) const {
    return reachable && this->generation >= generation;
  }
  // One line for the operator.
  std::string describe(std::int64_t state_generation) const;
  nlohmann::json to_json(std::int64_t state_generation) const;
};

// Reads every instance of the fleet now.
std::vector<InstanceView> observe_instances(const Config& config);

// The start time of a process (field 22 of /proc/PID/stat), 0 when none.
std::int64_t process_start_ticks(pid_t pid);

// Parses one instance report (the document of GET /admin/v1/keys).
void read_report(const nlohmann::json& document, InstanceView& view);

}  // namespace sks::rotation
