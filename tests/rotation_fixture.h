// The stack every `sks rotate` test needs, on ephemeral loopback ports: a
// fresh SoftHSM2 token (`sks init`), the test STI-CA whose `issue` and
// `revoke` are the rotation's issue and revocation steps, a TN-CR whose
// `publish` and `unpublish` are its publish steps and whose `serve` answers
// the x5u over HTTPS, and an sks config with one rotating profile "east"
// (client sbc1.example.net, also an admin) and a [verifier] that trusts the
// test root and fetches from that TN-CR.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "process.h"
#include "test_files.h"
#include "test_pki.h"

namespace stir::testing {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kClientName = "sbc1.example.net";
constexpr int kStartTimeoutMs = 20000;
constexpr std::int64_t kDay = 86400;

inline std::string quoted(const std::string& text) { return json(text).dump(); }

inline std::string toml_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quoted(items[i]);
  return out + "]";
}

class RotationStackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir.path();
    const auto init = run({STIR_SKS_BINARY, "init", "--dir", d + "/dev"});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    token_config = init.out.substr(0, init.out.find('\n'));
    ASSERT_NO_FATAL_FAILURE(
        must({STIR_DEV_CA_BINARY, "init", "--config", token_config, "--dir", d + "/pki",
              "--crl-url", "https://127.0.0.1/crl/sti-pa-test.crl"}));
    const TlsPki tls = make_tls_pki(kClientName);
    write_file(d + "/tls/server.pem", tls.server.certificate_pem());
    write_file(d + "/tls/server.key", tls.server.private_key_pem());
    write_file(d + "/tls/server-ca.pem", tls.server_ca.certificate_pem(), 0644);
    write_file(d + "/tls/clients-ca.pem", tls.client_ca.certificate_pem(), 0644);
    write_file(d + "/tls/client.pem", tls.client.certificate_pem());
    write_file(d + "/tls/client.key", tls.client.private_key_pem());

    const std::string tncr_config = d + "/tn-cr.toml";
    write_file(tncr_config, "[repository]\ndir = \"" + d + "/cr\"\n[server]\n" +
                                "listen = \"127.0.0.1\"\nport = 0\ntls_cert = \"" + d +
                                "/tls/server.pem\"\ntls_key = \"" + d + "/tls/server.key\"\n");
    std::filesystem::create_directories(d + "/cr");
    tncr = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_TNCR_BINARY, "serve", "--config", tncr_config},
        d + "/tn-cr.log");
    tncr_port = listening_port(*tncr, R"(^listening on https://127\.0\.0\.1:(\d+)/$)");
    ASSERT_GT(tncr_port, 0);

    config = d + "/dev/sks-rotation.toml";
    write_file(
        config,
        read_file(token_config) + "\n[rotation]\nstate_file = " + quoted(d + "/rot/state.json") +
            "\nissue_command = " +
            toml_array({STIR_DEV_CA_BINARY, "issue", "--config", token_config, "--dir", d + "/pki",
                        "--csr", "{csr}", "--out", "{chain}"}) +
            "\npublish_command = " +
            toml_array({STIR_TNCR_BINARY, "publish", "--dir", d + "/cr", "--chain", "{chain}",
                        "--name", "{name}"}) +
            "\nunpublish_command = " +
            toml_array({STIR_TNCR_BINARY, "unpublish", "{name}", "--yes", "--dir", d + "/cr"}) +
            "\nrevoke_command = " +
            toml_array({STIR_DEV_CA_BINARY, "revoke", "--config", token_config, "--dir", d + "/pki",
                        "--serial", "{serial}"}) +
            "\nx5u_ca_file = " + quoted(d + "/tls/server-ca.pem") +
            "\n\n[server]\nlisten = \"127.0.0.1\"\nport = 0\ntls_cert = " +
            quoted(d + "/tls/server.pem") + "\ntls_key = " + quoted(d + "/tls/server.key") +
            "\nclient_ca = " + quoted(d + "/tls/clients-ca.pem") + "\nadmins = [\"" + kClientName +
            "\"]\n" + "\n[verifier]\ntrust_anchors = " + quoted(d + "/pki/root.pem") +
            "\ncrl_files = [" + quoted(d + "/pki/crl.pem") + "]\ntls_ca_file = " +
            quoted(d + "/tls/server-ca.pem") + "\nallow_loopback = true\nallowed_ports = [" +
            std::to_string(tncr_port) + "]\n" + "\n[[profile]]\nname = \"east\"\n" +
            "origid = \"de305d54-75b4-431b-adb2-eb6b9e546014\"\n" + "clients = [\"" + kClientName +
            "\"]\n[profile.rotation]\nx5u_base = \"https://127.0.0.1:" + std::to_string(tncr_port) +
            "/\"\nspc = \"1234\"\nsubject = \"/C=US/O=Rotation\"\n");
    ASSERT_NO_FATAL_FAILURE(must({STIR_SKS_BINARY, "check-config", "--config", config}));
  }

  void TearDown() override {
    for (auto* server : {sks.get(), tncr.get()}) {
      if (server == nullptr) continue;
      server->signal(SIGTERM);
      EXPECT_EQ(server->wait(20000), 0) << "a server did not exit 0; logs in " << dir.path();
    }
  }

  void must(const std::vector<std::string>& argv) {
    const auto result = run(argv);
    ASSERT_EQ(result.exit_code, 0) << argv[0] << " " << argv[1] << ": " << result.describe();
  }

  int listening_port(BackgroundProcess& server, const std::string& pattern) {
    const auto line = server.read_line(kStartTimeoutMs);
    EXPECT_TRUE(line) << "no 'listening on' line; logs in " << dir.path();
    if (!line) return 0;
    std::smatch match;
    EXPECT_TRUE(std::regex_match(*line, match, std::regex(pattern))) << *line;
    return match.empty() ? 0 : std::stoi(match[1]);
  }

  // `sks rotate ARGS --config CONFIG`, at the fake time `now` when not 0.
  ProcessResult rotate(std::vector<std::string> args, std::int64_t now = 0,
                       const std::string& fault = "") {
    args.insert(args.begin(), {STIR_SKS_BINARY, "rotate"});
    args.insert(args.end(), {"--config", config});
    EnvChanges env;
    env["SKS_FAKE_NOW"] = now != 0 ? std::optional<std::string>(std::to_string(now)) : std::nullopt;
    env["SKS_FAULT_POINT"] = fault.empty() ? std::nullopt : std::optional<std::string>(fault);
    return run(args, env);
  }

  json status() {
    const auto result = rotate({"status", "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.describe();
    return json::parse(result.out);
  }
  // The keys of profile east in the state, oldest first.
  json state_keys() { return status()["profiles"][0]["keys"]; }

  std::set<std::string> token_labels() {
    const auto result = run({STIR_SKS_BINARY, "keys", "list", "--json", "--config", config});
    EXPECT_EQ(result.exit_code, 0) << result.describe();
    std::set<std::string> labels;
    for (const auto& k : json::parse(result.out)) {
      const std::string label = k["label"];
      if (label.rfind("dev-sti-", 0) != 0) labels.insert(label);  // the test CA's own keys
    }
    return labels;
  }

  // The status code a GET of the x5u gets from the TN-CR.
  int fetch_status(const std::string& x5u) {
    httplib::SSLClient client("127.0.0.1", tncr_port);
    client.set_ca_cert_path((dir.path() + "/tls/server-ca.pem").c_str());
    client.enable_server_certificate_verification(true);
    const auto response = client.Get(x5u.substr(x5u.find('/', 8)).c_str());
    return response ? response->status : -1;
  }

  // Starts `sks serve` on the config; its port, or 0 (with a failure).
  int start_sks() {
    sks = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{STIR_SKS_BINARY, "serve", "--config", config},
        dir.path() + "/sks.log");
    return listening_port(*sks, R"(^listening on https://127\.0\.0\.1:(\d+)/stir/v1/signing$)");
  }

  std::unique_ptr<httplib::SSLClient> sks_client(int port) const {
    const std::string t = dir.path() + "/tls/";
    auto client =
        std::make_unique<httplib::SSLClient>("127.0.0.1", port, t + "client.pem", t + "client.key");
    client->set_ca_cert_path((t + "server-ca.pem").c_str());
    client->enable_server_certificate_verification(true);
    // Without it the body waits for the ACK of the headers: ~40 ms a request.
    client->set_tcp_nodelay(true);
    return client;
  }

  // A key LABEL made in the token outside rotation and its chain from the
  // test STI-CA; the chain file's path (DIR/LABEL.pem).
  std::string certified_key(const std::string& label) {
    const std::string d = dir.path();
    must({STIR_SKS_BINARY, "keys", "generate", "--label", label, "--config", config});
    must({STIR_SKS_BINARY, "keys", "csr", "--label", label, "--spc", "1234", "--subject",
          "/C=US/O=" + label, "--out", d + "/" + label + ".csr", "--config", config});
    must({STIR_DEV_CA_BINARY, "issue", "--config", token_config, "--dir", d + "/pki", "--csr",
          d + "/" + label + ".csr", "--out", d + "/" + label + ".pem"});
    return d + "/" + label + ".pem";
  }

  // The x5u of the token one signing request (attestation A) gets back,
  // or "status N" / "status none" when it is not signed.
  static std::string x5u_signed(httplib::SSLClient& client) {
    const std::string request = json{{"signingRequest",
                                      {{"attest", "A"},
                                       {"dest", {{"tn", {"12155550131"}}}},
                                       {"orig", {{"tn", "12155550121"}}}}}}
                                    .dump();
    auto response = client.Post("/stir/v1/signing", request, "application/json");
    if (!response || response->status != 200)
      return std::string("status ") + (response ? std::to_string(response->status) : "none");
    const std::string identity = json::parse(response->body)["signingResponse"]["identity"];
    const auto start = identity.find(";info=<") + 7;
    return identity.substr(start, identity.find('>', start) - start);
  }

  TempDir dir;
  std::string token_config;
  std::string config;
  std::unique_ptr<BackgroundProcess> tncr;
  std::unique_ptr<BackgroundProcess> sks;
  int tncr_port = 0;
};

}  // namespace stir::testing
