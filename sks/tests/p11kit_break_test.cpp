// The root cause of issue 22's hang, reproduced without luck: p11-kit's
// RPC client (p11-kit-client.so, Debian 12's 0.24.1) between the test and a
// real `p11-kit server`, with a proxy of ours on the socket that can break
// the connection exactly where a killed server sometimes does: after a
// reply's 12-byte header, before its body.
//
// With several threads calling the module at once (CallPolicy parallel),
// the thread that owned that header fails and returns, but the socket
// state keeps its code (read_code), nobody signals the condition variable
// the other readers wait on, and a thread with a request in flight never
// returns: the hang `sks serve` met. With the module called one call at a
// time (CallPolicy serial, what sks uses for p11-kit-client.so) every
// thread returns with an error, and the module initialised again works on a
// new connection. sks/pkcs11/module.h has the mechanism.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "process.h"
#include "scratch_token.h"
#include "sks/pkcs11/module.h"
#include "sks/pkcs11/token.h"
#include "test_files.h"

namespace sks::testing {
namespace {

using Clock = std::chrono::steady_clock;
using stir::testing::TempDir;

int listen_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  std::filesystem::remove(path);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 16) != 0) {
    throw std::runtime_error("cannot listen on " + path);
  }
  return fd;
}

int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("cannot connect to " + path);
  }
  return fd;
}

