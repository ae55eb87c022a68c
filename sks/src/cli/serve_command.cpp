// sks serve: the HTTPS signing API. SIGTERM or SIGINT drains in-flight
// requests and exits 0; SIGHUP re-reads the config's profiles and swaps the
// key ring without a restart.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "cli_support.h"
#include "sks/server/server.h"
#include "stir/error.h"

namespace sks::cli {
namespace {

void run_serve(const Context& context) {
  // Block the signals before any thread starts, so only the watcher gets them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const Config config = load_cli_config(context);
  // A verification-only server has no token to open.
  std::unique_ptr<Hsm> hsm;
  if (config.server.signing) hsm = Hsm::open(config.token);
  server::SigningServer server(config, hsm ? &hsm->keys() : nullptr);
  const int port = server.bind();
  const std::string ready = server.readiness();
  if (!ready.empty()) throw stir::Error(stir::ErrorCode::kPkcs11, "self-test failed: " + ready);

  std::thread watcher([&server, &signals, path = config.path] {
    for (;;) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) continue;
      if (signal == SIGHUP) {
        try {
          server.reload(load_config(path));
          std::fprintf(stderr, "reloaded signing profiles from %s\n", path.c_str());
        } catch (const std::exception& e) {
          std::fprintf(stderr, "reload failed, keeping the current key ring: %s\n", e.what());
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
