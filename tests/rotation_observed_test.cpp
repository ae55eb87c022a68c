// The observed-state rule of `sks rotate` (issue 15), end to end with the
// real binaries: a fresh SoftHSM2 token, the test STI-CA, a TN-CR over
// HTTPS and a running `sks serve` reloading from the rotation state.
//
// Each case is driven as an operator would (the CLI, the running server)
// while a prober signs through the server and verifies every token at once
// against the chain at its own x5u, with an empty certificate cache: a
// token naming an unpublished URL fails there. After each case the URLs the
// server signs with (GET /admin/v1/keys) must all be served.
//
// What this file proves:
//  1. killed between activate and the reload: the next run reloads the
//     server first, and the old URL goes only once the server left it;
//  2. a second profile failing in the same run: the first one's actions are
//     printed, the server reloads, the run exits non-zero, the first
//     profile's rotation completes in later runs;
//  3. a failing reload command: retried, the instance named as behind, and
//     retire refused while it signs with the old key; a server whose own
//     reload fails likewise;
//  4. the clock is read after the lock: a command that waited for the lock
//     records the time it got it;
//  5. check-config refuses a drain_s below the drain floor and explains it;
//  6. compromise of a key a profile without rotation also signs with:
//     refused without --force, listing it; with --force every profile stops
//     before the URL goes; revocation by hand is explained when no serial
//     is known;
//  7. a profile renamed in the config: its keys are shown as orphans,
//     warned by run, retired and destroyed by --profile, not a reason for
//     adopt to refuse;
//  8. an unknown --profile (or one without rotation) is an error for every
//     subcommand;
//  a lagging instance of a fleet read over its admin API holds the drain and
//  the old URL, and is named;
//  and the randomized test: rounds of rotate run with a fault point, a
//  failing reload command or a failing second profile, under signing load
//  (SKS_ROTATION_ROUNDS rounds; a smoke size by default).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "rotation_fixture.h"
#include "stack_verifier.h"

