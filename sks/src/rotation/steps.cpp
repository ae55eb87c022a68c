#include "sks/rotation/steps.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "stir/error.h"

extern char** environ;

namespace sks::rotation {

using stir::Error;
using stir::ErrorCode;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kOutputTail = 4096;

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn's file actions and attributes, released on every path.
struct Spawn {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  Spawn() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~Spawn() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
  Spawn(const Spawn&) = delete;  // owns the posix_spawn objects
  Spawn& operator=(const Spawn&) = delete;
};

}  // namespace

std::vector<std::string> expand(const std::vector<std::string>& argv, const StepValues& values) {
  std::vector<std::string> out;
  for (std::string arg : argv) {
    for (const auto& [name, value] : values) {
      const std::string placeholder = "{" + name + "}";
      for (auto at = arg.find(placeholder); at != std::string::npos;
           at = arg.find(placeholder, at + value.size())) {
        arg.replace(at, placeholder.size(), value);
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

// Waits until `fd` is readable or `deadline` passes: 1 readable, 0 deadline
// passed, -1 poll failed.
static int wait_readable(int fd, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return 0;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready > 0) return 1;
    if (ready < 0 && errno != EINTR) return -1;
  }
}

StepResult run_step(const std::string& step, const std::vector<std::string>& argv,
                    const StepValues& values, std::chrono::seconds timeout) {
  if (argv.empty())
    throw Error(ErrorCode::kConfig, "no command configured for the " + step + " step");
  std::vector<std::string> args = expand(argv, values);
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "SKS_STEP_", 9) != 0) env.emplace_back(*entry);
  }
  for (const auto& [name, value] : values) env.push_back("SKS_STEP_" + upper(name) + "=" + value);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw Error(ErrorCode::kIo, "pipe2 failed");
  Spawn spawn;
  posix_spawn_file_actions_addopen(&spawn.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&spawn.actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&spawn.actions, pipe_fds[1], 2);
  // Its own process group, so a timeout kills what it started too. The step
  // starts with the signals a shell would give it: SIGPIPE back to default
  // (stir::run_main ignores it in this process) and nothing blocked.
  posix_spawnattr_setflags(&spawn.attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&spawn.attributes, 0);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  posix_spawnattr_setsigdefault(&spawn.attributes, &default_signals);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&spawn.attributes, &no_signals);
  std::vector<char*> arg_ptrs = pointers(args);
  std::vector<char*> env_ptrs = pointers(env);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, arg_ptrs[0], &spawn.actions, &spawn.attributes,
                                     arg_ptrs.data(), env_ptrs.data());
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    throw Error(ErrorCode::kIo,
                step + " step: cannot start " + args[0] + ": " + std::strerror(spawned));
  }

  StepResult result;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    const int ready = wait_readable(pipe_fds[0], deadline);
    if (ready == 0) timed_out = true;
    if (ready <= 0) break;
    char buffer[4096];
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buffer, static_cast<std::size_t>(n));
    if (result.output.size() > kOutputTail) {
      result.output.erase(0, result.output.size() - kOutputTail);
    }
  }
  ::close(pipe_fds[0]);
  // A step may close its output and still run: the deadline holds for its
  // exit too (a pidfd becomes readable when the process ends; without one,
  // on an old kernel, the exit is waited for without a deadline).
  if (!timed_out) {
    const int exited = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (exited >= 0) {
      timed_out = wait_readable(exited, deadline) == 0;
      ::close(exited);
    }
  }
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (timed_out) {
    throw Error(ErrorCode::kIo, step + " step (" + args[0] + ") was killed after " +
                                    std::to_string(timeout.count()) + " s: " + result.output);
  }
  return result;
}

StepResult require_step(const std::string& step, const std::vector<std::string>& argv,
                        const StepValues& values, std::chrono::seconds timeout,
                        std::vector<int> also_ok) {
  StepResult result = run_step(step, argv, values, timeout);
  if (result.exit_code != 0 &&
      std::find(also_ok.begin(), also_ok.end(), result.exit_code) == also_ok.end()) {
    std::string output = result.output;
    while (!output.empty() && output.back() == '\n') output.pop_back();
    throw Error(ErrorCode::kIo, step + " step (" + argv.front() + ") failed with exit " +
                                    std::to_string(result.exit_code) + ": " + output);
  }
  return result;
}

}  // namespace sks::rotation
