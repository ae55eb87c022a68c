// sks rotate status|plan|start|install-cert|publish|activate|retire|destroy|
// compromise|run|adopt: the rotation manager (sks/rotation/manager.h) on the
// command line. Every command is idempotent; --json prints
// {"actions":[...]} (status: the status document) for automation. Exit
// codes are the project's table (stir/exit_codes.h): 0 done or nothing to
// do, 65 an illegal step (the message says why and what next), 66 unknown
// profile or key, 73 a different certificate is already installed, 74 a
// step failed or an instance stays behind the state, 78 configuration (a
// profile without [profile.rotation]). Every action done is printed, also
// when a later one failed (run goes on with the other profiles and exits
// with the first failure's code at the end).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "sks/rotation/adopt.h"
#include "sks/rotation/manager.h"
#include "stir/error.h"
#include "stir/files.h"

namespace sks::cli {
namespace {

using rotation::Action;

struct RotateOptions {
  std::string profile;
  std::string chain;
  std::string key;
  std::string state;
  bool json = false;
  bool force = false;
  bool reuse_key = false;
};

// --profile, or the only profile with [profile.rotation].
std::string profile_of(const Config& config, const RotateOptions& o) {
  if (!o.profile.empty()) return o.profile;
  std::string only;
  for (const auto& p : config.profiles) {
    if (!p.rotation.enabled) continue;
    if (!only.empty()) {
      throw stir::Error(stir::ErrorCode::kInvalidArgument,
                        "several profiles rotate; name one with --profile");
    }
    only = p.name;
  }
  if (only.empty()) {
    throw stir::Error(stir::ErrorCode::kConfig,
                      "no [[profile]] has a [profile.rotation] table; add one to rotate its keys");
  }
  return only;
}

// Prints every action, then fails with the first failed action's code.
void print(const std::vector<Action>& actions, bool json) {
  const Action* failed = nullptr;
  std::size_t failures = 0;
  for (const auto& a : actions) {
    if (!a.failed) continue;
    if (failed == nullptr) failed = &a;
    ++failures;
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& a : actions) {
      out.push_back({{"profile", a.profile},
                     {"id", a.id},
                     {"key", a.label},
                     {"action", a.what},
                     {"changed", a.changed},
                     {"failed", a.failed},
                     {"message", a.message}});
    }
    std::cout << nlohmann::json{{"actions", out}}.dump() << "\n";
  } else {
    for (const auto& a : actions) {
      std::cout << (a.profile.empty() ? "" : a.profile + ": ")
                << (a.failed    ? "FAILED: "
                    : a.changed ? ""
                                : "(no change) ")
                << a.message << "\n";
    }
  }
  std::cout.flush();
  if (failed != nullptr) {
    throw stir::Error(
        failed->code,
        (failures > 1 ? std::to_string(failures) + " failures; first: " : std::string()) +
            (failed->profile.empty() ? "" : failed->profile + ": ") + failed->message);
  }
}

void print_status(const nlohmann::json& status, bool json) {
  if (json) {
    std::cout << status.dump() << "\n";
    return;
  }
  std::cout << "state file: " << status["state_file"].get<std::string>() << " (now "
            << status["now"].get<std::string>() << ")\n";
  std::cout << "generation " << status["generation"].get<std::int64_t>() << "\n";
  if (status["instances"].empty()) {
    std::cout << "instances: none known (no rotation.instances, and no running local sks serve "
                 "reports beside the state)\n";
  }
  for (const auto& i : status["instances"]) {
    std::cout << "instance " << i["name"].get<std::string>() << ": ";
    if (!i["reachable"].get<bool>()) {
      std::cout << "UNKNOWN (" << i["problem"].get<std::string>() << ")\n";
      continue;
    }
    std::cout << "generation " << i["generation"].get<std::int64_t>()
              << (i["behind"].get<bool>() ? " BEHIND" : " current") << ", last reload "
              << (i["reload_ok"].get<bool>() ? "ok"
                                             : "FAILED: " + i["reload_error"].get<std::string>())
              << "\n";
    for (const auto& s : i["signs"]) {
      std::cout << "  " << s["profile"].get<std::string>() << " signs with "
                << s["key"].get<std::string>() << " " << s["x5u"].get<std::string>() << " since "
                << s["since"].get<std::string>() << "\n";
    }
  }
  for (const auto& p : status["profiles"]) {
    std::cout << "profile " << p["profile"].get<std::string>()
              << (p["orphan"].get<bool>()
                      ? " (NOT IN THE CONFIG: retire and destroy its keys with --profile)"
                  : p["rotation"].get<bool>() ? ""
                                              : " (no rotation: key and x5u from the config)")
              << "\n";
    for (const auto& k : p["keys"]) {
      std::cout << "  #" << k["id"].get<int>() << " " << k["label"].get<std::string>() << "  "
                << k["state"].get<std::string>();
      if (!k["x5u"].get<std::string>().empty()) std::cout << "  " << k["x5u"].get<std::string>();
      if (!k["not_after"].get<std::string>().empty()) {
        std::cout << "  valid " << k["not_before"].get<std::string>() << " to "
                  << k["not_after"].get<std::string>();
      }
      if (!k["next"].get<std::string>().empty()) {
        std::cout << "  next: " << k["next"].get<std::string>() << " at "
                  << k["next_at"].get<std::string>();
      }
      std::cout << "\n";
    }
  }
}

// Runs `body` with the manager; with_token opens the token first.
template <typename Body>
void with_manager(const Context& context, bool with_token, Body body) {
  const Config config = load_cli_config(context);
  std::unique_ptr<Hsm> hsm;
  if (with_token) hsm = Hsm::open(config.token);
  rotation::Manager manager(config, hsm ? &hsm->keys() : nullptr);
  body(config, manager);
}

using Options = std::shared_ptr<RotateOptions>;

// A `sks rotate` subcommand with --config, --json and (profile_option)
// --profile.
CLI::App* add_command(CLI::App& rotate, Context& context, const Options& o, const char* name,
                      const char* help, bool profile_option) {
  auto* c = rotate.add_subcommand(name, help);
  add_config_option(c, context);
  if (profile_option) {
    c->add_option("--profile", o->profile,
                  "signing profile (default: the only one with [profile.rotation])");
  }
  c->add_flag("--json", o->json, "machine-readable output");
  return c;
}

// status and plan: read only.
void add_inspect_commands(CLI::App& rotate, Context& context, const Options& o) {
  auto command = [&rotate, &context, &o](const char* name, const char* help, bool profile_option) {
    return add_command(rotate, context, o, name, help, profile_option);
  };
  command("status", "every key of every profile: state, x5u, validity, next step and when", true)
      ->callback([&context, o] {
        with_manager(context, false, [o](const Config&, rotation::Manager& m) {
          print_status(m.status(o->profile), o->json);
        });
      });
  command("plan", "what `sks rotate run` would do now, changing nothing", true)
      ->callback([&context, o] {
        with_manager(context, false, [o](const Config& c, rotation::Manager& m) {
          print(m.run(profile_of(c, *o), true), o->json);
        });
      });
}

// One rotation step each, in their order.
void add_step_commands(CLI::App& rotate, Context& context, const Options& o) {
  auto command = [&rotate, &context, &o](const char* name, const char* help, bool profile_option) {
    return add_command(rotate, context, o, name, help, profile_option);
  };
  auto* start = command("start", "generate a new key in the token and its CSR", true);
  start->add_flag("--reuse-key", o->reuse_key,
                  "renew the certificate of the active key instead (a new URL, same key)");
  start->callback([&context, o] {
    with_manager(context, true, [o](const Config& c, rotation::Manager& m) {
      print(m.start(profile_of(c, *o), o->reuse_key), o->json);
    });
  });
  auto* install =
      command("install-cert", "check and install the new key's certificate chain", true);
  install->add_option("--chain", o->chain, "PEM chain, end-entity first")->required();
  install->callback([&context, o] {
    const std::string chain = stir::read_file(o->chain);
    with_manager(context, true, [o, &chain](const Config& c, rotation::Manager& m) {
      print(m.install_cert(profile_of(c, *o), chain), o->json);
    });
  });
  command("publish", "publish the new chain at its new x5u (publish_command)", true)
      ->callback([&context, o] {
        with_manager(context, false, [o](const Config& c, rotation::Manager& m) {
          print(m.publish(profile_of(c, *o)), o->json);
        });
      });
  command("activate",
          "sign with the new key once its x5u serves the chain; the old key starts draining", true)
      ->callback([&context, o] {
        with_manager(context, true, [o](const Config& c, rotation::Manager& m) {
          print(m.activate(profile_of(c, *o)), o->json);
        });
      });
}

// Taking a key out: after its drain, or at once.
void add_withdraw_commands(CLI::App& rotate, Context& context, const Options& o) {
  auto command = [&rotate, &context, &o](const char* name, const char* help, bool profile_option) {
    return add_command(rotate, context, o, name, help, profile_option);
  };
  auto* retire =
      command("retire", "unpublish the drained key's chain once the drain has passed", true);
  retire->add_flag("--force", o->force,
                   "retire before the drain ends, or while an instance still signs with the key "
                   "or cannot be read: verifiers reject the calls it signed");
  retire->callback([&context, o] {
    with_manager(context, false, [o](const Config& c, rotation::Manager& m) {
      print(m.retire(profile_of(c, *o), o->force), o->json);
    });
  });
  auto* destroy = command("destroy", "destroy retired (or compromised) keys in the token", true);
  destroy->add_option("--key", o->key, "only this key label");
  destroy->add_flag("--force", o->force,
                    "destroy even while an instance still signs with the key or cannot be read: "
                    "its signing fails from then on");
  destroy->callback([&context, o] {
    with_manager(context, true, [o](const Config& c, rotation::Manager& m) {
      print(m.destroy(profile_of(c, *o), o->key, o->force), o->json);
    });
  });
  auto* compromise =
      command("compromise",
              "stop signing with a key now, unpublish its chain and revoke its certificate", false);
  compromise->add_option("--key", o->key, "key label")->required();
  compromise->add_flag("--force", o->force,
                       "also stop profiles without rotation that sign with the key, and "
                       "unpublish even while an instance still signs with it");
  compromise->callback([&context, o] {
    with_manager(context, false, [o](const Config&, rotation::Manager& m) {
      print(m.compromise(o->key, o->force), o->json);
    });
  });
}

// The fleet: adopt the controller's state; run every due step.
void add_fleet_commands(CLI::App& rotate, Context& context, const Options& o) {
  auto command = [&rotate, &context, &o](const char* name, const char* help, bool profile_option) {
    return add_command(rotate, context, o, name, help, profile_option);
  };
  auto* adopt = command("adopt",
                        "take the fleet controller's rotation state as this instance's, once its "
                        "active keys are in the token and their x5u are served",
                        false);
  adopt->add_option("--state", o->state, "the controller's state file (a copy)")->required();
  adopt->callback([&context, o] {
    const Config config = load_cli_config(context);
    const std::unique_ptr<Hsm> hsm = Hsm::open(config.token);
    print(rotation::adopt_state(config, hsm->keys(), o->state), o->json);
  });
  command("run", "advance every profile as far as is safe now (for a timer; safe to repeat)", true)
      ->callback([&context, o] {
        with_manager(context, true, [o](const Config&, rotation::Manager& m) {
          print(m.run(o->profile, false), o->json);
        });
      });
}

}  // namespace

void add_rotate_commands(CLI::App& rotate, Context& context) {
  // One set of option values: CLI11 runs one subcommand per invocation.
  const auto o = std::make_shared<RotateOptions>();
  add_inspect_commands(rotate, context, o);
  add_step_commands(rotate, context, o);
  add_withdraw_commands(rotate, context, o);
  add_fleet_commands(rotate, context, o);
}

}  // namespace sks::cli