namespace stir::testing {
namespace {

constexpr const char* kWestClient = "west.example.net";

std::string utc_text_of(std::int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Signs through the server and verifies each token at once (no cache).
class Prober {
 public:
  Prober(std::unique_ptr<httplib::SSLClient> client, vs::VerifierConfig config)
      : client_(std::move(client)), verifier_(std::move(config)) {
    client_->set_keep_alive(true);
    thread_ = std::thread([this] { loop(); });
  }
  ~Prober() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Waits (with a deadline) until `n` more tokens were verified.
  bool more(int n) {
    const int target = verified_.load() + n;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (verified_.load() < target && Clock::now() < deadline) std::this_thread::yield();
    return verified_.load() >= target;
  }
  int verified() const { return verified_.load(); }
  int refused() const { return refused_.load(); }
  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void loop() {
    for (long n = 0; !stop_.load(); ++n) {
      const std::int64_t iat = std::time(nullptr);
      const std::string orig = std::to_string(12150000000LL + n % 10000000);
      const std::string body = json{{"signingRequest",
                                     {{"attest", "A"},
                                      {"dest", {{"tn", {"12155550131"}}}},
                                      {"iat", iat},
                                      {"orig", {{"tn", orig}}}}}}
                                   .dump();
      const auto response = client_->Post("/stir/v1/signing", body, "application/json");
      if (!response || response->status != 200) {
        ++refused_;
        // Pacing for a shared machine (a rate, not a wait for a condition).
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      vs::VerificationRequest request;
      request.identity = json::parse(response->body)["signingResponse"]["identity"];
      request.from_tn = orig;
      request.to_tns = {"12155550131"};
      request.now = iat + 1;
      verifier_.clear_cache();  // the x5u must answer now
      const auto result = verifier_.verify(request);
      if (!result.passed()) {
        std::lock_guard lock(mutex_);
        if (failure_.empty()) {
          failure_ = result.error_case_id() + ": " + result.detail + " for " + request.identity;
        }
      }
      ++verified_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::unique_ptr<httplib::SSLClient> client_;
  vs::Verifier verifier_;
  std::atomic<bool> stop_{false};
  std::atomic<int> verified_{0};
  std::atomic<int> refused_{0};
  mutable std::mutex mutex_;
  std::string failure_;
  std::thread thread_;
};

class ObservedRotationTest : public RotationStackTest {
 protected:
  vs::VerifierConfig verifier_config() const {
    return stack_verifier_config(dir.path(), tncr_port);
  }

  void TearDown() override {
    if (prober) prober->stop();
    if (second_prober) second_prober->stop();
    if (second) {
      second->signal(SIGTERM);
      EXPECT_EQ(second->wait(20000), 0) << "the second sks serve did not exit 0";
    }
    RotationStackTest::TearDown();
  }

  // Starts sks serve and the prober on it.
  void serve_and_probe() {
    port = start_sks();
    ASSERT_GT(port, 0);
    prober = std::make_unique<Prober>(sks_client(port), verifier_config());
    ASSERT_TRUE(prober->more(3)) << "the prober verified nothing";
  }

  // GET /admin/v1/keys of the running server.
  json admin_keys() {
    auto client = sks_client(port);
    const auto response = client->Get("/admin/v1/keys");
    EXPECT_TRUE(response);
    if (!response) return json::object();
    EXPECT_EQ(response->status, 200) << response->body;
    return json::parse(response->body, nullptr, false);
  }

  // The end state a carrier cares about: every token verified at its own
  // x5u, and every URL the server signs with is served.
  void expect_carrier_safe() {
    ASSERT_TRUE(prober);
    EXPECT_TRUE(prober->more(3));
    EXPECT_EQ(prober->failure(), "");
    const json report = admin_keys();  // a range-for over a temporary's member dangles
    for (const auto& p : report["profiles"]) {
      if (p["x5u"].is_string()) {
        EXPECT_EQ(fetch_status(p["x5u"]), 200) << "the server signs with an unpublished " << p;
      }
    }
  }

  // The x5u the server signs with for east now.
  std::string east_x5u() {
    const json report = admin_keys();
    for (const auto& p : report["profiles"]) {
      if (p["profile"] == "east") return p["x5u"].is_string() ? p["x5u"].get<std::string>() : "";
    }
    return "";
  }

  // Replaces the first `from` in the config.
  void edit_config(const std::string& from, const std::string& to) {
    std::string text = read_file(config);
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    write_file(config, text, 0600);
  }

  // A second rotating profile "west" whose repository does not answer (a
  // port nothing listens on): its activation fails.
  void add_failing_west() {
    std::string text = read_file(config);
    text +=
        "\n[[profile]]\nname = \"west\"\norigid = \"0c0a3f3e-3c8e-4d6f-9b1e-2a5d7c4b8e10\"\n"
        "clients = [\"" +
        std::string(kWestClient) +
        "\"]\n[profile.rotation]\nx5u_base = \"https://127.0.0.1:9/\"\nspc = \"1234\"\n"
        "subject = \"/C=US/O=West\"\n";
    write_file(config, text, 0600);
  }

  // The one instance of `rotate status --json` ({} when none is shown).
  static json instance(const json& shown) {
    const json all = shown.value("instances", json::array());
    return all.size() == 1 ? all[0] : json::object();
  }

  static bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }

  // A second instance of the same config, probed too, and the fleet made
  // of both ([rotation] instances, read over their admin API). The reload
  // command sends SIGHUP to the pids in `reach_path` and fails while
  // `broken` exists.
  void start_fleet() {
    second = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_SKS_BINARY, "serve", "--config", config},
        dir.path() + "/second.log");
    const int second_port =
        listening_port(*second, R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/signing$)");
    ASSERT_GT(second_port, 0);
    second_prober = std::make_unique<Prober>(sks_client(second_port), verifier_config());
    ASSERT_TRUE(second_prober->more(3));
    const std::string t = dir.path() + "/tls/";
    first_url = "https://127.0.0.1:" + std::to_string(port);
    second_url = "https://127.0.0.1:" + std::to_string(second_port);
    reach(true);
    edit_config("[rotation]\n", "[rotation]\ninstances = " + toml_array({first_url, second_url}) +
                                    "\nadmin_cert = " + quoted(t + "client.pem") +
                                    "\nadmin_key = " + quoted(t + "client.key") +
                                    "\nadmin_ca = " + quoted(t + "server-ca.pem") +
                                    "\nobserve_timeout_s = 1\nreload_command = [\"sh\", \"-c\", "
                                    "\"test ! -e " +
                                    broken + " && kill -HUP $(cat " + reach_path + ")\"]\n");
  }
  // The reload command reaches both instances, or only the first.
  void reach(bool both) {
    write_file(reach_path,
               std::to_string(sks->pid()) + (both ? " " + std::to_string(second->pid()) : ""),
               0600);
  }

  int port = 0;
  std::unique_ptr<Prober> prober;
  std::unique_ptr<BackgroundProcess> second;  // a second instance, when a test starts one
  std::unique_ptr<Prober> second_prober;
  std::string first_url;
  std::string second_url;
  const std::string reach_path = dir.path() + "/reload-reaches";
  const std::string broken = dir.path() + "/reload-broken";
};

// 1. Killed between activate and the reload.
TEST_F(ObservedRotationTest, KilledAfterActivateTheNextRunReloadsBeforeAnythingIsUnpublished) {
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  const std::string old_x5u = east_x5u();
  ASSERT_EQ(old_x5u, state_keys()[0]["x5u"]) << admin_keys();

  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  const auto killed = rotate({"run"}, 0, "after-activate");
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.describe();
  EXPECT_EQ(state_keys()[1]["state"], "active");
  EXPECT_EQ(east_x5u(), old_x5u);  // nobody told the server
  json shown = status();
  EXPECT_EQ(instance(shown).value("behind", false), true) << shown;
  EXPECT_TRUE(has(rotate({"status"}).out, " BEHIND"));

  const auto again = rotate({"run"});
  ASSERT_EQ(again.exit_code, 0) << again.describe();
  const std::int64_t seen = std::time(nullptr);  // the drain runs from before this
  EXPECT_TRUE(has(again.out, "to load rotation state generation")) << again.out;
  const std::string new_x5u = state_keys()[1]["x5u"];
  EXPECT_EQ(east_x5u(), new_x5u);
  shown = status();
  EXPECT_EQ(instance(shown).value("behind", true), false) << shown;
  EXPECT_EQ(instance(shown)["generation"], shown["generation"]);
  EXPECT_EQ(admin_keys()["generation"], shown["generation"]);

  ASSERT_EQ(rotate({"run"}, seen + 290).exit_code, 0);
  EXPECT_EQ(state_keys()[0]["state"], "draining");  // the drain holds
  const auto retired = rotate({"run"}, seen + 301);
  ASSERT_EQ(retired.exit_code, 0) << retired.describe();
  EXPECT_EQ(state_keys()[0]["state"], "retired");
  EXPECT_EQ(fetch_status(old_x5u), 404);
  expect_carrier_safe();
}

// 2. Another profile fails in the same run.
TEST_F(ObservedRotationTest, ASecondProfileFailingNeverBlocksTheFirstAndEveryActionIsPrinted) {
  ASSERT_EQ(rotate({"run", "--profile", "east"}).exit_code, 0);
  add_failing_west();
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  const std::string old_x5u = east_x5u();

  ASSERT_EQ(rotate({"start", "--profile", "east"}).exit_code, 0);
  const auto ran = rotate({"run"});
  EXPECT_EQ(ran.exit_code, 65) << ran.describe();  // west: its x5u does not answer
  EXPECT_TRUE(has(ran.out, "east: key ")) << ran.out;
  EXPECT_TRUE(has(ran.out, "is active with x5u")) << ran.out;
  EXPECT_TRUE(has(ran.out, "west: FAILED: cannot activate")) << ran.out;
  EXPECT_TRUE(has(ran.err, "west: cannot activate")) << ran.err;
  const std::int64_t seen = std::time(nullptr);
  const std::string new_x5u = state_keys()[1]["x5u"];
  EXPECT_EQ(east_x5u(), new_x5u);  // reloaded although west failed

  // Later runs: west still fails, east retires and destroys its old key.
  auto later = rotate({"run"}, seen + 301);
  EXPECT_EQ(later.exit_code, 65) << later.describe();
  EXPECT_EQ(state_keys()[0]["state"], "retired") << later.out;
  EXPECT_EQ(fetch_status(old_x5u), 404);
  later = rotate({"run"}, seen + 301);
  EXPECT_EQ(state_keys()[0]["state"], "destroyed") << later.out;
  expect_carrier_safe();
  EXPECT_EQ(east_x5u(), new_x5u);
}

// 3a. The reload command fails.
TEST_F(ObservedRotationTest, AFailingReloadCommandIsRetriedNamedAndBlocksRetire) {
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  const std::string old_x5u = east_x5u();
  const std::string counter = dir.path() + "/reload-attempts";
  edit_config("[rotation]\n", "[rotation]\nreload_command = [\"sh\", \"-c\", \"echo x >> " +
                                  counter + "; echo 'unit sks not found' >&2; exit 5\"]\n");

  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  const auto ran = rotate({"run"});
  const std::int64_t due = std::time(nullptr);
  EXPECT_EQ(ran.exit_code, 74) << ran.describe();
  // Tried 3 times at each reconcile (start's write put the server behind too).
  const std::string attempts = read_file(counter);
  EXPECT_EQ(std::count(attempts.begin(), attempts.end(), '\n') % 3, 0) << attempts;
  EXPECT_TRUE(
      has(ran.out, "the reload command failed (attempt 3 of 3): exit 5: unit sks not found"))
      << ran.out;
  EXPECT_TRUE(has(ran.err, "local server (pid " + std::to_string(sks->pid()) + "): generation "))
      << ran.err;
  EXPECT_TRUE(has(ran.err, "(BEHIND)")) << ran.err;
  EXPECT_EQ(east_x5u(), old_x5u);

  const std::string before = read_file(dir.path() + "/rot/state.json");
  const auto refused = rotate({"retire"}, due + 3600);
  EXPECT_EQ(refused.exit_code, 65) << refused.describe();
  EXPECT_TRUE(has(refused.err, "no running instance has been seen to stop signing with it yet"))
      << refused.err;
  const auto run_later = rotate({"run"}, due + 3600);
  EXPECT_EQ(run_later.exit_code, 74);
  EXPECT_EQ(state_keys()[0]["state"], "draining");
  EXPECT_EQ(fetch_status(old_x5u), 200);
  EXPECT_EQ(read_file(dir.path() + "/rot/state.json"), before);

  // Fixed: the run reloads, the drain starts, the old key goes after it.
  edit_config("exit 5", "kill -HUP " + std::to_string(sks->pid()));
  const auto fixed = rotate({"run"}, due + 3600);
  ASSERT_EQ(fixed.exit_code, 0) << fixed.describe();
  EXPECT_EQ(east_x5u(), state_keys()[1]["x5u"]);
  EXPECT_EQ(state_keys()[0]["state"], "draining");
  ASSERT_EQ(rotate({"run"}, due + 3600 + 301).exit_code, 0);
  EXPECT_EQ(state_keys()[0]["state"], "retired");
  expect_carrier_safe();
}

// 3b. The server's own reload fails (its new key is gone from the token).
TEST_F(ObservedRotationTest, AServerWhoseReloadFailsIsNamedAndKeepsItsURLServed) {
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  const std::string old_x5u = east_x5u();
  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  EXPECT_EQ(rotate({"run"}, 0, "after-activate").exit_code, 128 + SIGKILL);
  const std::string new_label = state_keys()[1]["label"];
  must({STIR_SKS_BINARY, "keys", "destroy", "--label", new_label, "--yes", "--config", config});

  const auto ran = rotate({"run"});
  const std::int64_t due = std::time(nullptr);
  EXPECT_EQ(ran.exit_code, 74) << ran.describe();
  EXPECT_TRUE(has(ran.err, "last reload FAILED")) << ran.err;
  EXPECT_TRUE(has(ran.err, new_label)) << ran.err;
  const json shown = status();
  EXPECT_EQ(instance(shown).value("behind", false), true) << shown;
  EXPECT_EQ(instance(shown).value("reload_ok", true), false) << shown;
  const auto refused = rotate({"retire", "--json"}, due + 3600);
  EXPECT_EQ(refused.exit_code, 65) << refused.describe();
  EXPECT_EQ(fetch_status(old_x5u), 200);
  EXPECT_EQ(east_x5u(), old_x5u);
  expect_carrier_safe();
}

// 4. The clock is read once the lock is held.
TEST_F(ObservedRotationTest, ACommandThatWaitedForTheLockRecordsTheTimeItGotIt) {
  std::filesystem::create_directories(dir.path() + "/rot");
  const std::string lock_path = dir.path() + "/rot/state.json.lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  BackgroundProcess waiting({STIR_SKS_BINARY, "rotate", "run", "--config", config},
                            dir.path() + "/waiting.log");
  // Blocked on the lock: /proc/locks lists it as a waiter ("->").
  const std::string pid = std::to_string(waiting.pid());
  bool blocked = false;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!blocked && Clock::now() < deadline) {
    std::ifstream locks("/proc/locks");
    for (std::string line; std::getline(locks, line);) {
      blocked = blocked || (has(line, "->") && has(line, " " + pid + " "));
    }
    if (!blocked) std::this_thread::yield();
  }
  ASSERT_TRUE(blocked) << "sks rotate run never waited for the lock";
  // The wall clock must move on while it waits.
  const std::int64_t seen = std::time(nullptr);
  while (std::time(nullptr) < seen + 2) std::this_thread::yield();
  const std::int64_t released = std::time(nullptr);
  ::close(fd);
  EXPECT_EQ(waiting.wait(60000), 0);
  const json key = state_keys()[0];
  const json since = key["since"];
  for (const auto& [state, at] : since.items()) {
    EXPECT_GE(at.get<std::string>(), utc_text_of(released)) << state;
  }
}

// 5. The drain floor.
TEST_F(ObservedRotationTest, CheckConfigRefusesADrainBelowTheFloorAndSaysHowItIsComputed) {
  const std::string before = read_file(config);
  edit_config("subject = \"/C=US/O=Rotation\"\n",
              "subject = \"/C=US/O=Rotation\"\ndrain_s = 120\n");
  auto checked = run({STIR_SKS_BINARY, "check-config", "--config", config});
  EXPECT_EQ(checked.exit_code, 78) << checked.describe();
  EXPECT_TRUE(has(checked.err,
                  "profile 'east' rotation.drain_s = 120 is below the drain floor of 150 s = "
                  "server.max_iat_skew_s 60 (the furthest-future iat the server signs) + 60 s "
                  "verifier freshness + 15 s clock skew + 15 s margin"))
      << checked.err;
  EXPECT_EQ(rotate({"run"}).exit_code, 78);  // every command reads the same config
  edit_config("drain_s = 120", "drain_s = 300");
  edit_config("[server]\n", "[server]\nmax_iat_skew_s = 600\n");
  checked = run({STIR_SKS_BINARY, "check-config", "--config", config});
  EXPECT_EQ(checked.exit_code, 78) << checked.describe();
  EXPECT_TRUE(has(checked.err, "drain_s = 300 is below the drain floor of 690 s")) << checked.err;
  edit_config("drain_s = 300", "drain_s = 690");
  checked = run({STIR_SKS_BINARY, "check-config", "--config", config});
  EXPECT_EQ(checked.exit_code, 0) << checked.describe();
  write_file(config, before, 0600);
}

// 6. Compromise of a key a profile without rotation also signs with.
TEST_F(ObservedRotationTest, CompromiseStopsEveryProfileThatSignsWithTheKeyOrRefuses) {
  const std::string d = dir.path();
  std::string chain;
  ASSERT_NO_FATAL_FAILURE(chain = certified_key("shared"));
  must({STIR_TNCR_BINARY, "publish", "--dir", d + "/cr", "--chain", chain, "--name", "shared.pem"});
  const std::string x5u = "https://127.0.0.1:" + std::to_string(tncr_port) + "/shared.pem";
  const std::string named = "key = \"shared\"\nx5u = " + quoted(x5u) + "\n";
  edit_config("name = \"east\"\n", "name = \"east\"\n" + named);
  std::string text = read_file(config);
  text += "\n[[profile]]\nname = \"legacy\"\n" + named +
          "origid = \"0c0a3f3e-3c8e-4d6f-9b1e-2a5d7c4b8e10\"\nclients = [\"" + kWestClient +
          "\"]\n";
  write_file(config, text, 0600);
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  ASSERT_EQ(east_x5u(), x5u);

  const auto refused = rotate({"compromise", "--key", "shared"});
  EXPECT_EQ(refused.exit_code, 65) << refused.describe();
  EXPECT_TRUE(has(refused.err,
                  "key 'shared' is also signed with by profile(s) 'legacy' (no "
                  "[profile.rotation])"))
      << refused.err;
  EXPECT_TRUE(has(refused.err, "nothing changed")) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(d + "/rot/state.json"));
  EXPECT_EQ(fetch_status(x5u), 200);
  expect_carrier_safe();
  prober->stop();  // from here on the key signs nothing: 503

