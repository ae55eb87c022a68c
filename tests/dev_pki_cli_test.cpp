// The certificate flow end to end through the binaries, as an operator runs
// it on a fresh `sks init` token: sks keys csr -> sti-dev-ca init/issue ->
// sks keys install-cert / show-cert -> sti-dev-ca revoke / crl, each result
// checked with the openssl command rather than project code.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "process.h"
#include "test_files.h"

namespace stir::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kExitUsage = 64;
constexpr int kExitDataErr = 65;
constexpr int kExitNoInput = 66;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

ProcessResult must(ProcessResult result, const std::string& what) {
  if (result.exit_code != 0) throw std::runtime_error(what + " failed: " + result.describe());
  return result;
}

class CliPkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ProcessResult init = must(sks({"init", "--dir", path("token")}), "sks init");
    config_ = init.out.substr(0, init.out.find('\n'));
    must(sks({"keys", "generate", "--label", "L", "--config", config_}), "generate L");
    must(sks({"keys", "generate", "--label", "M", "--config", config_}), "generate M");
  }

  // Only the config a test names is used.
  ProcessResult run_binary(const char* binary, const std::vector<std::string>& args,
                           EnvChanges env = {}) {
    env.try_emplace("SKS_CONFIG", std::nullopt);
    env.try_emplace("SOFTHSM2_CONF", std::nullopt);
    std::vector<std::string> argv{binary};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env);
  }
  ProcessResult sks(const std::vector<std::string>& args) {
    return run_binary(STIR_SKS_BINARY, args);
  }
  ProcessResult dev_ca(std::vector<std::string> args) {
    args.insert(args.end(), {"--config", config_, "--dir", path("pki")});
    return run_binary(STI_DEV_CA_BINARY, args);
  }
  ProcessResult openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {{"OPENSSL_CONF", std::nullopt}});
  }

  std::string path(const std::string& name) const { return temp_.path() + "/" + name; }

  // csr.pem for L, the test PKI, and chain.pem issued from the CSR.
  void csr_init_issue() {
    must(sks({"keys", "csr", "--label", "L", "--spc", "1234", "--subject", "/C=US/O=Example",
              "--out", path("csr.pem"), "--config", config_}),
         "keys csr");
    must(dev_ca({"init"}), "sti-dev-ca init");
    must(dev_ca({"issue", "--csr", path("csr.pem"), "--out", path("chain.pem")}), "issue");
  }

  TempDir temp_;
  std::string config_;
};

