// `sks rotate` end to end with the real binaries: a fresh SoftHSM2 token
// (`sks init`), the test STI-CA (`sti-dev-ca issue` and `revoke` as the
// issue and revocation steps), a TN-CR on an ephemeral loopback port
// (`tn-cr publish` and `unpublish` as steps, `tn-cr serve` answering the
// x5u over HTTPS), and `sks serve` reloading from the rotation state.
//
// What this file proves:
//  - a rotation by hand, step by step, with every step idempotent and every
//    illegal step refused with its message and no change;
//  - `sks rotate run` driven by SKS_FAKE_NOW walks a profile through a whole
//    rotation (start, issue, publish, activate, retire after the drain,
//    destroy), and a certificate renewal with the same key keeps the key;
//  - the CLI killed (SIGKILL) at every fault point, then run again,
//    converges: one active key, no key lost or duplicated, a valid state file;
//  - compromise: the URL is gone, the test CA's CRL lists the serial and
//    revokes the certificate, and the running server stops signing with it;
//  - `sks rotate run` reloads the running server and sees it switch key and
//    x5u together; /admin/v1/keys and /metrics show them with the state
//    generation it loaded, and a failed reload keeps the old ring;
//  - `sks rotate adopt` (a fleet instance taking the controller's state):
//    refused while the active key's x5u is not served and for an older
//    state, nothing changed then; idempotent; a profile the instance does
//    not have is an orphan, not a refusal; the running instance, whose
//    token sessions opened before the controller generated the new key,
//    finds it on SIGHUP and signs with it.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rotation_fixture.h"

namespace stir::testing {
namespace {

class RotationCliTest : public RotationStackTest {};

TEST_F(RotationCliTest, ByHandEveryStepIdempotentAndEveryIllegalStepRefused) {
  auto refused = rotate({"activate"});
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_EQ(refused.err,
            "sks: profile 'east' has no published key to activate; run `sks rotate start`\n");

  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  auto again = rotate({"start"});
  ASSERT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_NE(again.out.find("(no change) a rotation is already under way"), std::string::npos);
  json key = state_keys()[0];
  EXPECT_EQ(key["state"], "csr");
  const std::string label = key["label"];
  EXPECT_EQ(token_labels(), std::set<std::string>{label});

  refused = rotate({"publish"});
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_EQ(refused.err, "sks: cannot make key '" + label +
                             "' (#1) of profile 'east' published: it is csr; next: `sks rotate "
                             "install-cert --chain FILE` (or `sks rotate run` with an "
                             "issue_command)\n");

  // A chain for another key is refused and changes nothing.
  const std::string d = dir.path();
  ASSERT_NO_FATAL_FAILURE(certified_key("other"));
  refused = rotate({"install-cert", "--chain", d + "/other.pem"});
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_EQ(refused.err, "sks: the chain's leaf key is not the key '" + label + "' in the token\n");
  EXPECT_EQ(state_keys()[0]["state"], "csr");

  must({STIR_DEV_CA_BINARY, "issue", "--config", token_config, "--dir", d + "/pki", "--csr",
        key["csr"], "--out", d + "/new.pem"});
  ASSERT_EQ(rotate({"install-cert", "--chain", d + "/new.pem"}).exit_code, 0);
  again = rotate({"install-cert", "--chain", d + "/new.pem"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("(no change)"), std::string::npos) << again.out;
  refused = rotate({"install-cert", "--chain", d + "/other.pem"});
  EXPECT_EQ(refused.exit_code, 73) << refused.describe();

  refused = rotate({"activate"});
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_NE(refused.err.find("active: it is certified; next: `sks rotate publish`"),
            std::string::npos)
      << refused.err;
  key = state_keys()[0];
  const std::string x5u = key["x5u"];
  EXPECT_EQ(fetch_status(x5u), 404);
  ASSERT_EQ(rotate({"publish"}).exit_code, 0);
  EXPECT_EQ(rotate({"publish"}).exit_code, 0);
  EXPECT_EQ(fetch_status(x5u), 200);
  const auto activated = rotate({"activate", "--json"});
  ASSERT_EQ(activated.exit_code, 0) << activated.describe();
  EXPECT_EQ(json::parse(activated.out)["actions"][0]["action"], "activate");
  EXPECT_EQ(state_keys()[0]["state"], "active");
  EXPECT_NE(rotate({"activate"}).out.find("(no change)"), std::string::npos);
  EXPECT_NE(rotate({"retire"}).out.find("(no change) profile 'east' has no draining key"),
            std::string::npos);

  // The second rotation: the old key drains, retires only after the drain.
  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  const auto ran = rotate({"run"});
  ASSERT_EQ(ran.exit_code, 0) << ran.describe();
  json keys = state_keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0]["state"], "draining");
  EXPECT_EQ(keys[1]["state"], "active");
  EXPECT_EQ(keys[0]["next"], "retire");
  refused = rotate({"retire"});
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_NE(refused.err.find("tokens it signed may still be accepted until"), std::string::npos);
  EXPECT_EQ(fetch_status(x5u), 200);
  refused = rotate({"destroy", "--key", label});
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_NE(refused.err.find("it is draining, and only a retired (or compromised) key may be "
                             "destroyed"),
            std::string::npos)
      << refused.err;

