// stir::run_main, the main() of every program: SIGPIPE ignored before the
// body runs, and what the body throws mapped to one stderr line and the
// exit code of stir/exit_codes.h.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "stir/exit_codes.h"

namespace stir {
namespace {

TEST(RunMainTest, AWriteToAPipeWhoseReaderIsGoneFailsWithEpipeInsteadOfKillingTheProcess) {
  // As systemd or a shell starts a program: SIGPIPE at its default, which
  // would end this test process on the write below if run_main did not
  // ignore it first.
  ::signal(SIGPIPE, SIG_DFL);
  int write_errno = 0;
  const int code = run_main("test", [&] {
    int fds[2];
    if (::pipe(fds) != 0) return 70;
    ::close(fds[0]);
    const ssize_t written = ::write(fds[1], "x", 1);
    write_errno = written < 0 ? errno : 0;
    ::close(fds[1]);
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(write_errno, EPIPE);
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
}

TEST(RunMainTest, ReturnsTheBodysExitCode) {
  EXPECT_EQ(run_main("test", [] { return 0; }), 0);
  EXPECT_EQ(run_main("test", [] { return kExitInvalidToken; }), 1);
}

TEST(RunMainTest, AnErrorBecomesOneLineAndItsExitCode) {
  ::testing::internal::CaptureStderr();
  const int code =
      run_main("sks", []() -> int { throw Error(ErrorCode::kNotFound, "no key labelled 'x'"); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "sks: no key labelled 'x'\n");
  EXPECT_EQ(code, 66);
}

TEST(RunMainTest, AnyOtherExceptionIsAnInternalError) {
  ::testing::internal::CaptureStderr();
  const int code = run_main("tn-cr", []() -> int { throw std::runtime_error("boom"); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "tn-cr: internal error: boom\n");
  EXPECT_EQ(code, 70);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run_main("tn-cr", []() -> int { throw 42; }), 70);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "tn-cr: internal error: an exception of unknown type\n");
}

}  // namespace
}  // namespace stir
