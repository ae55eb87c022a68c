// sti-dev-ca: the development STI PKI on the command line.
// TEST PKI, NOT FOR PRODUCTION. See dev_pki/dev_ca.h.
#include <CLI/CLI.hpp>
#include <iostream>

#include "dev_pki/dev_ca.h"
#include "sks/config.h"
#include "sks/hsm.h"
#include "stir/error.h"
#include "stir/exit_codes.h"
#include "stir/files.h"

namespace {

constexpr const char* kBanner =
    "sti-dev-ca: a TEST STI PKI (STI-PA root, STI-CA, provider certificates, CRL)\n"
    "\n"
    "  ****************************************************************\n"
    "  *  TEST PKI, NOT FOR PRODUCTION. Certificates it issues are    *\n"
    "  *  trusted by nobody but your own tests. Real providers get    *\n"
    "  *  their certificate from an approved STI-CA.                  *\n"
    "  ****************************************************************\n"
    "\n"
    "The CA keys (dev-sti-pa-root, dev-sti-ca) live in the sks token; no private key is\n"
    "written to disk. The token is the one the sks config names.";

struct Options {
  std::string config;
  std::string dir;
  std::string crl_url;
  std::string csr;
  std::string out;
  std::string serial;
  int days = dev_pki::kDefaultLeafDays;
};

std::unique_ptr<sks::Hsm> open_hsm(const Options& o) {
  return sks::Hsm::open(sks::load_config(sks::resolve_config_path(o.config)).token);
}

void run_init(const Options& o) {
  auto hsm = open_hsm(o);
  dev_pki::DevCa ca(hsm->keys(), o.dir);
  const dev_pki::InitResult result = ca.init(o.crl_url);
  std::cout << (result.created_root ? "created " : "kept ") << ca.root_path() << "\n"
            << (result.created_ca ? "created " : "kept ") << ca.ca_path() << "\n"
            << (result.created_crl ? "created " : "kept ") << ca.crl_path() << "\n";
}

void run_issue(const Options& o) {
  const std::string csr = stir::read_file(o.csr);
  auto hsm = open_hsm(o);
  dev_pki::DevCa ca(hsm->keys(), o.dir);
  stir::write_file_atomic(o.out, ca.issue(csr, o.days), 0644);
  std::cout << o.out << "\n";
}

void run_revoke(const Options& o) {
  auto hsm = open_hsm(o);
  dev_pki::DevCa ca(hsm->keys(), o.dir);
  const dev_pki::RevokeResult result = ca.revoke(o.serial);
  std::cout << (result.already_revoked ? "already revoked " : "revoked ") << result.serial << "\n";
}

void run_crl(const Options& o) {
  auto hsm = open_hsm(o);
  dev_pki::DevCa ca(hsm->keys(), o.dir);
  ca.reissue_crl();
  std::cout << ca.crl_path() << "\n";
}

int run(int argc, char** argv) {
  CLI::App app{kBanner};
  app.require_subcommand(1);
  auto o = std::make_shared<Options>();
  auto common = [&o](CLI::App* command) {
    command->add_option("--config", o->config,
                        std::string("sks config naming the token (default: $SKS_CONFIG, else ") +
                            sks::kDefaultConfigPath + ")");
    command->add_option("--dir", o->dir, "state folder of the test PKI")->required();
  };

  auto* init = app.add_subcommand("init", "create (or check) the test root, STI-CA and CRL");
  common(init);
  init->add_option(
      "--crl-url", o->crl_url,
      std::string("CRL URL put in issued certificates (default ") + dev_pki::kDefaultCrlUrl + ")");
  init->callback([o] { run_init(*o); });

  auto* issue = app.add_subcommand("issue", "issue a provider certificate from a CSR");
  common(issue);
  issue->add_option("--csr", o->csr, "PEM CSR with TNAuthList SPC and CN 'SHAKEN <SPC>'")
      ->required();
  issue->add_option("--out", o->out, "write the PEM chain (leaf, then STI-CA) here")->required();
  issue->add_option("--days", o->days, "validity in days")->capture_default_str();
  issue->callback([o] { run_issue(*o); });

  auto* revoke = app.add_subcommand("revoke", "revoke a certificate and re-issue the CRL");
  common(revoke);
  revoke->add_option("--serial", o->serial, "serial number in hex")->required();
  revoke->callback([o] { run_revoke(*o); });

  auto* crl = app.add_subcommand("crl", "re-issue the CRL");
  common(crl);
  crl->callback([o] { run_crl(*o); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? stir::kExitOk : stir::kExitUsage;
  }
  return stir::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return stir::run_main("sti-dev-ca", [&] { return run(argc, argv); });
}