  const std::int64_t later = std::time(nullptr) + 301;
  ASSERT_EQ(rotate({"retire"}, later).exit_code, 0);
  EXPECT_EQ(fetch_status(x5u), 404);
  ASSERT_EQ(rotate({"destroy"}, later).exit_code, 0);
  EXPECT_EQ(state_keys()[0]["state"], "destroyed");
  EXPECT_EQ(token_labels(), (std::set<std::string>{"other", keys[1]["label"]}));
}

TEST_F(RotationCliTest, RunWithAFakeClockWalksAWholeRotationAndRenewsWithTheSameKey) {
  const std::int64_t now = std::time(nullptr);
  auto result = rotate({"run"}, now);
  // Later certificates last two years, so the renewal below is not due again.
  std::string text = read_file(config);
  const std::string out = "\"--out\", \"{chain}\"";
  text.replace(text.find(out), out.size(), out + ", \"--days\", \"730\"");
  write_file(config, text);
  ASSERT_EQ(result.exit_code, 0) << result.describe();
  json keys = state_keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0]["state"], "active");
  const std::string first = keys[0]["label"];

  // Nothing is due: run changes nothing, plan says when renewal starts.
  result = rotate({"run", "--json"}, now + 10);
  ASSERT_EQ(result.exit_code, 0);
  // Kept in a local: a range-for over a temporary's member reads freed memory.
  const json run_report = json::parse(result.out);
  for (const auto& a : run_report["actions"]) EXPECT_FALSE(a["changed"]) << a;
  EXPECT_NE(rotate({"plan"}, now).out.find("renewal of key '" + first + "' (#1) starts at"),
            std::string::npos);

  // Within renew_before (30 days) of notAfter (365 days): a new key.
  const std::int64_t due = now + 336 * kDay;
  EXPECT_NE(rotate({"plan"}, due).out.find("renewal would start"), std::string::npos);
  result = rotate({"run"}, due);
  ASSERT_EQ(result.exit_code, 0) << result.describe();
  keys = state_keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0]["state"], "draining");
  EXPECT_EQ(keys[1]["state"], "active");
  EXPECT_NE(keys[1]["label"], first);
  ASSERT_EQ(rotate({"run"}, due + 299).exit_code, 0);
  EXPECT_EQ(state_keys()[0]["state"], "draining");  // the drain holds
  ASSERT_EQ(rotate({"run"}, due + 300).exit_code, 0);
  EXPECT_EQ(state_keys()[0]["state"], "retired");
  ASSERT_EQ(rotate({"run"}, due + 300).exit_code, 0);
  EXPECT_EQ(state_keys()[0]["state"], "destroyed");
  const std::string second = state_keys()[1]["label"];
  EXPECT_EQ(token_labels(), std::set<std::string>{second});

  // Renewal with the same key: a new certificate at a new URL.
  ASSERT_EQ(rotate({"start", "--reuse-key"}, due + 400).exit_code, 0);
  ASSERT_EQ(rotate({"run"}, due + 400).exit_code, 0);
  keys = state_keys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[2]["label"], second);
  EXPECT_EQ(keys[2]["state"], "active");
  EXPECT_NE(keys[2]["x5u"], keys[1]["x5u"]);
  ASSERT_EQ(rotate({"run"}, due + 800).exit_code, 0);
  ASSERT_EQ(rotate({"run"}, due + 800).exit_code, 0);
  EXPECT_EQ(state_keys()[1]["state"], "destroyed");
  EXPECT_EQ(token_labels(), std::set<std::string>{second});  // still used by #3
  EXPECT_EQ(fetch_status(keys[1]["x5u"]), 404);
  EXPECT_EQ(fetch_status(keys[2]["x5u"]), 200);
}

