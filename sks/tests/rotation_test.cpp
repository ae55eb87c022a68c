// The rotation state machine and its file, the step runner, and the key
// ring swap under concurrency (in process, on a fresh SoftHSM2 token).
//
// What this file proves:
//  - every illegal transition is refused with the reason and the next step,
//    and the drain and retention periods hold unless forced;
//  - the state file round-trips, and a corrupt, unknown-version or
//    two-active-keys file is refused with a clear message;
//  - a step gets its placeholders and environment, a failing step's output
//    is reported, a step past its timeout is killed;
//  - thousands of key ring swaps while eight threads sign: every response
//    carries the x5u of the key that signed it.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "sks/rotation/adopt.h"
#include "sks/rotation/state.h"
#include "sks/rotation/steps.h"
#include "sks/server/admin_api.h"
#include "sks/server/api_error.h"
#include "sks/server/key_ring.h"
#include "sks/server/signing_api.h"
#include "softhsm_token.h"
#include "stir/error.h"
#include "stir/exit_codes.h"
#include "stir/identity.h"
#include "stir/verify.h"

namespace sks::testing {
namespace {

using nlohmann::json;
using rotation::KeyEntry;
using rotation::KeyState;

KeyEntry entry_in(KeyState state, std::int64_t since = 1000) {
  KeyEntry e;
  e.id = 7;
  e.label = "p-k7";
  e.state = state;
  e.since[std::string(rotation::to_string(state))] = since;
  if (state == KeyState::kDraining) e.drain_from = since;  // every instance seen off it then
  return e;
}

std::string refusal(const KeyEntry& e, KeyState to, std::int64_t now = 5000) {
  try {
    rotation::check_transition("p", e, to, now, 300, 600);
  } catch (const stir::Error& error) {
    EXPECT_EQ(error.code(), stir::ErrorCode::kInvalidArgument);
    return error.what();
  }
  return "";
}

TEST(RotationStateTest, TheLifecycleInOrderIsAllowed) {
  const std::vector<KeyState> order = {
      KeyState::kGenerated, KeyState::kCsr,      KeyState::kCertified, KeyState::kPublished,
      KeyState::kActive,    KeyState::kDraining, KeyState::kRetired,   KeyState::kDestroyed};
  for (std::size_t i = 0; i + 1 < order.size(); ++i) {
    EXPECT_EQ(refusal(entry_in(order[i]), order[i + 1], 100000), "")
        << rotation::to_string(order[i]);
    EXPECT_EQ(refusal(entry_in(order[i]), KeyState::kCompromised), "");
  }
  EXPECT_EQ(refusal(entry_in(KeyState::kCompromised), KeyState::kDestroyed), "");
}

TEST(RotationStateTest, EveryIllegalTransitionIsRefusedWithWhyAndWhatNext) {
  EXPECT_EQ(refusal(entry_in(KeyState::kCsr), KeyState::kActive),
            "cannot make key 'p-k7' (#7) of profile 'p' active: it is csr; next: `sks rotate "
            "install-cert --chain FILE` (or `sks rotate run` with an issue_command)");
  EXPECT_EQ(refusal(entry_in(KeyState::kCertified), KeyState::kActive),
            "cannot make key 'p-k7' (#7) of profile 'p' active: it is certified; next: `sks "
            "rotate publish`");
  EXPECT_EQ(refusal(entry_in(KeyState::kActive), KeyState::kRetired),
            "cannot make key 'p-k7' (#7) of profile 'p' retired: it is active; next: start a new "
            "rotation (`sks rotate start`) and activate it");
  EXPECT_EQ(refusal(entry_in(KeyState::kActive), KeyState::kDestroyed),
            "cannot make key 'p-k7' (#7) of profile 'p' destroyed: it is active, and only a "
            "retired (or compromised) key may be destroyed; next: start a new rotation (`sks "
            "rotate start`) and activate it");
  EXPECT_EQ(refusal(entry_in(KeyState::kCompromised), KeyState::kActive),
            "cannot make key 'p-k7' (#7) of profile 'p' active: it is compromised; it can only be "
            "destroyed (`sks rotate destroy --key p-k7`)");
  EXPECT_EQ(refusal(entry_in(KeyState::kDestroyed), KeyState::kCompromised),
            "cannot make key 'p-k7' (#7) of profile 'p' compromised: it is destroyed; nothing "
            "can follow");
  EXPECT_EQ(refusal(entry_in(KeyState::kPublished), KeyState::kCertified),
            "cannot make key 'p-k7' (#7) of profile 'p' certified: it is published; next: `sks "
            "rotate activate`");
  EXPECT_EQ(refusal(entry_in(KeyState::kDraining), KeyState::kActive),
            "cannot make key 'p-k7' (#7) of profile 'p' active: it is draining; next: `sks "
            "rotate retire` once the drain period has passed");
}

// What `sks rotate adopt` accepts from a fleet controller's state: a key
// at the same or a later step, never an earlier one.
TEST(RotationStateTest, AnAdoptedStateOnlyMovesKeysForward) {
  using enum KeyState;
  EXPECT_TRUE(rotation::moves_forward(kCsr, kCsr));
  EXPECT_TRUE(rotation::moves_forward(kGenerated, kPublished));
  EXPECT_TRUE(rotation::moves_forward(kPublished, kActive));
  EXPECT_TRUE(rotation::moves_forward(kActive, kDraining));
  EXPECT_TRUE(rotation::moves_forward(kDraining, kDestroyed));
  EXPECT_TRUE(rotation::moves_forward(kPublished, kCompromised));
  EXPECT_TRUE(rotation::moves_forward(kCompromised, kDestroyed));
  EXPECT_FALSE(rotation::moves_forward(kDraining, kActive));
  EXPECT_FALSE(rotation::moves_forward(kActive, kPublished));
  EXPECT_FALSE(rotation::moves_forward(kRetired, kDraining));
  EXPECT_FALSE(rotation::moves_forward(kCompromised, kActive));
  EXPECT_FALSE(rotation::moves_forward(kDestroyed, kCompromised));
  EXPECT_FALSE(rotation::moves_forward(kDestroyed, kActive));
}

TEST(RotationStateTest, DrainAndRetentionHold) {
  // Draining since 1000 with drain 300: not before 1300.
  EXPECT_EQ(refusal(entry_in(KeyState::kDraining, 1000), KeyState::kRetired, 1299),
            "cannot make key 'p-k7' (#7) of profile 'p' retired: tokens it signed may still be "
            "accepted until 1970-01-01T00:21:40Z (drain 300 s); run it again then, or add --force "
            "to risk verifiers rejecting those calls");
  EXPECT_EQ(refusal(entry_in(KeyState::kDraining, 1000), KeyState::kRetired, 1300), "");
  // The drain runs from when the last instance was seen off the key: never
  // before that was seen, however long ago the state was written.
  KeyEntry unseen = entry_in(KeyState::kDraining, 1000);
  unseen.drain_from = 0;
  EXPECT_EQ(refusal(unseen, KeyState::kRetired, 100000),
            "cannot make key 'p-k7' (#7) of profile 'p' retired: no running instance has been "
            "seen to stop signing with it yet (the drain starts then); run `sks rotate run` to "
            "reload them and check, `sks rotate status` shows each instance");
  unseen.drain_from = 2000;
  EXPECT_NE(refusal(unseen, KeyState::kRetired, 2299), "");
  EXPECT_EQ(refusal(unseen, KeyState::kRetired, 2300), "");
  EXPECT_EQ(refusal(entry_in(KeyState::kRetired, 1000), KeyState::kDestroyed, 1599),
            "cannot make key 'p-k7' (#7) of profile 'p' destroyed: its retention period runs "
            "until 1970-01-01T00:26:40Z; run it again then");
  EXPECT_EQ(refusal(entry_in(KeyState::kRetired, 1000), KeyState::kDestroyed, 1600), "");
}

class StateFileTest : public ::testing::Test {
 protected:
  std::string path() const { return dir.path() + "/rotation/state.json"; }
  void write(const std::string& text) {
    std::filesystem::create_directories(dir.path() + "/rotation");
    std::ofstream(path()) << text;
  }
  std::string load_error() {
    try {
      rotation::StateFile(path()).load();
    } catch (const stir::Error& e) {
      EXPECT_EQ(e.code(), stir::ErrorCode::kMalformed);
      return e.what();
    }
    return "";
  }
  TempDir dir;
};

TEST_F(StateFileTest, RoundTripsAndStartsEmpty) {
  rotation::StateFile file(path());
  EXPECT_TRUE(file.load().profiles.empty());
  rotation::RotationState state;
  state.next_id = 9;
  KeyEntry e = entry_in(KeyState::kActive, 1234);
  e.x5u = "https://cr.example.net/p-k7-abc.pem";
  e.not_after = 99999;
  state.profiles["p"].keys.push_back(e);
  file.lock();
  file.save(state);
  EXPECT_EQ(state.generation, 1);  // every write bumps it
  file.save(state);
  const rotation::RotationState again = file.load();
  EXPECT_EQ(again.to_json(), state.to_json());
  EXPECT_EQ(again.generation, 2);
  EXPECT_EQ(again.next_id, 9);
  ASSERT_NE(again.profiles.at("p").active(), nullptr);
  EXPECT_EQ(again.profiles.at("p").active()->entered(KeyState::kActive), 1234);
  EXPECT_TRUE(std::filesystem::exists(path() + ".lock"));
}

TEST_F(StateFileTest, CorruptFilesAreRefused) {
  write("{\"format\":");
  EXPECT_EQ(load_error(), path() + " is not valid JSON");
  write(R"({"format":"sks-rotation-state","version":2,"next_id":1,"profiles":{}})");
  EXPECT_EQ(load_error(), path() +
                              ": rotation state format version 2 is not supported (this sks "
                              "reads version 1)");
  rotation::RotationState state;
  state.profiles["p"].keys = {entry_in(KeyState::kActive), entry_in(KeyState::kActive)};
  write(state.to_json().dump());
  EXPECT_EQ(load_error(), path() + ": profile p has 2 active and 0 pending keys");
}

TEST(StepTest, PlaceholdersEnvironmentAndExitCodes) {
  const auto ok =
      rotation::run_step("test", {"/bin/sh", "-c", "echo \"$0 $SKS_STEP_NAME\"", "{name}-{label}"},
                         {{"name", "x.pem"}, {"label", "k1"}}, std::chrono::seconds(10));
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.output, "x.pem-k1 x.pem\n");
  try {
    rotation::require_step("publish", {"/bin/sh", "-c", "echo no room >&2; exit 74"}, {},
                           std::chrono::seconds(10));
    ADD_FAILURE() << "a failing step was accepted";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kIo);
    EXPECT_STREQ(e.what(), "publish step (/bin/sh) failed with exit 74: no room");
  }
  EXPECT_NO_THROW(rotation::require_step("unpublish", {"/bin/sh", "-c", "exit 66"}, {},
                                         std::chrono::seconds(10), {66}));
  try {
    rotation::run_step("issue", {"/bin/sleep", "30"}, {}, std::chrono::seconds(1));
    ADD_FAILURE() << "a step past its timeout was not killed";
  } catch (const stir::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("issue step (/bin/sleep) was killed after 1 s", 0), 0u)
        << e.what();
  }
}

