// sks keys generate | list | public | destroy.
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli_support.h"
#include "stir/error.h"
#include "stir/files.h"
#include "stir/hex.h"

namespace sks::cli {
namespace {

nlohmann::json key_json(const p11::KeyInfo& key) {
  return {{"label", key.label},
          {"id", stir::hex(key.id)},
          {"curve", key.curve},
          {"sensitive", key.sensitive},
          {"extractable", key.extractable},
          {"public_key", key.has_public_key}};
}

struct KeyOptions {
  std::string label;
  std::string out;
  bool json = false;
  bool if_missing = false;
  bool yes = false;
};

void run_generate(const Context& context, const KeyOptions& o) {
  auto hsm = open_hsm(context);
  std::optional<p11::KeyInfo> key;
  bool created = false;
  if (o.if_missing) key = hsm->keys().find(o.label);
  if (!key) {
    key = hsm->keys().generate(o.label);
    created = true;
  }
  if (o.json) {
    auto out = key_json(*key);
    out["created"] = created;
    std::cout << out.dump() << "\n";
  } else {
    std::cout << (created ? "generated " : "exists ") << key->label << " id=" << stir::hex(key->id)
              << " " << key->curve << "\n";
  }
}

void run_list(const Context& context, const KeyOptions& o) {
  auto hsm = open_hsm(context);
  const auto keys = hsm->keys().list();
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& key : keys) out.push_back(key_json(key));
    std::cout << out.dump() << "\n";
    return;
  }
  for (const auto& key : keys) {
    std::cout << key.label << "\tid=" << stir::hex(key.id) << "\t" << key.curve
              << (key.sensitive ? "\tsensitive" : "\tNOT-SENSITIVE")
              << (key.extractable ? "\tEXTRACTABLE" : "\tnot-extractable")
              << (key.has_public_key ? "\tpublic-key" : "\tno-public-key") << "\n";
  }
}

void run_public(const Context& context, const KeyOptions& o) {
  auto hsm = open_hsm(context);
  const std::string pem = hsm->keys().public_key_pem(o.label);
  if (o.out.empty()) {
    std::cout << pem;
  } else {
    write_file_atomic(o.out, pem, 0644);
  }
}

void run_destroy(const Context& context, const KeyOptions& o) {
  if (!o.yes) {
    throw stir::Error(stir::ErrorCode::kInvalidArgument,
                      "destroying key '" + o.label + "' cannot be undone; add --yes to confirm");
  }
  auto hsm = open_hsm(context);
  hsm->keys().destroy(o.label);
  std::cout << "destroyed " << o.label << "\n";
}

}  // namespace

void add_key_commands(CLI::App& keys, Context& context) {
  auto o = std::make_shared<KeyOptions>();

  auto* generate = keys.add_subcommand("generate", "generate a P-256 key pair in the token");
  add_config_option(generate, context);
  generate->add_option("--label", o->label, "key label (CKA_LABEL)")->required();
  generate->add_flag("--if-missing", o->if_missing, "succeed without change if the key exists");
  generate->add_flag("--json", o->json, "machine-readable output");
  generate->callback([&context, o] { run_generate(context, *o); });

  auto* list = keys.add_subcommand("list", "list the private keys in the token");
  add_config_option(list, context);
  list->add_flag("--json", o->json, "machine-readable output");
  list->callback([&context, o] { run_list(context, *o); });

  auto* pub = keys.add_subcommand("public", "print a key's public half as PEM");
  add_config_option(pub, context);
  pub->add_option("--label", o->label, "key label")->required();
  pub->add_option("--out", o->out, "write to this file instead of stdout");
  pub->callback([&context, o] { run_public(context, *o); });

  auto* destroy = keys.add_subcommand("destroy", "destroy a key pair in the token");
  add_config_option(destroy, context);
  destroy->add_option("--label", o->label, "key label")->required();
  destroy->add_flag("--yes", o->yes, "confirm: this cannot be undone");
  destroy->callback([&context, o] { run_destroy(context, *o); });
}

}  // namespace sks::cli