// Two profiles that signed with one key and x5u before rotation: when one
// of them rotates, retiring its old key leaves the URL served (the other
// profile still names it) and destroying it leaves the key in the token.
TEST_F(RotationCliTest, RetireKeepsAnX5uAnotherProfileStillSignsWith) {
  const std::string d = dir.path();
  std::string chain;
  ASSERT_NO_FATAL_FAILURE(chain = certified_key("legacy"));
  must({STIR_TNCR_BINARY, "publish", "--dir", d + "/cr", "--chain", chain, "--name", "legacy.pem"});
  const std::string x5u = "https://127.0.0.1:" + std::to_string(tncr_port) + "/legacy.pem";
  const std::string named = "key = \"legacy\"\nx5u = " + quoted(x5u) + "\n";
  std::string text = read_file(config);
  const std::string east = "name = \"east\"\n";
  text.insert(text.find(east) + east.size(), named);
  text += "\n[[profile]]\nname = \"west\"\n" + named +
          "origid = \"0c0a3f3e-3c8e-4d6f-9b1e-2a5d7c4b8e10\"\nclients = [\"west.example.net\"]\n";
  write_file(config, text, 0600);
  must({STIR_SKS_BINARY, "check-config", "--config", config});
  ASSERT_EQ(fetch_status(x5u), 200);

  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  const auto ran = rotate({"run"});
  ASSERT_EQ(ran.exit_code, 0) << ran.describe();
  json keys = state_keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0]["label"], "legacy");
  EXPECT_EQ(keys[0]["x5u"], x5u);
  EXPECT_EQ(keys[0]["state"], "draining");
  EXPECT_EQ(keys[1]["state"], "active");

  const std::int64_t later = std::time(nullptr) + 301;
  const auto retired = rotate({"retire"}, later);
  ASSERT_EQ(retired.exit_code, 0) << retired.describe();
  EXPECT_NE(retired.out.find(x5u + " left published: profile 'west' still uses it"),
            std::string::npos)
      << retired.out;
  EXPECT_EQ(state_keys()[0]["state"], "retired");
  EXPECT_EQ(fetch_status(x5u), 200);
  const auto destroyed = rotate({"destroy"}, later);
  ASSERT_EQ(destroyed.exit_code, 0) << destroyed.describe();
  EXPECT_NE(destroyed.out.find("the key stays"), std::string::npos) << destroyed.out;
  EXPECT_EQ(token_labels().count("legacy"), 1u);
  EXPECT_EQ(fetch_status(x5u), 200);
}