// A step that closes its output and keeps running is killed at its deadline
// too, not waited for.
TEST(StepTest, AStepThatClosesItsOutputStillHasADeadline) {
  try {
    rotation::run_step("publish", {"/bin/sh", "-c", "echo started; exec sleep 30 >&- 2>&-"}, {},
                       std::chrono::seconds(1));
    ADD_FAILURE() << "a step that closed its output was waited for past its timeout";
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kIo);
    EXPECT_EQ(std::string(e.what()), "publish step (/bin/sh) was killed after 1 s: started\n");
  }
}

// The step runs with the signals a shell would give it, although every
// program of ours ignores SIGPIPE (stir::run_main) and `sks serve` blocks
// its stop signals: a step script's `producer | head` must end the producer
// as it does in a terminal.
TEST(StepTest, AStepStartsWithSigpipeAtItsDefaultAndNoSignalBlocked) {
  stir::ignore_broken_pipes();
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGHUP);
  sigaddset(&stop_signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
  const auto status = rotation::run_step(
      "test", {"/bin/sh", "-c", "exec grep -E '^Sig(Blk|Ign):' /proc/self/status"}, {},
      std::chrono::seconds(10));
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  ASSERT_EQ(status.exit_code, 0) << status.output;
  const auto mask = [&](const std::string& name) {
    const auto at = status.output.find(name + ":\t");
    return at == std::string::npos
               ? ~0ULL
               : std::stoull(status.output.substr(at + name.size() + 2), nullptr, 16);
  };
  const auto bit = [](int signal_number) { return 1ULL << (signal_number - 1); };
  EXPECT_EQ(mask("SigIgn") & bit(SIGPIPE), 0u) << status.output;
  EXPECT_EQ(mask("SigBlk") & (bit(SIGHUP) | bit(SIGTERM)), 0u) << status.output;
}

