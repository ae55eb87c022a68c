// sks serve: the HTTPS signing API. SIGTERM or SIGINT drains in-flight
// requests and exits 0; SIGHUP re-reads the config's profiles and the
// rotation state, self-tests every key and swaps the key ring without a
// restart; a failed reload keeps the old ring (log, /metrics, status file).
// [server] and [metrics] (the listeners) change only with a restart.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_support.h"
#include "sks/rotation/manager.h"
#include "sks/rotation/observe.h"
#include "sks/server/server.h"
#include "stir/error.h"
#include "stir/exit_codes.h"
#include "stir/files.h"

namespace sks::cli {
namespace {

// What the server loaded and signs with (the document of GET
// /admin/v1/keys), its pid and start time (so a stale file of a stopped
// server is told apart), beside the rotation state: the local instance's
// report to `sks rotate`. Best effort: a server that cannot write it still
// serves.
void write_server_status(const Config& config, const server::ApiServer& server) {
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

// Blocks the signals sks serve handles, before any thread starts, so only
// the watcher gets them; returns them.
sigset_t block_serve_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// The token of a signing server, reconnecting by itself when the token comes
// back; none for a verification-only server. A call into the module that
// never returns cannot be undone in-process: exit 75 for the supervisor to
// restart us (exit_codes.h).
std::unique_ptr<Hsm> open_token(const Config& config) {
  if (!config.server.signing) return nullptr;
  std::unique_ptr<Hsm> hsm = Hsm::open(config.token);
  hsm->start_recovery([](const p11::CallInFlight& call) {
    stir::exit_at_once(
        "sks", stir::kExitTokenWedged,
        "the token module is stuck: " + call.function + " has not returned for " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(call.age).count()) +
            " s; exiting so that the supervisor starts sks afresh");
  });
  return hsm;
}

// The [metrics] settings a reload cannot change (the listener is bound
// once, at start).
bool same_metrics_listener(const MetricsConfig& a, const MetricsConfig& b) {
  return a.present == b.present && a.listen == b.listen && a.port == b.port &&
         a.tls_cert == b.tls_cert && a.tls_key == b.tls_key && a.client_ca == b.client_ca &&
         a.clients == b.clients;
}

// SIGHUP: re-reads the config at `path`; `current` becomes it once the
// server has reloaded it. A failure keeps the old ring, said in the log,
// /metrics and the status file. A [metrics] other than `running` (the
// listener's, from the start) is said to wait for a restart.
void reload_on_hangup(server::ApiServer& server, const std::string& path, Config& current,
                      const MetricsConfig& running) {
  bool reached_reload = false;  // reload() records its own failure
  try {
    Config fresh = load_config(path);
    reached_reload = true;
    server.reload(fresh);
    std::fprintf(stderr, "reloaded signing profiles from %s and the rotation state\n",
                 path.c_str());
    if (!same_metrics_listener(fresh.metrics, running)) {
      std::fprintf(stderr,
                   "[metrics] differs from the running listener's: it takes effect at the next "
                   "restart\n");
    }
    write_server_status(fresh, server);
    current = std::move(fresh);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reload failed, keeping the current key ring: %s\n", e.what());
    if (!reached_reload) server.reload_failed(e.what());
    write_server_status(current, server);
  }
}

// serve() has returned: what the signal watcher waits for while it drains.
struct Served {
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;
};

constexpr auto kDrain = std::chrono::seconds(10);

// SIGTERM or SIGINT: drains, and waits for serve() to return.
void drain(int signal, server::ApiServer& server, Served& served, Hsm* hsm) {
  std::fprintf(stderr, "signal %d: draining in-flight requests, then exiting\n", signal);
  server.stop(kDrain);
  // A request whose token call never returns holds the drain (its worker
  // keeps the I/O loop alive) past its bound: end without it.
  std::unique_lock lock(served.mutex);
  if (!served.changed.wait_for(lock, kDrain + std::chrono::seconds(2),
                               [&] { return served.done; }) &&
      hsm != nullptr && hsm->module().oldest_call()) {
    stir::exit_at_once("sks", stir::kExitTokenWedged,
                       "the drain did not end: a call into the token module has not "
                       "returned; exiting without it");
  }
}

// The signal watcher's thread: reloads on SIGHUP until a signal to stop.
void watch_signals(sigset_t signals, server::ApiServer& server, Config current, Served& served,
                   Hsm* hsm) {
  const std::string path = current.path;
  const MetricsConfig running = current.metrics;
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal != SIGHUP) return drain(signal, server, served, hsm);
    reload_on_hangup(server, path, current, running);
  }
}

void print_listening(const Config& config, const server::ApiServer& server, int port) {
  const std::string& listen = config.server.listen;
  std::cout << "listening on " << server.scheme() << "://"
            << (listen.find(':') != std::string::npos ? "[" + listen + "]" : listen) << ":" << port
            << config.server.api_root << (config.server.signing ? "/signing" : "/verification")
            << std::endl;
  if (const std::string metrics = server.metrics_url(); !metrics.empty()) {
    std::cout << "metrics on " << metrics << std::endl;
  }
}

void run_serve(const Context& context) {
  const sigset_t signals = block_serve_signals();
  const Config config = load_cli_config(context);
  std::unique_ptr<Hsm> hsm = open_token(config);
  server::ApiServer server(config, hsm ? &hsm->keys() : nullptr);
  const int port = server.bind();
  const std::string ready = server.readiness();
  if (!ready.empty()) throw stir::Error(stir::ErrorCode::kPkcs11, "self-test failed: " + ready);
  write_server_status(config, server);

  Served served;
  std::thread watcher(watch_signals, signals, std::ref(server), config, std::ref(served),
                      hsm.get());
  print_listening(config, server, port);
  server.serve();
  {
    std::lock_guard lock(served.mutex);
    served.done = true;
  }
  served.changed.notify_all();
  if (watcher.joinable()) {
    pthread_kill(watcher.native_handle(), SIGTERM);  // wakes it if serve() ended by itself
    watcher.join();
  }
  // The drain is over. A thread still inside the module (a request whose
  // C_Sign never returned) would hold the server's and the token's
  // destructors for good: end without them.
  if (hsm && !hsm->quiesce(std::chrono::seconds(1))) {
    stir::exit_at_once("sks", stir::kExitTokenWedged,
                       "a call into the token module has not returned after the drain; exiting "
                       "without finalising the module");
  }
}

}  // namespace

void add_serve_command(CLI::App& app, Context& context) {
  auto* serve = app.add_subcommand("serve", "run the HTTPS signing API (ATIS-1000082)");
  add_config_option(serve, context);
  serve->callback([&context] { run_serve(context); });
}

}  // namespace sks::cli
