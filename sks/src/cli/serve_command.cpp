// sks serve: the HTTPS signing API. SIGTERM or SIGINT drains in-flight
// requests and exits 0; SIGHUP re-reads the config's profiles and the
// rotation state, self-tests every key and swaps the key ring without a
// restart; a failed reload keeps the old ring (log, /metrics, status file).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_support.h"
#include "sks/rotation/manager.h"
#include "sks/rotation/observe.h"
#include "sks/server/server.h"
#include "stir/error.h"
#include "stir/files.h"

namespace sks::cli {
namespace {

// What the server loaded and signs with (the document of GET
// /admin/v1/keys), its pid and start time (so a stale file of a stopped
// server is told apart), beside the rotation state: the local instance's
// report to `sks rotate`. Best effort: a server that cannot write it still
// serves.
void write_server_status(const Config& config, const server::SigningServer& server) {
  if (!config.rotation.present || !config.server.signing) return;
  nlohmann::json status = server.ring_report();
  status["pid"] = ::getpid();
  status["start_ticks"] = rotation::process_start_ticks(::getpid());
  // Older readers (the Ansible role) read these two names.
  status["time"] = status.value("reload_time", std::int64_t{0});
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& p : status.value("profiles", nlohmann::json::array())) keys.push_back(p);
  status["keys"] = keys;
  try {
    const std::string path = rotation::server_status_path(config);
    // Before the first rotation the state's folder may not exist yet.
    stir::ensure_directory(std::filesystem::path(path).parent_path().string(), 0750);
    write_file_atomic(path, status.dump() + "\n", 0640);
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
  write_server_status(config, server);

  std::thread watcher([&server, &signals, path = config.path, current = config]() mutable {
    for (;;) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) continue;
      if (signal == SIGHUP) {
        bool reported = false;  // reload() reports its own failure
        try {
          Config fresh = rotation::apply_rotation_state(load_config(path));
          reported = true;
          server.reload(fresh);
          std::fprintf(stderr, "reloaded signing profiles from %s and the rotation state\n",
                       path.c_str());
          write_server_status(fresh, server);
          current = std::move(fresh);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "reload failed, keeping the current key ring: %s\n", e.what());
          if (!reported) server.reload_failed(e.what());
          write_server_status(current, server);
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
