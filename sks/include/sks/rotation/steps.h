// The pluggable steps of a rotation: programs the operator configures
// ([rotation] in the config), run without a shell.
//
// Contract for every step (issue, publish, unpublish, revoke, reload):
// - argv is the configured array; in each element "{csr}", "{chain}",
//   "{name}", "{x5u}", "{serial}", "{label}" and "{profile}" are replaced
//   by their values. The same values are in the environment as
//   SKS_STEP_CSR, SKS_STEP_CHAIN, SKS_STEP_NAME, SKS_STEP_X5U,
//   SKS_STEP_SERIAL, SKS_STEP_LABEL and SKS_STEP_PROFILE, beside the
//   caller's own environment (so $SKS_CONFIG reaches the test CA).
// - stdin is /dev/null; stdout and stderr are captured (the last 4 KiB are
//   shown when the step fails).
// - exit 0: done (also when it was already done: steps are run again after
//   a crash). For unpublish, exit 66 (not found) means already gone.
//   Anything else fails the step, and the rotation state does not move.
// - A step still running after the timeout (even one that closed its
//   output) is killed (SIGKILL to its process group) and fails.
// - issue: reads the PEM CSR at {csr} and writes the PEM chain, end-entity
//   first, to {chain} (an ACME client or an STI-CA portal script fits the
//   same contract: CSR in, chain out).
//
// Threads: run_step blocks the caller; no shared state.
// Errors: run_step throws stir::Error(kIo) for a step that cannot start,
// fails or times out, with the step's name and output.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace sks::rotation {

struct StepResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string output;  // stdout and stderr, at most the last 4 KiB
};

using StepValues = std::map<std::string, std::string>;  // "csr" -> path, ...

// Replaces the {placeholders} of `argv` by `values`.
std::vector<std::string> expand(const std::vector<std::string>& argv, const StepValues& values);

// Runs the step; returns whatever exit code it had. Throws kIo only when it
// cannot be started or is killed by the timeout.
StepResult run_step(const std::string& step, const std::vector<std::string>& argv,
                    const StepValues& values, std::chrono::seconds timeout);

// run_step, and a kIo error unless the exit code is 0 or one of `also_ok`.
StepResult require_step(const std::string& step, const std::vector<std::string>& argv,
                        const StepValues& values, std::chrono::seconds timeout,
                        std::vector<int> also_ok = {});

}  // namespace sks::rotation
