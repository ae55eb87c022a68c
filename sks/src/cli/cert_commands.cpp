// sks keys csr | install-cert | show-cert: certificates for token keys.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "sks/x509/csr.h"
#include "sks/x509/key_certificates.h"
#include "stir/error.h"
#include "stir/files.h"
#include "stir/openssl.h"

namespace sks::cli {
namespace {

struct CertOptions {
  std::string label;
  std::string spc;
  std::string subject;
  std::string out;
  std::string chain;
  bool replace = false;
  bool allow_no_spc = false;
  bool json = false;
};

void run_csr(const Context& context, const CertOptions& o) {
  // Checked before the token is opened: bad input changes nothing.
  const x509::CsrSubject subject = x509::parse_subject(o.subject);
  auto hsm = open_hsm(context);
  const stir::EvpPkeyPtr public_key = hsm->keys().public_key(o.label);
  const std::string pem =
      x509::make_csr(*hsm->keys().signing_key(o.label), public_key.get(), subject, o.spc);
  if (o.out.empty()) {
    std::cout << pem;
  } else {
    write_file_atomic(o.out, pem, 0644);
  }
}

void run_install_cert(const Context& context, const CertOptions& o) {
  const Config config = load_cli_config(context);
  const std::string chain = stir::read_file(o.chain);
  auto hsm = Hsm::open(config.token);
  const stir::EvpPkeyPtr public_key = hsm->keys().public_key(o.label);
  const x509::KeyCertificates store(config.certificates.dir);
  const x509::InstallResult result =
      store.install(o.label, public_key.get(), chain, {o.replace, o.allow_no_spc, 0});
  for (const auto& warning : result.warnings) std::cerr << "sks: warning: " << warning << "\n";
  if (o.json) {
    // For automation (Ansible's changed_when): "changed" is false only when
    // this chain was installed already and nothing was written.
    const char* outcome = result.outcome == x509::InstallOutcome::kInstalled   ? "installed"
                          : result.outcome == x509::InstallOutcome::kUnchanged ? "unchanged"
                                                                               : "replaced";
    nlohmann::json out = {{"label", o.label},
                          {"outcome", outcome},
                          {"changed", result.outcome != x509::InstallOutcome::kUnchanged},
                          {"path", result.path},
                          {"warnings", result.warnings}};
    if (!result.previous_path.empty()) out["previous_path"] = result.previous_path;
    std::cout << out.dump() << "\n";
    return;
  }
  switch (result.outcome) {
    case x509::InstallOutcome::kInstalled:
      std::cout << "installed " << result.path << "\n";
      break;
    case x509::InstallOutcome::kUnchanged:
      std::cout << "unchanged " << result.path << "\n";
      break;
    case x509::InstallOutcome::kReplaced:
      std::cout << "replaced " << result.path << " (previous chain kept as " << result.previous_path
                << ")\n";
      break;
  }
}

// Needs no token: the chain file is all there is to show.
void run_show_cert(const Context& context, const CertOptions& o) {
  const Config config = load_cli_config(context);
  const x509::CertificateInfo info = x509::KeyCertificates(config.certificates.dir).show(o.label);
  if (o.json) {
    nlohmann::json out = {{"label", info.label},
                          {"path", info.path},
                          {"subject", info.subject},
                          {"issuer", info.issuer},
                          {"spc", info.spc ? nlohmann::json(*info.spc) : nlohmann::json()},
                          {"not_before", info.not_before},
                          {"not_after", info.not_after},
                          {"serial", info.serial},
                          {"sha256_fingerprint", info.sha256_fingerprint},
                          {"chain_length", info.chain_length}};
    std::cout << out.dump() << "\n";
    return;
  }
  std::cout << "label:       " << info.label << "\n"
            << "chain:       " << info.path << " (" << info.chain_length << " certificates)\n"
            << "subject:     " << info.subject << "\n"
            << "issuer:      " << info.issuer << "\n"
            << "spc:         " << (info.spc ? *info.spc : "(none)") << "\n"
            << "not before:  " << info.not_before << "\n"
            << "not after:   " << info.not_after << "\n"
            << "serial:      " << info.serial << "\n"
            << "sha256:      " << info.sha256_fingerprint << "\n";
}

}  // namespace

void add_cert_commands(CLI::App& keys, Context& context) {
  auto o = std::make_shared<CertOptions>();

  auto* csr = keys.add_subcommand(
      "csr", "write a PKCS#10 CSR for a token key, signed in the token, with a TNAuthList SPC");
  add_config_option(csr, context);
  csr->add_option("--label", o->label, "key label")->required();
  csr->add_option("--spc", o->spc, "service provider code (digits and uppercase letters)")
      ->required();
  csr->add_option("--subject", o->subject,
                  "subject with C and O, e.g. '/C=US/O=Example'; CN defaults to 'SHAKEN <SPC>'")
      ->required();
  csr->add_option("--out", o->out, "write the CSR to this file instead of stdout");
  csr->callback([&context, o] { run_csr(context, *o); });

  auto* install = keys.add_subcommand(
      "install-cert",
      "check a certificate chain against a token key and record it in the certificate store");
  add_config_option(install, context);
  install->add_option("--label", o->label, "key label")->required();
  install->add_option("--chain", o->chain, "PEM chain, end-entity first")->required();
  install->add_flag("--replace", o->replace,
                    "renewal: replace a different installed chain (the old one is kept aside)");
  install->add_flag("--allow-no-spc", o->allow_no_spc,
                    "accept a leaf without TNAuthList SPC (warns; verifiers will reject it)");
  install->add_flag("--json", o->json,
                    "machine-readable output: label, outcome (installed, unchanged, replaced), "
                    "changed, path, warnings");
  install->callback([&context, o] { run_install_cert(context, *o); });

  auto* show = keys.add_subcommand("show-cert", "show the certificate installed for a key");
  add_config_option(show, context);
  show->add_option("--label", o->label, "key label")->required();
  show->add_flag("--json", o->json, "machine-readable output");
  show->callback([&context, o] { run_show_cert(context, *o); });
}

}  // namespace sks::cli
