// Runs a program as a child process without a shell and captures what it
// does: exit status, stdout and stderr separately. The test's own
// environment is passed on, changed only by the caller's EnvChanges; stdin
// is /dev/null so no child can wait for input.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace stir::testing {

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal number when killed
  std::string out;
  std::string err;

  // For assertion messages: everything a reader needs to see what happened.
  std::string describe() const {
    return "exit " + std::to_string(exit_code) + "\n--- stdout ---\n" + out + "--- stderr ---\n" +
           err;
  }
};

// Variable name -> new value, or nullopt to remove it from the environment.
using EnvChanges = std::map<std::string, std::optional<std::string>>;

namespace process_detail {

[[noreturn]] inline void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

inline std::vector<std::string> child_environment(const EnvChanges& changes) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text(*entry);
    if (!changes.contains(text.substr(0, text.find('=')))) env.push_back(text);
  }
  for (const auto& [name, value] : changes) {
    if (value) env.push_back(name + "=" + *value);
  }
  return env;
}

inline std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Owns the file actions and attributes so every exit path releases them.
// Every child starts as a shell or systemd would start it, whatever this
// test process did to its own signals (several suites ignore SIGPIPE, and an
// ignored signal is inherited across exec): every signal at its default,
// none blocked. A program that needs SIGPIPE ignored must do it itself.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attributes_);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigdefault(&attributes_, &all);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes_, &none);
    flags_ = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    posix_spawnattr_setflags(&attributes_, static_cast<short>(flags_));
  }
  ~SpawnSetup() {
    posix_spawnattr_destroy(&attributes_);
    posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnSetup(const SpawnSetup&) = delete;  // owns the actions object
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  posix_spawn_file_actions_t* actions() { return &actions_; }
  const posix_spawnattr_t* attributes() const { return &attributes_; }
  // The child leads a process group of its own, so the whole group (a
  // server and the processes it forks) can be killed at once.
  void new_process_group() {
    flags_ |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attributes_, 0);
    posix_spawnattr_setflags(&attributes_, static_cast<short>(flags_));
  }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attributes_;
  int flags_ = 0;
};

}  // namespace process_detail

// Runs argv[0] (looked up in PATH unless it holds a '/') with the arguments
// argv[1..] and waits for it. Throws std::runtime_error only when the child
// cannot be started; a child that fails to exec exits 127.
inline ProcessResult run(const std::vector<std::string>& argv, const EnvChanges& env = {}) {
  using process_detail::fail;
  if (argv.empty()) throw std::invalid_argument("run: empty argv");
  std::array<int, 2> out_pipe{}, err_pipe{};
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) fail("pipe2");
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) fail("pipe2");

  process_detail::SpawnSetup setup;
  posix_spawn_file_actions_addopen(setup.actions(), 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(setup.actions(), out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(setup.actions(), err_pipe[1], 2);

  std::vector<std::string> args = argv;
  std::vector<std::string> environment = process_detail::child_environment(env);
  std::vector<char*> arg_ptrs = process_detail::pointers(args);
  std::vector<char*> env_ptrs = process_detail::pointers(environment);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, arg_ptrs[0], setup.actions(), setup.attributes(),
                                     arg_ptrs.data(), env_ptrs.data());
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawned != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    errno = spawned;
    fail("posix_spawnp " + argv[0]);
  }

  // Both pipes are drained together so a child filling one cannot block.
  ProcessResult result;
  std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail("waitpid");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// A long-running child (a server): stdout is read line by line, stderr goes
// to a file (access logs must never fill a pipe and stall the child), and
// the destructor kills and reaps it if the test did not stop it itself.
class BackgroundProcess {
 public:
  // With `own_group`, the child leads a new process group and the
  // destructor kills that whole group (a server and what it forked).
  BackgroundProcess(const std::vector<std::string>& argv, const std::string& stderr_path,
                    const EnvChanges& env = {}, bool own_group = false)
      : own_group_(own_group) {
    using process_detail::fail;
    std::array<int, 2> out_pipe{};
    if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) fail("pipe2");
    process_detail::SpawnSetup setup;
    if (own_group) setup.new_process_group();
    posix_spawn_file_actions_addopen(setup.actions(), 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(setup.actions(), out_pipe[1], 1);
    posix_spawn_file_actions_addopen(setup.actions(), 2, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> args = argv;
    std::vector<std::string> environment = process_detail::child_environment(env);
    std::vector<char*> arg_ptrs = process_detail::pointers(args);
    std::vector<char*> env_ptrs = process_detail::pointers(environment);
    const int spawned = ::posix_spawnp(&pid_, arg_ptrs[0], setup.actions(), setup.attributes(),
                                       arg_ptrs.data(), env_ptrs.data());
    ::close(out_pipe[1]);
    if (spawned != 0) {
      ::close(out_pipe[0]);
      errno = spawned;
      fail("posix_spawnp " + argv[0]);
    }
    out_ = out_pipe[0];
    if (own_group) pgid_ = pid_;
  }
  ~BackgroundProcess() {
    if (own_group_ && pgid_ > 0) ::kill(-pgid_, SIGKILL);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  BackgroundProcess(const BackgroundProcess&) = delete;  // owns the child
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  // The next stdout line, or nullopt at end of output or after `timeout_ms`.
  std::optional<std::string> read_line(int timeout_ms) {
    for (;;) {
      if (const auto end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      pollfd fd{out_, POLLIN, 0};
      const int ready = ::poll(&fd, 1, timeout_ms);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void signal(int signal_number) const { ::kill(pid_, signal_number); }
  // The signal to the child's whole process group (only with `own_group`).
  void signal_group(int signal_number) const {
    if (pgid_ > 0) ::kill(-pgid_, signal_number);
  }

  // Waits up to `timeout_ms` for the exit; the exit code (128 + signal when
  // killed), or nullopt if it is still running.
  std::optional<int> wait(int timeout_ms) {
    for (int waited = 0;; waited += 10) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (waited >= timeout_ms) return std::nullopt;
      ::poll(nullptr, 0, 10);  // a bounded poll for the exit, not a timing assumption
    }
  }

  pid_t pid() const { return pid_; }

 private:
  bool own_group_ = false;
  pid_t pid_ = -1;
  pid_t pgid_ = -1;  // kept after the leader is reaped, for what it forked
  int out_ = -1;
  std::string buffer_;
};

}  // namespace stir::testing
