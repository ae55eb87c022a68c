// tn-cr serve | check-config.
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "cli.h"
#include "stir/error.h"
#include "tn_cr/server.h"

namespace tn_cr::cli {
namespace {

Config load_server_config(const Context& context) {
  Config config = load_cli_config(context);
  if (!config.has_server) {
    throw stir::Error(stir::ErrorCode::kConfig,
                      config.path + ": no [server] table; tn-cr serve needs one");
  }
  return config;
}

// Serves until SIGTERM or SIGINT, then stops accepting, finishes the
// requests in flight and returns. The signals are blocked in every thread
// (the mask is set before any thread starts and inherited) and taken by one
// watcher thread with sigtimedwait, so no handler runs in an arbitrary thread.
void run_serve(const Context& context) {
  const Config config = load_server_config(context);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    throw stir::Error(stir::ErrorCode::kInternal, "pthread_sigmask failed");
  }
  // SIGPIPE is ignored process-wide by stir::run_main, before this runs.

  const LogSink log = stderr_log();
  Server server(config.server, log);
  server.bind();
  std::cout << "listening on " << server.url() << std::endl;

  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    // A short timeout lets the watcher also notice run() ending on its own.
    const timespec poll{0, 100'000'000};
    while (!finished) {
      const int signal_number = sigtimedwait(&stop_signals, nullptr, &poll);
      if (signal_number < 0) continue;  // timeout or EINTR
      log(std::string("stopping on ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
          ": finishing requests in flight");
      server.stop();
      return;
    }
  });
  server.run();
  finished = true;
  watcher.join();
  log("stopped");
}

// Everything serve checks before it listens: the file, the TLS certificate
// and key, the repository folder. For Ansible's `validate:`.
void run_check_config(const Context& context) {
  const Config config = load_cli_config(context);
  if (config.has_server) Server server(config.server, [](std::string_view) {});
  std::cout << config.path << ": ok (repository " << config.repository_dir
            << (config.has_server ? ", server" : ", no [server]") << ")\n";
}

}  // namespace

void add_server_commands(CLI::App& app, Context& context) {
  auto* serve = app.add_subcommand(
      "serve",
      "serve the repository over HTTPS until SIGTERM or SIGINT; prints "
      "'listening on URL' once ready and one access log line per request to stderr");
  add_repository_options(serve, context, false);
  serve->callback([&context] { run_serve(context); });

  auto* check = app.add_subcommand("check-config", "validate a config file and exit");
  add_repository_options(check, context, false);
  check->callback([&context] { run_check_config(context); });
}

}  // namespace tn_cr::cli
