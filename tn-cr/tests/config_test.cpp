// The tn-cr config file: defaults, relative paths, and strict validation.
#include "tn_cr/config.h"

#include <gtest/gtest.h>

#include "stir/error.h"
#include "test_files.h"

namespace tn_cr {
namespace {

using stir::testing::TempDir;

class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    const std::string path = temp_.path() + "/tn-cr.toml";
    stir::testing::write_file(path, text);
    return path;
  }
  // The kConfig message for `text`, or "" when it loads.
  std::string error_for(const std::string& text) {
    try {
      load_config(write(text));
    } catch (const stir::Error& e) {
      EXPECT_EQ(e.code(), stir::ErrorCode::kConfig) << e.what();
      return e.what();
    }
    return "";
  }
  TempDir temp_;
};

TEST_F(ConfigTest, DefaultsAndRelativePaths) {
  const Config c =
      load_config(write("# comments are fine\n"
                        "[repository]\ndir = \"certs\"\n"
                        "[server]\ntls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"\n"));
  EXPECT_EQ(c.repository_dir, temp_.path() + "/certs");
  EXPECT_EQ(c.server.repository_dir, c.repository_dir);
  EXPECT_TRUE(c.has_server);
  EXPECT_EQ(c.server.tls_cert, temp_.path() + "/tls/server.pem");
  EXPECT_EQ(c.server.listen, "127.0.0.1");
  EXPECT_EQ(c.server.port, 8443);
  EXPECT_EQ(c.server.max_age_s, 86400);
  EXPECT_EQ(c.server.path_prefix, "/");
  EXPECT_FALSE(c.server.lab_plain_http);
  // tn-cr's own listener defaults (the shared reader keeps them).
  EXPECT_EQ(c.server.keep_alive_timeout_s, 5);
  EXPECT_EQ(c.server.keep_alive_max_requests, 10000u);
}

TEST_F(ConfigTest, EverySetting) {
  const Config c = load_config(write(
      "[repository]\ndir = \"/srv/tn-cr\"\n"
      "[server]\nlisten = \"0.0.0.0\"\nport = 0\nlab_plain_http = true\nmax_age_s = 172800\n"
      "path_prefix = \"/certs/\"\nthreads = 4\nread_timeout_ms = 100\nwrite_timeout_ms = 200\n"
      "keep_alive_timeout_s = 2\nkeep_alive_max_requests = 50\n"));
  EXPECT_EQ(c.repository_dir, "/srv/tn-cr");
  EXPECT_EQ(c.server.port, 0);
  EXPECT_EQ(c.server.max_age_s, 172800);
  EXPECT_EQ(c.server.path_prefix, "/certs/");
  EXPECT_EQ(c.server.io_threads, 4u);          // from the older name
  EXPECT_EQ(c.server.header_timeout_ms, 100);  // read_timeout_ms: header and body
  EXPECT_EQ(c.server.body_timeout_ms, 100);
  EXPECT_EQ(c.server.keep_alive_timeout_s, 2);
  EXPECT_EQ(c.server.keep_alive_max_requests, 50u);
}

TEST_F(ConfigTest, RepositoryDefaultsBesideTheConfigAndServerIsOptional) {
  const Config c = load_config(write(""));
  EXPECT_EQ(c.repository_dir, temp_.path() + "/certs");
  EXPECT_FALSE(c.has_server);
}

TEST_F(ConfigTest, MaxAgeIsConfigurableUpwardOnly) {
  const std::string message = error_for("[server]\nlab_plain_http = true\n\nmax_age_s = 3600\n");
  EXPECT_NE(message.find("tn-cr.toml:4"), std::string::npos) << message;
  EXPECT_NE(message.find("server.max_age_s"), std::string::npos) << message;
  EXPECT_NE(message.find("86400"), std::string::npos) << message;
}

TEST_F(ConfigTest, Errors) {
  const std::string plain = "[server]\nlab_plain_http = true\n";
  EXPECT_NE(error_for("[server]\nport = 1\n").find("tls_cert"), std::string::npos);
  EXPECT_NE(error_for(plain + "prot = 1\n").find("unknown key 'prot' in [server]"),
            std::string::npos);
  EXPECT_NE(error_for("[repository]\ndirectory = \"x\"\n").find("unknown key 'directory'"),
            std::string::npos);
  EXPECT_NE(error_for("[other]\n").find("unknown key 'other'"), std::string::npos);
  EXPECT_NE(error_for("repository = 1\n").find("must be a table"), std::string::npos);
  EXPECT_NE(error_for(plain + "port = 70000\n").find("server.port"), std::string::npos);
  EXPECT_NE(error_for(plain + "port = \"8443\"\n").find("server.port"), std::string::npos);
  for (const char* prefix : {"certs/", "/certs", "/../", "//", "/a%2f/"}) {
    EXPECT_NE(error_for(plain + "path_prefix = \"" + prefix + "\"\n").find("server.path_prefix"),
              std::string::npos)
        << prefix;
  }
  EXPECT_NE(error_for("[server\n").find("tn-cr.toml:1"), std::string::npos);
  try {
    load_config(temp_.path() + "/missing.toml");
    ADD_FAILURE();
  } catch (const stir::Error& e) {
    EXPECT_EQ(e.code(), stir::ErrorCode::kConfig);
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
}

TEST_F(ConfigTest, MetricsClientsNeedClientCa) {
  const Config c = load_config(
      write("[server]\ntls_cert = \"s.pem\"\ntls_key = \"s.key\"\nclient_ca = \"ca.pem\"\n"
            "metrics_clients = [\"prometheus.example.net\"]\n"));
  EXPECT_EQ(c.server.client_ca, temp_.path() + "/ca.pem");
  EXPECT_EQ(c.server.metrics_clients, std::vector<std::string>{"prometheus.example.net"});
  EXPECT_NE(error_for("[server]\ntls_cert = \"s.pem\"\ntls_key = \"s.key\"\n"
                      "metrics_clients = [\"prometheus.example.net\"]\n")
                .find("server.metrics_clients needs server.client_ca and TLS"),
            std::string::npos);
}

}  // namespace
}  // namespace tn_cr
