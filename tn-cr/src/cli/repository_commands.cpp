// tn-cr publish | unpublish | list.
#include <ctime>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "stir/error.h"
#include "stir/files.h"

namespace tn_cr::cli {
namespace {

struct RepositoryOptions {
  std::string chain;
  std::string name;
  bool json = false;
  bool yes = false;
};

// The chain file's text; "-" reads stdin. Anything over the size limit is
// refused before it is parsed.
std::string read_chain_file(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    text = stir::read_file(path, stir::ErrorCode::kNotFound, "cannot read chain file " + path);
  }
  if (text.size() > kMaxChainBytes) {
    throw stir::Error(stir::ErrorCode::kInvalidArgument,
                      path + " is larger than " + std::to_string(kMaxChainBytes) + " bytes");
  }
  return text;
}

std::string iso8601(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

void run_publish(const Context& context, const RepositoryOptions& o) {
  const Repository repository = open_repository(context);
  const auto outcome = repository.publish(o.name, read_chain_file(o.chain));
  std::cout << (outcome == PublishOutcome::kPublished ? "published " : "already published ")
            << o.name << "\n";
}

void run_unpublish(const Context& context, const RepositoryOptions& o) {
  if (!o.yes) {
    throw stir::Error(stir::ErrorCode::kInvalidArgument,
                      "unpublishing '" + o.name +
                          "' breaks every token whose x5u points at it; "
                          "add --yes to confirm");
  }
  open_repository(context).unpublish(o.name);
  std::cout << "unpublished " << o.name << "\n";
}

void run_list(const Context& context, const RepositoryOptions& o) {
  const auto chains = open_repository(context).list();
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : chains) {
      nlohmann::json item = {{"name", c.name},
                             {"size", c.size},
                             {"sha256", c.sha256},
                             {"mtime", iso8601(c.mtime)},
                             {"subject", c.subject},
                             {"not_after", c.not_after},
                             {"certificates", c.certificates}};
      item["spc"] = c.spc ? nlohmann::json(*c.spc) : nlohmann::json(nullptr);
      if (!c.error.empty()) item["error"] = c.error;
      out.push_back(std::move(item));
    }
    std::cout << out.dump() << "\n";
    return;
  }
  for (const auto& c : chains) {
    std::cout << c.name << "\t" << c.size << "\t" << c.sha256;
    if (c.error.empty()) {
      std::cout << "\tnotAfter=" << c.not_after << "\tspc=" << c.spc.value_or("-") << "\t"
                << c.subject << "\n";
    } else {
      std::cout << "\tINVALID: " << c.error << "\n";
    }
  }
}

}  // namespace

void add_repository_commands(CLI::App& app, Context& context) {
  auto options = std::make_shared<RepositoryOptions>();

  auto* publish = app.add_subcommand(
      "publish",
      "validate a PEM chain (end-entity first, each certificate issued by the next) and "
      "publish it under a new name; the same chain again is a no-op, other content under a "
      "published name is refused");
  publish->add_option("--chain", options->chain, "PEM chain file, or - for stdin")->required();
  publish->add_option("--name", options->name, "file name, the last segment of the x5u URL")
      ->required();
  add_repository_options(publish, context, true);
  publish->callback([&context, options] { run_publish(context, *options); });

  auto* unpublish = app.add_subcommand(
      "unpublish", "stop serving a chain (only once no valid token can still point at it)");
  unpublish->add_option("name", options->name, "published name")->required();
  unpublish->add_flag("--yes", options->yes, "confirm");
  add_repository_options(unpublish, context, true);
  unpublish->callback([&context, options] { run_unpublish(context, *options); });

  auto* list = app.add_subcommand("list", "list published chains");
  list->add_flag("--json", options->json, "one JSON array");
  add_repository_options(list, context, true);
  list->callback([&context, options] { run_list(context, *options); });
}

}  // namespace tn_cr::cli