class KeyRingSwapTest : public SoftHsmTest {};

// Eight threads sign through sign_request while the main thread swaps the
// ring between two keys thousands of times; each token must verify with the
// key its own x5u belongs to.
TEST_F(KeyRingSwapTest, NoResponseMixesOneKeysSignatureWithAnothersX5u) {
  keys->generate("key-a");
  keys->generate("key-b");
  Config config;
  SigningProfile profile;
  profile.name = "p";
  profile.attest = {"A"};
  profile.clients = {"sbc"};
  profile.origid = "123e4567-e89b-12d3-a456-426655440000";
  std::map<std::string, stir::EvpPkeyPtr> key_of_x5u;
  std::vector<std::shared_ptr<const server::KeyRing>> rings;
  for (const std::string label : {"key-a", "key-b"}) {
    profile.key_label = label;
    profile.x5u = "https://cr.example.net/" + label + ".pem";
    config.profiles = {profile};
    rings.push_back(server::KeyRing::build(config, *keys));
    key_of_x5u[profile.x5u] = stir::load_public_key_pem(keys->public_key_pem(label));
  }
  server::KeyRingHolder holder;
  holder.set(rings[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> signed_count{0}, mismatches{0}, failures{0};
  std::vector<std::thread> signers;
  for (int t = 0; t < 8; ++t) {
    signers.emplace_back([&] {
      while (!stop.load()) {
        const auto ring = holder.get();
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        const std::string request = json{{"signingRequest",
                                          {{"attest", "A"},
                                           {"dest", {{"tn", {"12155550131"}}}},
                                           {"iat", now},
                                           {"orig", {{"tn", "12155550121"}}}}}}
                                        .dump();
        server::SigningResult result;
        try {
          result = server::sign_request(request, {"sbc"}, *ring, now, 60);
        } catch (const stir::Error&) {
          ++failures;
          continue;
        }
        const std::string identity =
            json::parse(result.response_body)["signingResponse"]["identity"];
        const auto parsed = stir::parse_identity_header(identity);
        const auto key = key_of_x5u.find(parsed.header ? parsed.header->info.value_or("") : "");
        if (key == key_of_x5u.end() || !stir::verify_identity(identity, key->second.get()).valid) {
          ++mismatches;
        }
        ++signed_count;
      }
    });
  }
  std::atomic<int> swaps{0};
  std::thread swapper([&] {
    for (int n = 0; !stop.load(); ++n) {
      holder.set(rings[n % 2]);
      ++swaps;
    }
  });
  // Thousands of swaps and thousands of signatures, interleaved.
  while (swaps.load() < 5000 || signed_count.load() < 2000) std::this_thread::yield();
  stop = true;
  for (auto& t : signers) t.join();
  swapper.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0) << "of " << signed_count.load();
}

TEST_F(KeyRingSwapTest, AdminKeysOnlyForAdmins) {
  keys->generate("key-a");
  Config config;
  SigningProfile profile;
  profile.name = "p";
  profile.key_label = "key-a";
  profile.x5u = "https://cr.example.net/a.pem";
  profile.not_after = 1000 + 86400;
  config.profiles = {profile};
  const auto ring = server::KeyRing::build(config, *keys);
  server::RingReport report;
  report.generation = 12;
  report.loaded_at = report.reload_time = 900;
  report.since["p"] = 800;
  report.reload_ok = false;
  report.error = "a later reload failed";
  report.reloads = 3;
  try {
    (void)server::admin_keys({"sbc"}, *ring, report, {"ops.example.net"}, 1000);
    ADD_FAILURE() << "an unlisted client read the admin API";
  } catch (const stir::Error& e) {
    const server::ApiAnswer refused = server::api_answer(e);
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(refused.message_id, "POL4003");
    EXPECT_EQ(json::parse(refused.body)["requestError"]["policyException"]["messageId"], "POL4003");
  }
  const std::string shown =
      server::admin_keys({"x", "ops.example.net"}, *ring, report, {"ops.example.net"}, 1000);
  EXPECT_EQ(json::parse(shown),
            json::parse(R"({"generation":12,"loaded_at":900,"reload_ok":false,)"
                        R"("error":"a later reload failed","reload_time":900,"reloads":3,)"
                        R"("profiles":[{"profile":"p","key":"key-a","since":800,)"
                        R"("x5u":"https://cr.example.net/a.pem","expires_in_s":86400}]})"));
  EXPECT_NE(ring->render_metrics(1000).find(
                "sks_certificate_expiry_seconds{profile=\"p\",key=\"key-a\"} 86400"),
            std::string::npos);
}

}  // namespace
}  // namespace sks::testing