bool send_all(int fd, const unsigned char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// The length of the first whole RPC message in `buffer` (header: code,
// options length, body length, big-endian), or 0 when it is not all there.
std::size_t whole_message(const std::vector<unsigned char>& buffer) {
  if (buffer.size() < 12) return 0;
  const std::size_t length = 12 + std::size_t{be32(&buffer[4])} + be32(&buffer[8]);
  return buffer.size() >= length ? length : 0;
}

// Forwards p11-kit's RPC between the client module and the real server, one
// connection after the other. break_connection() arms it: the next reply is
// withheld until two requests are in flight (or 1 s has passed), then only
// its header goes to the client and both sides are closed.
class BreakingProxy {
 public:
  BreakingProxy(const std::string& listen_path, std::string server_path)
      : listen_fd_(listen_unix(listen_path)), server_path_(std::move(server_path)) {
    thread_ = std::thread([this] { run(); });
  }
  ~BreakingProxy() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  BreakingProxy(const BreakingProxy&) = delete;  // owns its socket and thread
  BreakingProxy& operator=(const BreakingProxy&) = delete;

  void break_connection() { armed_ = true; }
  int breaks() const { return breaks_.load(); }
  int most_in_flight_at_break() const { return in_flight_at_break_.load(); }

 private:
  void run() {
    while (!stop_) {
      pollfd ready{listen_fd_, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      const int server = connect_unix(server_path_);
      relay(client, server);
      ::close(client);
      ::close(server);
    }
  }

  // One connection, until either side closes or the break.
  void relay(int client, int server) {
    std::vector<unsigned char> up, down;  // unparsed bytes, each way
    bool up_version = false, down_version = false;
    long requests = 0, replies = 0;
    std::vector<unsigned char> held;  // the withheld reply
    Clock::time_point armed_at{};
    std::array<unsigned char, 65536> chunk{};
    while (!stop_) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      ::poll(fds, 2, 20);
      if (fds[0].revents != 0) {
        const ssize_t n = ::recv(client, chunk.data(), chunk.size(), 0);
        if (n <= 0 || !send_all(server, chunk.data(), static_cast<std::size_t>(n))) return;
        up.insert(up.end(), chunk.data(), chunk.data() + n);
        if (!up_version && !up.empty()) {
          up.erase(up.begin());
          up_version = true;
        }
        while (const std::size_t length = whole_message(up)) {
          up.erase(up.begin(), up.begin() + static_cast<std::ptrdiff_t>(length));
          ++requests;
        }
      }
      if (fds[1].revents != 0) {
        const ssize_t n = ::recv(server, chunk.data(), chunk.size(), 0);
        if (n <= 0) return;
        down.insert(down.end(), chunk.data(), chunk.data() + n);
        if (!down_version && !down.empty()) {
          if (!send_all(client, down.data(), 1)) return;
          down.erase(down.begin());
          down_version = true;
        }
        while (const std::size_t length = whole_message(down)) {
          if (armed_ && held.empty()) {
            held.assign(down.begin(), down.begin() + static_cast<std::ptrdiff_t>(length));
            armed_at = Clock::now();
          } else if (held.empty()) {
            if (!send_all(client, down.data(), length)) return;
            ++replies;
          }  // else: nothing more goes to the client on this connection
          down.erase(down.begin(), down.begin() + static_cast<std::ptrdiff_t>(length));
        }
      }
      if (!held.empty() &&
          (requests - replies >= 2 || Clock::now() - armed_at > std::chrono::seconds(1))) {
        in_flight_at_break_ = static_cast<int>(requests - replies);
        send_all(client, held.data(), 12);  // the header, and no body
        armed_ = false;
        ++breaks_;
        return;
      }
    }
  }

  const int listen_fd_;
  const std::string server_path_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> armed_{false};
  std::atomic<int> breaks_{0};
  std::atomic<int> in_flight_at_break_{0};
  std::thread thread_;
};

class P11KitBreakTest : public ::testing::Test {
 protected:
  static constexpr const char* kTokenLabel = "sks-break";
  static constexpr int kThreads = 4;

  void SetUp() override {
    // As every program of ours does (stir::run_main): the client module
    // writes to the connection the proxy closed.
    ::signal(SIGPIPE, SIG_IGN);
    write_softhsm_conf(dir.path());
    {
      const p11::Module softhsm(STIR_SOFTHSM_MODULE);
      p11::init_token(softhsm, kTokenLabel, kTestSoPin, kTestUserPin);
    }
    const std::string server_socket = dir.path() + "/server.sock";
    token_server = std::make_unique<stir::testing::BackgroundProcess>(
        std::vector<std::string>{"p11-kit", "server", "-f", "-n", server_socket, "--provider",
                                 STIR_SOFTHSM_MODULE, std::string("pkcs11:token=") + kTokenLabel},
        dir.path() + "/p11-kit.log");
    const auto line = token_server->read_line(30000);
    ASSERT_TRUE(line && line->find(server_socket) != std::string::npos)
        << stir::testing::read_file(dir.path() + "/p11-kit.log");
    const std::string proxy_socket = dir.path() + "/proxy.sock";
    proxy = std::make_unique<BreakingProxy>(proxy_socket, server_socket);
    // Read by the client module's C_GetFunctionList.
    ::setenv("P11_KIT_SERVER_ADDRESS", ("unix:path=" + proxy_socket).c_str(), 1);
  }

  // kThreads threads call C_GetSlotList through `module` until `stop`;
  // returns how many came back within `bound` after the proxy broke the
  // connection. The threads that did not are left behind (detached).
  int returned_after_break(const p11::Module& module, std::chrono::seconds bound) {
    auto done = std::make_shared<std::atomic<int>>(0);
    auto stop = std::make_shared<std::atomic<bool>>(false);
    auto calls = std::make_shared<std::atomic<long>>(0);
    for (int t = 0; t < kThreads; ++t) {
      std::thread([&module, done, stop, calls] {
        while (!stop->load()) {
          CK_ULONG count = 0;
          try {
            module.call("C_GetSlotList",
                        [&] { return module.api()->C_GetSlotList(CK_TRUE, nullptr, &count); });
          } catch (const std::exception&) {  // serial: no turn within the bound
          }
          calls->fetch_add(1);
        }
        done->fetch_add(1);
      }).detach();
    }
    // Calls flow, then the break.
    for (const auto until = Clock::now() + std::chrono::seconds(10);
         calls->load() < 200 && Clock::now() < until;) {
      ::poll(nullptr, 0, 10);
    }
    EXPECT_GE(calls->load(), 200);
    const int breaks_before = proxy->breaks();
    proxy->break_connection();
    for (const auto until = Clock::now() + std::chrono::seconds(10);
         proxy->breaks() == breaks_before && Clock::now() < until;) {
      ::poll(nullptr, 0, 10);
    }
    EXPECT_EQ(proxy->breaks(), breaks_before + 1);
    stop->store(true);
    for (const auto until = Clock::now() + bound;
         done->load() < kThreads && Clock::now() < until;) {
      ::poll(nullptr, 0, 20);
    }
    return done->load();
  }

  TempDir dir;
  std::unique_ptr<stir::testing::BackgroundProcess> token_server;
  std::unique_ptr<BreakingProxy> proxy;
};

// What p11-kit does, documented: the hang needs a reply's owner and another
// caller both waiting at the break, a race that some runs miss (all three
// attempts missed it in 1 of 6 runs measured). Such a run is skipped,
// not failed: it says nothing about our code. The serial case below is the
// guarantee sks relies on, and it is asserted every run.
TEST_F(P11KitBreakTest, ParallelCallersHangInTheClientModuleWhenTheReplyIsCutAfterItsHeader) {
  // Never destroyed: a thread stays inside it for good, so it may not be
  // finalised or unloaded while this process runs (a static, so leak
  // checkers see it reachable).
  static auto* module =
      new p11::Module(STIR_P11KIT_CLIENT, p11::CallPolicy{false, std::chrono::seconds(5)});
  // Up to three breaks, each on a new connection: the one where a reply's
  // owner and another caller are both waiting leaves that caller stuck.
  bool stuck = false;
  for (int attempt = 0; attempt < 3 && !stuck; ++attempt) {
    if (attempt > 0) module->reinitialize();
    stuck = returned_after_break(*module, std::chrono::seconds(5)) < kThreads;
    EXPECT_GE(proxy->most_in_flight_at_break(), 2);
  }
  if (!stuck) {
    GTEST_SKIP() << "every thread came back three times: the race did not happen this run "
                    "(or p11-kit no longer hangs here)";
  }
}

TEST_F(P11KitBreakTest, SerialCallersAllReturnAndTheModuleWorksAgainOnANewConnection) {
  p11::Module module(STIR_P11KIT_CLIENT, p11::CallPolicy{true, std::chrono::seconds(5)});
  ASSERT_EQ(module.policy().serial, p11::CallPolicy::for_module(STIR_P11KIT_CLIENT).serial);
  const int returned = returned_after_break(module, std::chrono::seconds(10));
  EXPECT_EQ(proxy->most_in_flight_at_break(), 1);
  EXPECT_EQ(returned, kThreads);
  EXPECT_FALSE(module.oldest_call());
  // The broken connection fails at once; initialised again, the module
  // talks to the server on a new connection.
  CK_ULONG count = 0;
  EXPECT_EQ(module.call("C_GetSlotList",
                        [&] { return module.api()->C_GetSlotList(CK_TRUE, nullptr, &count); }),
            CKR_DEVICE_ERROR);
  module.reinitialize();
  const auto tokens = p11::list_tokens(module);
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].label, kTokenLabel);
}

}  // namespace
}  // namespace sks::testing