TEST_F(RotationCliTest, KilledAtEveryFaultPointThenRunAgainConverges) {
  std::int64_t t = std::time(nullptr) + 336 * kDay;  // every run is due for renewal
  ASSERT_EQ(rotate({"run"}, t).exit_code, 0);
  ASSERT_EQ(rotate({"run"}, t += 301).exit_code, 0);  // one key draining from now on
  for (const std::string point :
       {"after-reserve", "after-keygen", "after-csr", "after-issue", "after-install",
        "after-publish-step", "after-activate", "after-unpublish", "after-destroy-key"}) {
    SCOPED_TRACE(point);
    t += 301;
    const auto killed = rotate({"run"}, t, point);
    EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.describe();
    const auto again = rotate({"run"}, t);
    ASSERT_EQ(again.exit_code, 0) << again.describe();
    const json keys = state_keys();
    int active = 0;
    std::set<std::string> live;
    for (const auto& k : keys) {
      active += k["state"] == "active";
      EXPECT_NE(k["state"], "generated") << k;
      if (k["state"] != "destroyed") live.insert(k["label"]);
    }
    EXPECT_EQ(active, 1);
    EXPECT_EQ(keys.back()["state"], "active");
    EXPECT_EQ(token_labels(), live);  // no key lost, none left over
    EXPECT_EQ(fetch_status(keys.back()["x5u"]), 200);
  }
}

TEST_F(RotationCliTest, CompromiseStopsSigningUnpublishesAndRevokes) {
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  const json key = state_keys()[0];
  const std::string label = key["label"];
  const int port = start_sks();
  ASSERT_GT(port, 0);
  const std::string request = json{{"signingRequest",
                                    {{"attest", "A"},
                                     {"dest", {{"tn", {"12155550131"}}}},
                                     {"orig", {{"tn", "12155550121"}}}}}}
                                  .dump();
  auto client = sks_client(port);
  auto signed_before = client->Post("/stir/v1/signing", request, "application/json");
  ASSERT_TRUE(signed_before);
  ASSERT_EQ(signed_before->status, 200);

  const auto compromised = rotate({"compromise", "--key", label});
  ASSERT_EQ(compromised.exit_code, 0) << compromised.describe();
  EXPECT_NE(compromised.out.find("profile 'east' has no active key"), std::string::npos)
      << compromised.out;
  EXPECT_EQ(state_keys()[0]["state"], "compromised");
  EXPECT_EQ(fetch_status(key["x5u"]), 404);
  const auto crl = run({"openssl", "crl", "-in", dir.path() + "/pki/crl.pem", "-noout", "-text"});
  EXPECT_NE(crl.out.find(key["serial"].get<std::string>()), std::string::npos) << crl.out;
  // The test STI-CA's (indirect) CRL revokes it, as the openssl command reads it.
  const auto check =
      run({"openssl", "verify", "-CAfile", dir.path() + "/pki/root.pem", "-untrusted",
           dir.path() + "/pki/ca.pem", "-CRLfile", dir.path() + "/pki/crl.pem", "-extended_crl",
           "-crl_check", key["chain"].get<std::string>()});
  EXPECT_NE((check.out + check.err).find("certificate revoked"), std::string::npos)
      << check.describe();
  // Our verifier, holding the certificate a verifier cached before the
  // compromise and the new CRL, rejects a token the key signed: 437.
  const std::string verify_config = dir.path() + "/verify.toml";
  write_file(verify_config,
             "[verifier]\ntrust_anchors = \"" + dir.path() + "/pki/root.pem\"\ncrl_files = [\"" +
                 dir.path() + "/pki/crl.pem\"]\n",
             0644);
  const std::string identity =
      json::parse(signed_before->body)["signingResponse"]["identity"].get<std::string>();
  const auto verdict = run({STIR_SKS_BINARY, "verify", "--config", verify_config, "--identity",
                            identity, "--from", "12155550121", "--to", "12155550131", "--cert",
                            key["chain"].get<std::string>(), "--json"});
  EXPECT_EQ(verdict.exit_code, 1) << verdict.describe();
  const json response = json::parse(verdict.out, nullptr, false);
  ASSERT_FALSE(response.is_discarded()) << verdict.describe();
  EXPECT_EQ(response["verificationResponse"]["reasoncode"], 437) << verdict.out;
  EXPECT_EQ(response["verificationResponse"]["verstat"], "TN-Validation-Failed") << verdict.out;
  sks->signal(SIGHUP);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  int status = 0;
  while (Clock::now() < deadline) {
    auto response = client->Post("/stir/v1/signing", request, "application/json");
    status = response ? response->status : -1;
    if (status == 503) break;
    std::this_thread::yield();
  }
  EXPECT_EQ(status, 503);
  const auto again = rotate({"compromise", "--key", label});
  EXPECT_EQ(again.exit_code, 0);
  ASSERT_EQ(rotate({"destroy", "--key", label}).exit_code, 0);
  EXPECT_TRUE(token_labels().empty());
}