TEST_F(CliPkiTest, CsrIssueInstallShowRevokeEndToEnd) {
  csr_init_issue();
  const ProcessResult csr_ok = openssl({"req", "-verify", "-noout", "-in", path("csr.pem")});
  EXPECT_EQ(csr_ok.exit_code, 0) << csr_ok.describe();
  const ProcessResult csr_text = openssl({"req", "-text", "-noout", "-in", path("csr.pem")});
  EXPECT_TRUE(contains(csr_text.out, "1.3.6.1.5.5.7.1.26")) << csr_text.out;
  EXPECT_TRUE(contains(csr_text.out, "CN = SHAKEN 1234")) << csr_text.out;

  const ProcessResult verify = openssl({"verify", "-CAfile", path("pki/root.pem"), "-untrusted",
                                        path("pki/ca.pem"), path("chain.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_EQ(verify.out, path("chain.pem") + ": OK\n");

  // The certificate's key is the token key, as `sks keys public` exports it.
  must(sks({"keys", "public", "--label", "L", "--out", path("L.pub"), "--config", config_}),
       "keys public");
  const ProcessResult cert_key = openssl({"x509", "-in", path("chain.pem"), "-pubkey", "-noout"});
  EXPECT_EQ(cert_key.out, read_file(path("L.pub")));

  const std::string keyring = path("token/keyring");
  const ProcessResult installed = sks(
      {"keys", "install-cert", "--label", "L", "--chain", path("chain.pem"), "--config", config_});
  ASSERT_EQ(installed.exit_code, 0) << installed.describe();
  EXPECT_EQ(installed.out, "installed " + keyring + "/L.chain.pem\n");
  EXPECT_EQ(read_file(keyring + "/L.chain.pem"), read_file(path("chain.pem")));
  const ProcessResult again = sks(
      {"keys", "install-cert", "--label", "L", "--chain", path("chain.pem"), "--config", config_});
  EXPECT_EQ(again.out, "unchanged " + keyring + "/L.chain.pem\n") << again.describe();
  const ProcessResult again_json = sks({"keys", "install-cert", "--label", "L", "--chain",
                                        path("chain.pem"), "--json", "--config", config_});
  ASSERT_EQ(again_json.exit_code, 0) << again_json.describe();
  EXPECT_EQ(nlohmann::json::parse(again_json.out),
            (nlohmann::json{{"label", "L"},
                            {"outcome", "unchanged"},
                            {"changed", false},
                            {"path", keyring + "/L.chain.pem"},
                            {"warnings", nlohmann::json::array()}}));

  const ProcessResult shown =
      sks({"keys", "show-cert", "--label", "L", "--json", "--config", config_});
  ASSERT_EQ(shown.exit_code, 0) << shown.describe();
  const nlohmann::json info = nlohmann::json::parse(shown.out);
  EXPECT_EQ(info["spc"], "1234");
  EXPECT_EQ(info["subject"], "/C=US/O=Example/CN=SHAKEN 1234");
  EXPECT_EQ(info["chain_length"], 2);
  const ProcessResult serial = openssl({"x509", "-in", path("chain.pem"), "-serial", "-noout"});
  EXPECT_EQ(serial.out, "serial=" + info["serial"].get<std::string>() + "\n");
  const ProcessResult fingerprint =
      openssl({"x509", "-in", path("chain.pem"), "-fingerprint", "-sha256", "-noout"});
  EXPECT_TRUE(contains(fingerprint.out, info["sha256_fingerprint"].get<std::string>()))
      << fingerprint.out;
  const ProcessResult human = sks({"keys", "show-cert", "--label", "L", "--config", config_});
  EXPECT_TRUE(contains(human.out, "spc:         1234")) << human.describe();

  const std::string serial_hex = info["serial"].get<std::string>();
  const ProcessResult revoked = dev_ca({"revoke", "--serial", serial_hex});
  EXPECT_EQ(revoked.out, "revoked " + serial_hex + "\n") << revoked.describe();
  const ProcessResult crl_text = openssl({"crl", "-in", path("pki/crl.pem"), "-text", "-noout"});
  EXPECT_TRUE(contains(crl_text.out, "Serial Number: " + serial_hex)) << crl_text.out;
  const ProcessResult crl_ok =
      openssl({"crl", "-in", path("pki/crl.pem"), "-CAfile", path("pki/root.pem"), "-noout"});
  EXPECT_EQ(crl_ok.exit_code, 0) << crl_ok.describe();
  EXPECT_TRUE(contains(crl_ok.err + crl_ok.out, "verify OK")) << crl_ok.describe();

  const ProcessResult reissued = dev_ca({"crl"});
  EXPECT_EQ(reissued.out, path("pki/crl.pem") + "\n") << reissued.describe();
  const ProcessResult number = openssl({"crl", "-in", path("pki/crl.pem"), "-crlnumber", "-noout"});
  EXPECT_EQ(number.out, "crlNumber=0x03\n") << number.describe();
}

TEST_F(CliPkiTest, InstallCertRefusesAnotherKeysChainAndRecordsNothing) {
  csr_init_issue();
  for (const bool json : {false, true}) {
    std::vector<std::string> args = {"keys",    "install-cert",    "--label",  "M",
                                     "--chain", path("chain.pem"), "--config", config_};
    if (json) args.push_back("--json");
    const ProcessResult refused = sks(args);
    EXPECT_EQ(refused.exit_code, kExitDataErr) << refused.describe();
    EXPECT_EQ(refused.err, "sks: the chain's leaf key is not the key 'M' in the token\n");
    EXPECT_EQ(refused.out, "");
    EXPECT_FALSE(fs::exists(path("token/keyring/M.chain.pem")));
  }
}

TEST_F(CliPkiTest, InitIsIdempotentAndHonoursSksConfig) {
  const ProcessResult first =
      run_binary(STI_DEV_CA_BINARY, {"init", "--dir", path("pki")}, {{"SKS_CONFIG", config_}});
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  EXPECT_TRUE(contains(first.out, "created " + path("pki/root.pem"))) << first.out;
  const std::string root = read_file(path("pki/root.pem"));
  const std::string crl = read_file(path("pki/crl.pem"));
  const ProcessResult second = dev_ca({"init"});
  EXPECT_EQ(second.out, "kept " + path("pki/root.pem") + "\nkept " + path("pki/ca.pem") +
                            "\nkept " + path("pki/crl.pem") + "\n")
      << second.describe();
  EXPECT_EQ(read_file(path("pki/root.pem")), root);
  EXPECT_EQ(read_file(path("pki/crl.pem")), crl);
  // No private key anywhere in the state folder.
  for (const auto& entry : fs::directory_iterator(path("pki"))) {
    EXPECT_FALSE(contains(read_file(entry.path().string()), "PRIVATE KEY")) << entry.path();
  }
}

TEST_F(CliPkiTest, HelpSaysTestPkiAndErrorsExitWithTheirCodes) {
  const ProcessResult help = run_binary(STI_DEV_CA_BINARY, {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(contains(help.out, "TEST PKI, NOT FOR PRODUCTION")) << help.out;

  const ProcessResult no_init =
      dev_ca({"issue", "--csr", path("missing.pem"), "--out", path("chain.pem")});
  EXPECT_EQ(no_init.exit_code, kExitNoInput) << no_init.describe();
  EXPECT_FALSE(fs::exists(path("chain.pem")));

  const ProcessResult no_subject =
      sks({"keys", "csr", "--label", "L", "--spc", "1234", "--config", config_});
  EXPECT_EQ(no_subject.exit_code, kExitUsage) << no_subject.describe();
  const ProcessResult bad_spc =
      sks({"keys", "csr", "--label", "L", "--spc", "12-34", "--subject", "/C=US/O=Example", "--out",
           path("x.pem"), "--config", config_});
  EXPECT_EQ(bad_spc.exit_code, kExitDataErr) << bad_spc.describe();
  EXPECT_EQ(bad_spc.err, "sks: SPC '12-34' may hold only digits and uppercase letters\n");
  EXPECT_FALSE(fs::exists(path("x.pem")));
  const ProcessResult no_cert = sks({"keys", "show-cert", "--label", "L", "--config", config_});
  EXPECT_EQ(no_cert.exit_code, kExitNoInput) << no_cert.describe();
}

}  // namespace
}  // namespace stir::testing