  const auto done = rotate({"compromise", "--key", "shared", "--force"});
  ASSERT_EQ(done.exit_code, 0) << done.describe();
  const json report = admin_keys();
  for (const auto& p : report["profiles"]) EXPECT_TRUE(p["key"].is_null()) << p;
  EXPECT_EQ(fetch_status(x5u), 404);
  EXPECT_TRUE(has(done.out, "profile 'legacy' (no rotation) stops signing")) << done.out;
  EXPECT_TRUE(has(done.out, "no certificate serial is known for key 'shared'")) << done.out;
  EXPECT_TRUE(has(done.out, "revocation must be asked for by hand")) << done.out;
  EXPECT_EQ(x5u_signed(*sks_client(port)), "status 503");
  EXPECT_EQ(status()["compromised_keys"], json::array({"shared"}));
  EXPECT_EQ(prober->failure(), "");
}

// 7. A profile renamed in the config leaves orphans.
TEST_F(ObservedRotationTest, KeysOfARenamedProfileAreShownWarnedRetiredAndDestroyed) {
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  const json old_key = state_keys()[0];
  const std::string old_x5u = old_key["x5u"];
  edit_config("name = \"east\"\n", "name = \"north\"\n");

  json shown = status();
  ASSERT_EQ(shown["profiles"].size(), 2u) << shown;
  EXPECT_EQ(shown["profiles"][1]["profile"], "east");
  EXPECT_TRUE(shown["profiles"][1]["orphan"].get<bool>());
  EXPECT_EQ(shown["profiles"][1]["keys"][0]["label"], old_key["label"]);
  EXPECT_TRUE(has(rotate({"status"}).out, "profile east (NOT IN THE CONFIG")) << shown;

  const auto ran = rotate({"run"});
  ASSERT_EQ(ran.exit_code, 0) << ran.describe();
  EXPECT_TRUE(has(ran.out, "profile 'east' is no longer rotated by")) << ran.out;
  EXPECT_TRUE(has(ran.out, "`sks rotate retire --profile east`")) << ran.out;
  const std::string north_x5u = status()["profiles"][0]["keys"][0]["x5u"];
  const json report = admin_keys();
  for (const auto& p : report["profiles"]) EXPECT_EQ(p["x5u"], north_x5u) << p;

  // A fleet instance adopts the state with the orphan in it.
  std::string text = read_file(config);
  const std::string state_path = dir.path() + "/rot/state.json";
  text.replace(text.find(state_path), state_path.size(), dir.path() + "/instance/state.json");
  write_file(dir.path() + "/instance.toml", text, 0600);
  const auto adopted = run({STIR_SKS_BINARY, "rotate", "adopt", "--state", state_path, "--config",
                            dir.path() + "/instance.toml"});
  EXPECT_EQ(adopted.exit_code, 0) << adopted.describe();
  EXPECT_TRUE(has(adopted.out, "profile 'east' is not rotated by")) << adopted.out;

  auto retired = rotate({"retire", "--profile", "east"});
  EXPECT_EQ(retired.exit_code, 65) << retired.describe();  // the drain floor from the switch
  EXPECT_EQ(fetch_status(old_x5u), 200);
  retired = rotate({"retire", "--profile", "east"}, std::time(nullptr) + 151);
  ASSERT_EQ(retired.exit_code, 0) << retired.describe();
  EXPECT_EQ(fetch_status(old_x5u), 404);
  const auto destroyed = rotate({"destroy", "--profile", "east"}, std::time(nullptr) + 151);
  ASSERT_EQ(destroyed.exit_code, 0) << destroyed.describe();
  EXPECT_EQ(token_labels().count(old_key["label"]), 0u);
  expect_carrier_safe();
}