TEST_F(RotationCliTest, ServeSwitchesOnReloadShowsKeysAndKeepsTheRingWhenAReloadFails) {
  const std::int64_t now = std::time(nullptr);
  ASSERT_EQ(rotate({"run"}, now).exit_code, 0);
  const int port = start_sks();
  ASSERT_GT(port, 0);
  auto client = sks_client(port);
  const std::string first = state_keys()[0]["x5u"];
  EXPECT_EQ(x5u_signed(*client), first);

  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  // run reloads the local server (SIGHUP, no reload_command) and returns
  // once it has seen it load the new state.
  const auto ran = rotate({"run"});
  ASSERT_EQ(ran.exit_code, 0) << ran.describe();
  EXPECT_NE(ran.out.find("to load rotation state generation"), std::string::npos) << ran.out;
  const std::string second = state_keys()[1]["x5u"];
  EXPECT_EQ(x5u_signed(*client), second);

  auto admin = client->Get("/admin/v1/keys");
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->status, 200);
  const json report = json::parse(admin->body);
  EXPECT_EQ(report["generation"], status()["generation"]);
  EXPECT_TRUE(report["reload_ok"].get<bool>());
  const std::int64_t reloads = report["reloads"].get<std::int64_t>();
  EXPECT_GE(reloads, 1) << report;
  const json shown = report["profiles"][0];
  EXPECT_GT(shown["since"].get<std::int64_t>(), 0);
  EXPECT_EQ(shown["key"], state_keys()[1]["label"]);
  EXPECT_EQ(shown["x5u"], second);
  EXPECT_GT(shown["expires_in_s"].get<std::int64_t>(), 300 * kDay);
  auto metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sks_profile_active_key{profile=\"east\",key=\"" +
                               state_keys()[1]["label"].get<std::string>() + "\",x5u=\"" + second +
                               "\"} 1"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sks_certificate_expiry_seconds{profile=\"east\""),
            std::string::npos);

  // A state naming a key the token lacks: the reload fails, the ring stays.
  const std::string state_path = dir.path() + "/rot/state.json";
  std::string state = read_file(state_path);
  const std::string second_label = state_keys()[1]["label"];
  for (auto at = state.find("\"" + second_label + "\""); at != std::string::npos;
       at = state.find("\"" + second_label + "\"", at + 1)) {
    state.replace(at + 1, second_label.size(), "missing-key");
  }
  write_file(state_path, state, 0640);
  sks->signal(SIGHUP);
  // The outcome read is this reload's: the count of reloads has moved by one.
  json server_status;
  const auto status_deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < status_deadline) {
    server_status = status()["server"];
    if (server_status.value("reloads", std::int64_t{0}) > reloads) break;
    std::this_thread::yield();
  }
  EXPECT_EQ(server_status["reloads"].get<std::int64_t>(), reloads + 1) << server_status;
  EXPECT_FALSE(server_status["reload_ok"].get<bool>());
  EXPECT_NE(server_status["error"].get<std::string>().find("missing-key"), std::string::npos)
      << server_status;
  EXPECT_NE(rotate({"status"}).out.find("last reload FAILED"), std::string::npos);
  EXPECT_EQ(x5u_signed(*client), second);
  metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sks_keyring_reloads_total{result=\"failed\"} 1"),
            std::string::npos);

  // A state that cannot be read at all: that attempt counts once too, in
  // the report (server-status.json beside the state: `sks rotate status`
  // cannot read the state either) and in the metric; the ring stays.
  write_file(state_path, "{not json", 0640);
  sks->signal(SIGHUP);
  const std::string server_status_path = dir.path() + "/rot/server-status.json";
  const auto garbled_deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < garbled_deadline) {
    server_status = json::parse(read_file(server_status_path), nullptr, false);
    if (server_status.is_discarded()) continue;
    if (server_status.value("reloads", std::int64_t{0}) > reloads + 1) break;
    std::this_thread::yield();
  }
  EXPECT_EQ(server_status["reloads"].get<std::int64_t>(), reloads + 2) << server_status;
  EXPECT_FALSE(server_status["reload_ok"].get<bool>());
  EXPECT_EQ(x5u_signed(*client), second);
  metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sks_keyring_reloads_total{result=\"failed\"} 2"), std::string::npos)
      << metrics->body;
}

