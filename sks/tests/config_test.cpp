// Config file parsing and PIN sources: every error names the file and line.
#include "sks/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "sks/secret.h"
#include "softhsm_token.h"
#include "stir/error.h"

namespace sks::testing {
namespace {

using stir::ErrorCode;

class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = dir.path() + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }

  // Loads `text` and returns the error message; fails the test if it loads.
  std::string error_of(const std::string& text) {
    try {
      load_config(write("bad.toml", text));
    } catch (const stir::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kConfig);
      return e.what();
    }
    ADD_FAILURE() << "loaded:\n" << text;
    return {};
  }

  TempDir dir;
};

TEST_F(ConfigTest, ReadsAFullConfigAndResolvesRelativePaths) {
  const auto path =
      write("sks.toml", std::string("# comment\n[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                            "\"\nlabel = \"sks\"\npin_file = \"user.pin\"\n"
                            "sessions = 4\n[token.module_env]\n"
                            "SOFTHSM2_CONF = \"/x/softhsm2.conf\"\n");
  const Config config = load_config(path);
  EXPECT_EQ(config.token.module, STIR_SOFTHSM_MODULE);
  EXPECT_EQ(config.token.label, "sks");
  EXPECT_EQ(config.token.pin.file, dir.path() + "/user.pin");
  EXPECT_EQ(config.token.sessions, 4u);
  EXPECT_EQ(config.token.module_env.at("SOFTHSM2_CONF"), "/x/softhsm2.conf");
}

TEST_F(ConfigTest, DevConfigRoundTrips) {
  const auto path = write(
      "dev.toml", render_dev_config(STIR_SOFTHSM_MODULE, "dev", "/p/user.pin", "/p/softhsm2.conf"));
  const Config config = load_config(path);
  EXPECT_EQ(config.token.label, "dev");
  EXPECT_EQ(config.token.pin.file, "/p/user.pin");
  EXPECT_EQ(config.token.sessions, 0u);
}

TEST_F(ConfigTest, ErrorsNameTheProblemAndTheLine) {
  const std::string module = std::string("module = \"") + STIR_SOFTHSM_MODULE + "\"\n";
  EXPECT_NE(error_of("[token]\n" + module + "label = \"a\"\npin_file = \"p\"\nlabl = \"x\"\n")
                .find(":5: unknown key 'labl' in [token]"),
            std::string::npos);
  EXPECT_NE(error_of("[token]\nlabel = \"a\"\npin_file = \"p\"\n").find("token.module"),
            std::string::npos);
  EXPECT_NE(error_of("[token]\nmodule = \"/nonexistent.so\"\nlabel = \"a\"\npin_file = \"p\"\n")
                .find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of("[token]\n" + module + "pin_file = \"p\"\n").find("label or token.serial"),
            std::string::npos);
  EXPECT_NE(error_of("[token]\n" + module + "label = \"a\"\n").find("exactly one of"),
            std::string::npos);
  EXPECT_NE(error_of("[token]\n" + module + "label = \"a\"\npin_file = \"p\"\npin_env = \"E\"\n")
                .find("exactly one of"),
            std::string::npos);
  EXPECT_NE(error_of("[token]\n" + module + "label = \"a\"\npin_file = \"p\"\nsessions = -1\n")
                .find("token.sessions"),
            std::string::npos);
  EXPECT_NE(error_of("[token]\n" + module + "label = 7\npin_file = \"p\"\n")
                .find("token.label must be a string"),
            std::string::npos);
  EXPECT_NE(error_of("[token\n").find("bad.toml:1:"), std::string::npos);
  EXPECT_NE(error_of("[other]\n").find("unknown key 'other'"), std::string::npos);
}

TEST_F(ConfigTest, CertificatesTableAndTheDeprecatedKeyringName) {
  const std::string token = std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                            "\"\nlabel = \"sks\"\npin_file = \"user.pin\"\n";
  Config config = load_config(write("a.toml", token + "[certificates]\ndir = \"certs\"\n"));
  EXPECT_EQ(config.certificates.dir, dir.path() + "/certs");
  EXPECT_TRUE(config.warnings.empty());
  const std::string old_path = write("b.toml", token + "[keyring]\ndir = \"certs\"\n");
  config = load_config(old_path);
  EXPECT_EQ(config.certificates.dir, dir.path() + "/certs");
  ASSERT_EQ(config.warnings.size(), 1u);
  EXPECT_EQ(config.warnings[0],
            old_path +
                ": [keyring] is deprecated; rename it to [certificates] (the certificate "
                "store)");
  EXPECT_EQ(error_of(token + "[keyring]\ndir = \"a\"\n[certificates]\ndir = \"b\"\n"),
            dir.path() +
                "/bad.toml:5: [keyring] is the old name of [certificates]; keep only "
                "[certificates]");
}

TEST_F(ConfigTest, RotationSettingsAndTheirLimits) {
  const std::string token = std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                            "\"\nlabel = \"sks\"\npin_file = \"user.pin\"\n";
  const std::string profile =
      "[[profile]]\nname = \"east\"\nclients = [\"sbc\"]\n[profile.rotation]\n"
      "x5u_base = \"https://cr.example.net/certs/\"\nspc = \"1234\"\nsubject = \"/C=US/O=X\"\n";
  const Config config = load_config(
      write("r.toml", token + "[rotation]\nissue_command = [\"issue\", \"{csr}\", \"{chain}\"]\n" +
                          "state_file = \"rot/state.json\"\n" + profile + "drain_s = 150\n"));
  EXPECT_EQ(config.rotation.state_file, dir.path() + "/rot/state.json");
  EXPECT_EQ(config.rotation.issue_command, (std::vector<std::string>{"issue", "{csr}", "{chain}"}));
  const SigningProfile& p = config.profiles.at(0);
  EXPECT_TRUE(p.rotation.enabled);
  EXPECT_TRUE(p.key_label.empty());  // from the rotation state
  EXPECT_EQ(p.rotation.drain_s, 150);
  EXPECT_EQ(p.rotation.renew_before_s, 30 * 86400);
  EXPECT_EQ(error_of(token + profile + "drain_s = 60\n"),
            dir.path() +
                "/bad.toml:12: profile 'east' rotation.drain_s must be an integer from 90 "
                "to 2592000");
  // The drain floor: max_iat_skew_s + 60 s freshness + 15 s skew + 15 s margin.
  EXPECT_NE(error_of(token + profile + "drain_s = 149\n")
                .find("profile 'east' rotation.drain_s = 149 is below the drain floor of 150 s = "
                      "server.max_iat_skew_s 60"),
            std::string::npos);
  EXPECT_NE(error_of(token + "[server]\nlab_plain_http = true\nmax_iat_skew_s = 10\n" + profile +
                     "drain_s = 90\n")
                .find("drain_s = 90 is below the drain floor of 100 s"),
            std::string::npos);
  EXPECT_EQ(load_config(write("floor.toml",
                              token + "[server]\nlab_plain_http = true\nmax_iat_skew_s = 10\n" +
                                  profile + "drain_s = 100\n"))
                .profiles.at(0)
                .rotation.drain_s,
            100);
  EXPECT_EQ(
      error_of(token +
               "[[profile]]\nname = \"east\"\n[profile.rotation]\n"
               "x5u_base = \"http://cr.example.net/\"\nspc = \"1\"\nsubject = \"/C=US/O=X\"\n"),
      dir.path() +
          "/bad.toml:8: profile 'east' rotation.x5u_base must be an https:// URL "
          "ending in '/'");
  EXPECT_EQ(error_of(token + "[rotation]\npublish_command = []\n"),
            dir.path() + "/bad.toml:6: rotation.publish_command must name a program");
}

// Found with fuzz/sks_config_fuzz (corpus/sks_config_fuzz/name-too-long.toml):
// a path the system refuses to look up (ENAMETOOLONG) escaped as
// std::filesystem::filesystem_error instead of being read like any other
// path: a module that does not exist, a trust anchor file (checked when the
// verifier opens it).
TEST_F(ConfigTest, PathsTooLongToLookUpAreReadLikeOthers) {
  const std::string too_long = "/" + std::string(300, 'a');
  EXPECT_NE(error_of("[token]\nmodule = \"" + too_long + "\"\nlabel = \"a\"\npin_env = \"P\"\n")
                .find("PKCS#11 module " + too_long + " does not exist"),
            std::string::npos);
  const Config config =
      load_config(write("v.toml", "[verifier]\ntrust_anchors = \"" + too_long + "\"\n"));
  ASSERT_TRUE(config.verifier);
  EXPECT_EQ(config.verifier->trust_anchor_files, std::vector<std::string>{too_long});
  EXPECT_TRUE(config.verifier->trust_anchors_dir.empty());
}

// [server] connection limits: defaults, the older name `threads`, and each
// range refused with the key, its bounds and the line.
TEST_F(ConfigTest, ServerLimitsHaveDefaultsRangesAndTheOlderThreadsName) {
  const std::string head = std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                           "\"\nlabel = \"a\"\npin_file = \"p\"\n[server]\nlab_plain_http = true\n";
  const std::string profile =
      "[[profile]]\nname = \"p\"\nkey = \"k\"\nx5u = \"https://cr.example.net/k.pem\"\n"
      "origid = \"de305d54-75b4-431b-adb2-eb6b9e546014\"\nattest = [\"A\"]\n"
      "clients = [\"c.example.net\"]\n";
  const ServerConfig defaults = load_config(write("d.toml", head + profile)).server;
  EXPECT_EQ(defaults.backlog, 0);
  EXPECT_EQ(defaults.max_connections, 4096u);
  EXPECT_EQ(defaults.io_threads, 0u);
  EXPECT_EQ(defaults.handshake_timeout_ms, 5000);
  EXPECT_EQ(defaults.header_timeout_ms, 5000);
  EXPECT_EQ(defaults.body_timeout_ms, 5000);
  EXPECT_EQ(defaults.port, 8444);  // sks's own listener defaults
  EXPECT_EQ(defaults.keep_alive_timeout_s, 30);
  EXPECT_EQ(defaults.keep_alive_max_requests, 100000u);
  EXPECT_EQ(defaults.signing_queue_depth, 256u);

  const ServerConfig set =
      load_config(write("s.toml", head +
                                      "threads = 3\nread_timeout_ms = 700\nbacklog = 64\n"
                                      "max_connections = 10\nhandshake_timeout_ms = 900\n"
                                      "body_timeout_ms = 800\nsigning_queue_depth = 0\n" +
                                      profile))
          .server;
  EXPECT_EQ(set.io_threads, 3u);          // from the older name
  EXPECT_EQ(set.header_timeout_ms, 700);  // from read_timeout_ms
  EXPECT_EQ(set.body_timeout_ms, 800);
  EXPECT_EQ(set.backlog, 64);
  EXPECT_EQ(set.max_connections, 10u);
  EXPECT_EQ(set.handshake_timeout_ms, 900);
  EXPECT_EQ(set.signing_queue_depth, 0u);
  EXPECT_EQ(load_config(write("t.toml", head + "threads = 3\nio_threads = 5\n" + profile))
                .server.io_threads,
            5u);

  for (const auto& [setting, message] : std::vector<std::pair<std::string, std::string>>{
           {"backlog = -1", "server.backlog must be an integer from 0 to 65535"},
           {"max_connections = 0", "server.max_connections must be an integer from 1 to 1000000"},
           {"io_threads = 2000", "server.io_threads must be an integer from 0 to 1024"},
           {"handshake_timeout_ms = 5", "server.handshake_timeout_ms must be an integer from 10"},
           {"header_timeout_ms = 0", "server.header_timeout_ms must be an integer from 10"},
           {"body_timeout_ms = \"1s\"", "server.body_timeout_ms must be an integer from 10"},
           {"signing_queue_depth = -3",
            "server.signing_queue_depth must be an integer from 0 to 100000"}}) {
    const std::string error = error_of(head + setting + "\n" + profile);
    EXPECT_NE(error.find(":7:"), std::string::npos) << error;
    EXPECT_NE(error.find(message), std::string::npos) << error;
  }
}

// Issue 17: role lists (absent = any client of client_ca), the x5u fetch
// bounds and the strict signature-check period, with their defaults and
// ranges.
TEST_F(ConfigTest, HostilePeerLimitsHaveDefaultsAndRanges) {
  const std::string token = std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                            "\"\nlabel = \"a\"\npin_file = \"p\"\n";
  const std::string server = "[server]\nlab_plain_http = true\nroles = [\"verification\"]\n";
  const std::string verifier = "[verifier]\ntrust_anchors = \"root.pem\"\n";
  const Config defaults = load_config(write("d.toml", token + server + verifier));
  EXPECT_FALSE(defaults.server.verification_clients.has_value());
  EXPECT_FALSE(defaults.server.metrics_clients.has_value());
  EXPECT_EQ(defaults.verifier->max_fetches_in_flight, 32u);
  EXPECT_EQ(defaults.verifier->max_fetches_per_host, 4u);
  EXPECT_EQ(defaults.token.signature_check_strict_s, 600);

  const Config set = load_config(
      write("s.toml", token + "signature_check_strict_s = 30\n" + server +
                          "verification_clients = [\"sbc1.example.net\"]\nmetrics_clients = []\n" +
                          verifier + "max_fetches_in_flight = 8\nmax_fetches_per_host = 2\n"));
  EXPECT_EQ(set.server.verification_clients, std::vector<std::string>{"sbc1.example.net"});
  ASSERT_TRUE(set.server.metrics_clients.has_value());
  EXPECT_TRUE(set.server.metrics_clients->empty());  // [] closes /metrics
  EXPECT_EQ(set.verifier->max_fetches_in_flight, 8u);
  EXPECT_EQ(set.verifier->max_fetches_per_host, 2u);
  EXPECT_EQ(set.token.signature_check_strict_s, 30);

  EXPECT_NE(error_of(token + server + verifier + "max_fetches_in_flight = 0\n")
                .find("verifier.max_fetches_in_flight must be an integer from 1 to 1024"),
            std::string::npos);
  EXPECT_NE(error_of(token + server + verifier + "max_fetches_per_host = 2000\n")
                .find("verifier.max_fetches_per_host must be an integer from 1 to 1024"),
            std::string::npos);
  EXPECT_NE(error_of(token + "signature_check_strict_s = 0\n" + server + verifier)
                .find("token.signature_check_strict_s must be an integer from 1 to 604800"),
            std::string::npos);
  EXPECT_NE(
      error_of(token + server + "metrics_clients = \"prom\"\n" + verifier).find("metrics_clients"),
      std::string::npos);
}

// [metrics]: its defaults, the addresses plain HTTP may use (loopback:
// 127.0.0.0/8 and ::1), and the refusals with the key they name.
TEST_F(ConfigTest, MetricsListenerHasDefaultsAndServesPlainHttpOnLoopbackOnly) {
  const std::string head = std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                           "\"\nlabel = \"a\"\npin_file = \"p\"\n"
                           "[server]\nlab_plain_http = true\nroles = [\"verification\"]\n"
                           "[verifier]\ntrust_anchors = \"root.pem\"\n";
  const Config absent = load_config(write("a.toml", head));
  EXPECT_FALSE(absent.metrics.present);

  const Config plain = load_config(write("p.toml", head + "[metrics]\n"));
  EXPECT_TRUE(plain.metrics.present);
  EXPECT_TRUE(plain.metrics.plain_http());
  EXPECT_EQ(plain.metrics.listen, "127.0.0.1");
  EXPECT_EQ(plain.metrics.port, 9464);
  EXPECT_EQ(plain.metrics.io_threads, 1u);
  EXPECT_EQ(plain.metrics.max_connections, 64u);
  EXPECT_FALSE(plain.metrics.clients.has_value());
  for (const char* loopback : {"127.0.0.1", "127.1.2.3", "::1"}) {
    EXPECT_EQ(load_config(write("l.toml", head + "[metrics]\nlisten = \"" + loopback + "\"\n"))
                  .metrics.listen,
              loopback);
  }
  for (const char* other : {"0.0.0.0", "10.0.0.1", "::", "::ffff:127.0.0.1", "localhost"}) {
    EXPECT_NE(error_of(head + "[metrics]\nlisten = \"" + other + "\"\n")
                  .find("metrics.listen = \"" + std::string(other) +
                        "\" is not a loopback address: plain HTTP is served on loopback only"),
              std::string::npos)
        << other;
  }
  const Config tls = load_config(write(
      "t.toml", head + "[metrics]\nlisten = \"0.0.0.0\"\nport = 9999\ntls_cert = \"s.pem\"\n"
                       "tls_key = \"s.key\"\nclient_ca = \"ops.pem\"\nclients = [\"prom\"]\n"));
  EXPECT_FALSE(tls.metrics.plain_http());
  EXPECT_EQ(tls.metrics.port, 9999);
  EXPECT_EQ(tls.metrics.clients, std::vector<std::string>{"prom"});
  EXPECT_NE(error_of(head + "[metrics]\nport = 70000\n")
                .find("metrics.port must be an integer from 0 to 65535"),
            std::string::npos);
  EXPECT_NE(error_of(head + "[metrics]\nmax_body_bytes = 1024\n")
                .find("unknown key 'max_body_bytes' in [metrics]"),
            std::string::npos);
  EXPECT_NE(
      error_of(head + "[metrics]\nport = 8444\n")
          .find("metrics.port 8444 is server.port: the metrics listener needs a port of its own"),
      std::string::npos);
}

// Issue 22: the bounds on token calls and how the module is called.
TEST_F(ConfigTest, TokenCallBoundsHaveDefaultsAndRanges) {
  const std::string token = std::string("[token]\nmodule = \"") + STIR_SOFTHSM_MODULE +
                            "\"\nlabel = \"a\"\npin_file = \"p\"\n";
  const Config defaults = load_config(write("d.toml", token));
  EXPECT_EQ(defaults.token.call_timeout_ms, 5000);
  EXPECT_EQ(defaults.token.wedged_exit_s, 60);
  EXPECT_EQ(defaults.token.calls, "auto");
  const Config set = load_config(
      write("s.toml", token + "call_timeout_ms = 800\nwedged_exit_s = 5\ncalls = \"serial\"\n"));
  EXPECT_EQ(set.token.call_timeout_ms, 800);
  EXPECT_EQ(set.token.wedged_exit_s, 5);
  EXPECT_EQ(set.token.calls, "serial");
  EXPECT_NE(error_of(token + "call_timeout_ms = 99\n")
                .find("token.call_timeout_ms must be an integer from 100 to 600000"),
            std::string::npos);
  EXPECT_NE(error_of(token + "wedged_exit_s = 0\n")
                .find("token.wedged_exit_s must be an integer from 1 to 86400"),
            std::string::npos);
  EXPECT_NE(error_of(token + "calls = \"sometimes\"\n")
                .find("token.calls must be \"auto\", \"serial\" or \"parallel\""),
            std::string::npos);
  // "auto": serial for p11-kit's RPC client only.
  EXPECT_TRUE(
      p11::CallPolicy::for_module("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so").serial);
  EXPECT_FALSE(p11::CallPolicy::for_module(STIR_SOFTHSM_MODULE).serial);
}

TEST_F(ConfigTest, MissingFileSaysHowToMakeOne) {
  try {
    load_config(dir.path() + "/none.toml");
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
    EXPECT_NE(std::string(e.what()).find("sks init"), std::string::npos);
  }
}

TEST_F(ConfigTest, ConfigPathComesFromFlagThenEnvironmentThenDefault) {
  ::setenv("SKS_CONFIG", "/from/env.toml", 1);
  EXPECT_EQ(resolve_config_path("/from/flag.toml"), "/from/flag.toml");
  EXPECT_EQ(resolve_config_path(""), "/from/env.toml");
  ::unsetenv("SKS_CONFIG");
  EXPECT_EQ(resolve_config_path(""), kDefaultConfigPath);
}

TEST_F(ConfigTest, PinFileMustBeOwnerOnly) {
  const auto good = write("good.pin", "1234\n", 0600);
  EXPECT_EQ(read_pin({good, {}}).view(), "1234");
  const auto read_only = write("ro.pin", "5678", 0400);
  EXPECT_EQ(read_pin({read_only, {}}).view(), "5678");
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    const auto loose = write("loose.pin", "1234\n", mode);
    try {
      read_pin({loose, {}});
      FAIL() << std::oct << mode;
    } catch (const stir::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kPermission);
      EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos);
      EXPECT_EQ(std::string(e.what()).find("1234"), std::string::npos);
    }
  }
  try {
    read_pin({dir.path() + "/none.pin", {}});
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  try {
    read_pin({write("empty.pin", "\n"), {}});
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
  }
}

TEST_F(ConfigTest, PinFromEnvironment) {
  ::setenv("SKS_TEST_PIN", "env-pin", 1);
  EXPECT_EQ(read_pin({{}, "SKS_TEST_PIN"}).view(), "env-pin");
  ::unsetenv("SKS_TEST_PIN");
  try {
    read_pin({{}, "SKS_TEST_PIN"});
    FAIL();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(ConfigTest, EnsurePinFileMakesOneRandomOwnerOnlyPinAndKeepsIt) {
  const std::string path = dir.path() + "/new.pin";
  const std::string first(ensure_pin_file(path).view());
  EXPECT_EQ(first.size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ensure_pin_file(path).view(), first);
  EXPECT_NE(ensure_pin_file(dir.path() + "/other.pin").view(), first);
}

}  // namespace
}  // namespace sks::testing