// 8. An unknown --profile, or one without rotation, is an error everywhere.
TEST_F(ObservedRotationTest, AnUnknownProfileIsAnErrorForEverySubcommand) {
  std::string text = read_file(config);
  text +=
      "\n[[profile]]\nname = \"plain\"\nkey = \"k\"\nx5u = \"https://127.0.0.1/k.pem\"\n"
      "origid = \"0c0a3f3e-3c8e-4d6f-9b1e-2a5d7c4b8e10\"\nclients = [\"plain.example.net\"]\n";
  write_file(config, text, 0600);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"run"},
                                             {"plan"},
                                             {"status"},
                                             {"start"},
                                             {"publish"},
                                             {"activate"},
                                             {"retire"},
                                             {"destroy"},
                                             {"install-cert", "--chain", config}}) {
    auto with = args;
    with.insert(with.end(), {"--profile", "TYPO"});
    const auto typo = rotate(with);
    EXPECT_EQ(typo.exit_code, 66) << args[0] << ": " << typo.describe();
    EXPECT_TRUE(has(typo.err, "'TYPO'")) << typo.err;
    if (args[0] == "status") continue;
    with = args;
    with.insert(with.end(), {"--profile", "plain"});
    const auto plain = rotate(with);
    EXPECT_EQ(plain.exit_code, 78) << args[0] << ": " << plain.describe();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/rot/state.json"));
}