TEST_F(RotationCliTest, AdoptTakesTheControllersStateOnlyWhenItsX5uIsServedAndNeverAnOlderOne) {
  const std::string d = dir.path();
  // A fleet instance: the same token, its own state file.
  std::string text = read_file(config);
  const std::string controller_state = d + "/rot/state.json";
  text.replace(text.find(controller_state), controller_state.size(), d + "/instance/state.json");
  const std::string instance = d + "/instance.toml";
  write_file(instance, text, 0600);
  const std::string instance_state = d + "/instance/state.json";
  auto adopt = [&](const std::string& state) {
    return run(
        {STIR_SKS_BINARY, "rotate", "adopt", "--state", state, "--json", "--config", instance});
  };
  auto copy_state = [&](const std::string& to) {
    write_file(to, read_file(controller_state), 0640);
    return to;
  };

  auto refused = adopt(d + "/absent.json");
  EXPECT_EQ(refused.exit_code, 66);
  EXPECT_EQ(refused.err, "sks: cannot read " + d + "/absent.json\n");
  EXPECT_FALSE(std::filesystem::exists(instance_state));

  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  const std::string first = state_keys()[0]["x5u"];
  const std::string first_copy = copy_state(d + "/first.json");
  auto adopted = adopt(first_copy);
  ASSERT_EQ(adopted.exit_code, 0) << adopted.describe();
  json action = json::parse(adopted.out)["actions"][0];
  EXPECT_EQ(action["action"], "adopt");
  EXPECT_TRUE(action["changed"].get<bool>());
  EXPECT_EQ(action["key"], state_keys()[0]["label"]);
  EXPECT_EQ(read_file(instance_state), read_file(controller_state));
  adopted = adopt(first_copy);
  ASSERT_EQ(adopted.exit_code, 0) << adopted.describe();
  EXPECT_FALSE(json::parse(adopted.out)["actions"][0]["changed"].get<bool>());

  // The instance serves from its own state, before the next key exists.
  sks = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{STIR_SKS_BINARY, "serve", "--config", instance},
      d + "/instance.log");
  const int port =
      listening_port(*sks, R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/signing$)");
  ASSERT_GT(port, 0);
  auto client = sks_client(port);
  EXPECT_EQ(x5u_signed(*client), first);

  // The controller rotates; the new chain is not served yet.
  ASSERT_EQ(rotate({"start"}).exit_code, 0);
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  const json next = state_keys()[1];
  ASSERT_EQ(next["state"], "active");
  const std::string second = next["x5u"];
  const std::string name = second.substr(second.rfind('/') + 1);
  must({STIR_TNCR_BINARY, "unpublish", name, "--yes", "--dir", d + "/cr"});
  const std::string second_copy = copy_state(d + "/second.json");
  const std::string before = read_file(instance_state);
  refused = adopt(second_copy);
  EXPECT_EQ(refused.exit_code, 65);
  const std::string why = "sks: cannot adopt key '" + next["label"].get<std::string>() +
                          "' (#2) of profile 'east': " + second + " does not answer: ";
  EXPECT_EQ(refused.err.rfind(why, 0), 0u) << refused.err;
  EXPECT_NE(refused.err.find("; publish it on every TN-CR first\n"), std::string::npos)
      << refused.err;
  EXPECT_EQ(read_file(instance_state), before);

  must({STIR_TNCR_BINARY, "publish", "--dir", d + "/cr", "--chain", next["chain"], "--name", name});
  adopted = adopt(second_copy);
  ASSERT_EQ(adopted.exit_code, 0) << adopted.describe();
  EXPECT_TRUE(json::parse(adopted.out)["actions"][0]["changed"].get<bool>());
  EXPECT_EQ(x5u_signed(*client), first);  // until the instance reloads
  sks->signal(SIGHUP);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (x5u_signed(*client) != second && Clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(x5u_signed(*client), second);

  // An older copy of the controller's state never replaces a newer one.
  const std::string adopted_state = read_file(instance_state);
  refused = adopt(first_copy);
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_EQ(refused.err, "sks: " + first_copy +
                             " is older than this instance's rotation state: key '" +
                             state_keys()[0]["label"].get<std::string>() +
                             "' (#1) of profile 'east' is draining here and active there; adopt "
                             "the controller's current state file\n");
  EXPECT_EQ(read_file(instance_state), adopted_state);

  // A fresh instance: a state naming a profile it does not have, or a key
  // its token lacks, is refused and nothing is written.
  std::string fresh_text = read_file(instance);
  fresh_text.replace(fresh_text.find(instance_state), instance_state.size(),
                     d + "/fresh/state.json");
  const std::string fresh = d + "/fresh.toml";
  write_file(fresh, fresh_text, 0600);
  auto edited_copy = [&](const std::string& from, const std::string& to, const std::string& path) {
    std::string state = read_file(controller_state);
    for (auto at = state.find(from); at != std::string::npos; at = state.find(from, at + to.size()))
      state.replace(at, from.size(), to);
    write_file(path, state, 0640);
    return path;
  };
  // A profile this config does not have is an orphan: adopted, reported,
  // never signed with (the fresh instance is another one here).
  const std::string west = edited_copy("\"east\"", "\"west\"", d + "/west.json");
  std::string other_text = read_file(instance);
  other_text.replace(other_text.find(instance_state), instance_state.size(),
                     d + "/other/state.json");
  write_file(d + "/other.toml", other_text, 0600);
  const auto orphaned =
      run({STIR_SKS_BINARY, "rotate", "adopt", "--state", west, "--config", d + "/other.toml"});
  EXPECT_EQ(orphaned.exit_code, 0) << orphaned.describe();
  EXPECT_NE(
      orphaned.out.find("west: (no change) profile 'west' is not rotated by " + d + "/other.toml"),
      std::string::npos)
      << orphaned.out;
  const std::string missing = edited_copy("\"" + next["label"].get<std::string>() + "\"",
                                          "\"missing-key\"", d + "/missing.json");
  refused = run({STIR_SKS_BINARY, "rotate", "adopt", "--state", missing, "--config", fresh});
  EXPECT_EQ(refused.exit_code, 66);
  EXPECT_EQ(
      refused.err,
      "sks: cannot adopt key 'missing-key' (#2) of profile 'east': the token has no such key; "
      "does this instance use the controller's token (the same HSM partition)?\n");
  EXPECT_FALSE(std::filesystem::exists(d + "/fresh/state.json"));
}

}  // namespace
}  // namespace stir::testing
