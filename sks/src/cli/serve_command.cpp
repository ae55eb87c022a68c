// sks serve: the HTTPS signing API. SIGTERM or SIGINT drains in-flight
// requests and exits 0; SIGHUP re-reads the config's profiles and the
// rotation state, self-tests every key and swaps the key ring without a
// restart; a failed reload keeps the old ring (log, /metrics, status file).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_support.h"
#include "sks/rotation/manager.h"
#include "sks/server/server.h"
#include "stir/error.h"

namespace sks::cli {
namespace {

// The last reload's outcome beside the rotation state, so `sks rotate
// status` can show what the running server signs with. Best effort: a
// server that cannot write it still serves.
void write_server_status(const Config& config, bool ok, const std::string& error) {
  if (!config.rotation.present || !config.server.signing) return;
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& p : config.profiles)
    keys.push_back({{"profile", p.name}, {"key", p.key}, {"x5u", p.x5u}});
  const nlohmann::json status = {{"pid", ::getpid()},
                                 {"time", static_cast<std::int64_t>(std::time(nullptr))},
                                 {"reload_ok", ok},
                                 {"error", error},
                                 {"keys", keys}};  // what the server signs with now
  try {
    write_file_atomic(rotation::server_status_path(config), status.dump() + "\n", 0640);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cannot write the server status file: %s\n", e.what());
  }
}

void run_serve(const Context& context) {
  // Block the signals before any thread starts, so only the watcher gets them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const Config config = rotation::apply_rotation_state(load_cli_config(context));
  // A verification-only server has no token to open.
  std::unique_ptr<Hsm> hsm;
  if (config.server.signing) hsm = Hsm::open(config.token);
  if (hsm) hsm->start_recovery();  // reconnects by itself when the token comes back
  server::SigningServer server(config, hsm ? &hsm->keys() : nullptr);
  const int port = server.bind();
  const std::string ready = server.readiness();
  if (!ready.empty()) throw stir::Error(stir::ErrorCode::kPkcs11, "self-test failed: " + ready);
  write_server_status(config, true, "");

  std::thread watcher([&server, &signals, path = config.path, current = config]() mutable {
    for (;;) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) continue;
      if (signal == SIGHUP) {
        try {
          Config fresh = rotation::apply_rotation_state(load_config(path));
          server.reload(fresh);
          std::fprintf(stderr, "reloaded signing profiles from %s and the rotation state\n",
                       path.c_str());
          write_server_status(fresh, true, "");
          current = std::move(fresh);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "reload failed, keeping the current key ring: %s\n", e.what());
          write_server_status(current, false, e.what());
        }
        continue;
      }
      std::fprintf(stderr, "signal %d: draining in-flight requests, then exiting\n", signal);
      server.stop();
      return;
    }
  });
  std::cout << "listening on " << server.scheme() << "://"
            << (config.server.listen.find(':') != std::string::npos
                    ? "[" + config.server.listen + "]"
                    : config.server.listen)
            << ":" << port << config.server.api_root
            << (config.server.signing ? "/signing" : "/verification") << std::endl;
  server.serve();
  if (watcher.joinable()) {
    pthread_kill(watcher.native_handle(), SIGTERM);  // wakes it if serve() ended by itself
    watcher.join();
  }
}

}  // namespace

void add_serve_command(CLI::App& app, Context& context) {
  auto* serve = app.add_subcommand("serve", "run the HTTPS signing API (ATIS-1000082)");
  add_config_option(serve, context);
  serve->callback([&context] { run_serve(context); });
}

}  // namespace sks::cli