// A fleet of two instances read over their admin API ([rotation]
// instances): one lags (the reload command does not reach it). The drain
// waits for it, it is named, and the old URL stays while it signs with it.
TEST_F(ObservedRotationTest, ALaggingInstanceOfTheFleetIsNamedAndHoldsTheOldURL) {
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  ASSERT_NO_FATAL_FAILURE(start_fleet());
  reach(false);
  const std::string old_x5u = east_x5u();

  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  const auto ran = rotate({"run"});
  EXPECT_EQ(ran.exit_code, 74) << ran.describe();
  EXPECT_TRUE(has(ran.err, second_url + ": generation ")) << ran.err;
  EXPECT_TRUE(has(ran.err, "(BEHIND)")) << ran.err;
  const std::int64_t seen = std::time(nullptr);
  const std::string new_x5u = state_keys()[1]["x5u"];
  EXPECT_EQ(east_x5u(), new_x5u);  // the first instance switched
  json shown = status();
  ASSERT_EQ(shown["instances"].size(), 2u) << shown;
  EXPECT_FALSE(shown["instances"][0]["behind"].get<bool>()) << shown["instances"];
  EXPECT_TRUE(shown["instances"][1]["behind"].get<bool>()) << shown["instances"];
  EXPECT_EQ(shown["instances"][1]["signs"][0]["x5u"], old_x5u);
  EXPECT_TRUE(has(rotate({"status"}).out, "instance " + second_url + ": generation ")) << shown;

  const auto refused = rotate({"retire"}, seen + 3600);
  EXPECT_EQ(refused.exit_code, 65) << refused.describe();
  EXPECT_EQ(fetch_status(old_x5u), 200);

  // The reload reaches both: the drain starts, the old URL goes after it.
  reach(true);
  const auto caught_up = rotate({"run"}, seen + 3600);
  ASSERT_EQ(caught_up.exit_code, 0) << caught_up.describe();
  shown = status();
  EXPECT_FALSE(shown["instances"][1]["behind"].get<bool>()) << shown["instances"];
  EXPECT_EQ(state_keys()[0]["state"], "draining");
  ASSERT_EQ(rotate({"run"}, seen + 3600 + 301).exit_code, 0);
  EXPECT_EQ(state_keys()[0]["state"], "retired");
  EXPECT_EQ(fetch_status(old_x5u), 404);
  expect_carrier_safe();
}

