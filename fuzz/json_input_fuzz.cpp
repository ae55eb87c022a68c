// stir::parse_json_input (its own tree builder over nlohmann's events)
// against the reader it replaced, nlohmann's callback parser with a set of
// member names per open object: for every input both give the same problem,
// the same repeated member, and for a document the same tree. The first
// input byte is the depth limit (1 to 64); the rest is the text.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "stir/json_input.h"

namespace {

using nlohmann::json;
using Problem = stir::JsonInput::Problem;

// The reference: parse_json_input as it was until 2026-12-07.
stir::JsonInput reference(std::string_view text, std::size_t max_depth) {
  stir::JsonInput out;
  out.max_depth = max_depth;
  std::vector<std::set<std::string>> members;
  using Event = json::parse_event_t;
  const auto check = [&](int depth, Event event, json& parsed) {
    if (out.problem != Problem::kNone) return false;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (static_cast<std::size_t>(depth) >= max_depth) {
          out.problem = Problem::kTooDeep;
          return false;
        }
        if (event == Event::object_start) members.emplace_back();
        return true;
      case Event::key: {
        auto& name = parsed.get_ref<std::string&>();
        if (!members.back().insert(name).second) {
          out.problem = Problem::kDuplicate;
          out.member = std::move(name);
          return false;
        }
        return true;
      }
      case Event::object_end:
        members.pop_back();
        return true;
      default:
        return true;
    }
  };
  out.value = json::parse(text, check, /*allow_exceptions=*/false, /*ignore_comments=*/false);
  if (out.problem != Problem::kNone) {
    out.value = json(json::value_t::discarded);
  } else if (out.value.is_discarded()) {
    out.problem = Problem::kSyntax;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t max_depth = 1 + data[0] % 64;
  const std::string_view text = stir::fuzz::as_text(data + 1, size - 1);
  const stir::JsonInput got = stir::parse_json_input(text, max_depth);
  const stir::JsonInput want = reference(text, max_depth);
  if (got.problem != want.problem)
    stir::fuzz::property_failed("another problem than the reference");
  if (got.member != want.member) stir::fuzz::property_failed("another repeated member");
  if (got.problem == Problem::kNone && got.value != want.value) {
    stir::fuzz::property_failed("another tree than the reference");
  }
  if (got.problem != Problem::kNone && !got.value.is_discarded()) {
    stir::fuzz::property_failed("a tree kept with a problem");
  }
  return 0;
}