// Rounds of `sks rotate run` under signing load on a fleet of two, with
// whatever can go wrong: a fault point (the CLI killed), a failing reload
// command, a lagging instance, a second profile that fails. After each
// round the timer's next runs must converge, and every token verified.
// SKS_ROTATION_ROUNDS (default 3) and SKS_ROTATION_SEED for longer runs.
TEST_F(ObservedRotationTest, RandomizedRoundsKeepEveryTokenVerifiable) {
  int rounds = 3;
  if (const char* n = std::getenv("SKS_ROTATION_ROUNDS")) rounds = std::atoi(n);
  std::uint32_t seed = static_cast<std::uint32_t>(std::time(nullptr));
  if (const char* s = std::getenv("SKS_ROTATION_SEED"))
    seed = static_cast<std::uint32_t>(std::atol(s));
  RecordProperty("seed", static_cast<int>(seed));
  std::printf("SKS_ROTATION_SEED=%u SKS_ROTATION_ROUNDS=%d\n", seed, rounds);
  std::mt19937 random(seed);
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(serve_and_probe());
  ASSERT_NO_FATAL_FAILURE(start_fleet());
  const std::vector<std::string> faults = {"",
                                           "after-reserve",
                                           "after-keygen",
                                           "after-csr",
                                           "after-issue",
                                           "after-install",
                                           "after-publish-step",
                                           "after-activate",
                                           "after-unpublish",
                                           "after-destroy-key"};
  bool west = false;
  std::int64_t t = std::time(nullptr);
  for (int round = 0; round < rounds; ++round) {
    const std::string fault = faults[random() % faults.size()];
    const bool break_reload = random() % 4 == 0;
    const bool lag = random() % 3 == 0;
    const bool add_west = !west && random() % 4 == 0;
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round) + " fault '" +
                 fault + "'" + (break_reload ? " reload fails" : "") +
                 (lag ? " second instance lags" : "") + (add_west ? " west fails" : ""));
    if (add_west) {
      add_failing_west();
      west = true;
    }
    if (break_reload) write_file(broken, "", 0600);
    reach(!lag);
    t += 120 + static_cast<std::int64_t>(random() % 400);
    // An operator's (or a timer's) rotation, killed anywhere.
    const bool in_start =
        fault == "after-reserve" || fault == "after-keygen" || fault == "after-csr";
    rotate({"start", "--profile", "east"}, t, in_start ? fault : "");
    rotate({"run"}, t, in_start ? "" : fault);  // whatever happens
    std::filesystem::remove(broken);
    reach(true);
    // The next runs (the timer) converge: every instance signs the state's key.
    for (int i = 0; i < 2; ++i) rotate({"run"}, t);
    const json shown = status();
    ASSERT_EQ(shown["instances"].size(), 2u) << shown;
    std::string active;
    for (const auto& k : shown["profiles"][0]["keys"]) {
      if (k["state"] == "active") active = k["x5u"];
    }
    for (const auto& i : shown["instances"]) {
      EXPECT_FALSE(i["behind"].get<bool>()) << shown["instances"];
      EXPECT_EQ(i["signs"][0]["x5u"], active) << i;
    }
    expect_carrier_safe();
    EXPECT_TRUE(second_prober->more(3));
    EXPECT_EQ(second_prober->failure(), "");
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace stir::testing
