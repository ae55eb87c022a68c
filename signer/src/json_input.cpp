#include "stir/json_input.h"

#include <set>
#include <vector>

namespace stir {

using nlohmann::json;

std::string JsonInput::why() const {
  switch (problem) {
    case Problem::kNone:
      return {};
    case Problem::kSyntax:
      return "not valid JSON";
    case Problem::kTooDeep:
      return "nested deeper than " + std::to_string(max_depth) + " levels";
    case Problem::kDuplicate:
      return "member \"" + member + "\" appears more than once";
  }
  return "not valid JSON";
}

JsonInput parse_json_input(std::string_view text, std::size_t max_depth) {
  JsonInput out;
  out.max_depth = max_depth;
  // One pass: the parser's callback checks depth and member names as the
  // tree is built, and keeps nothing from the first problem on (a subtree
  // too deep is never built). The first problem is the one reported.
  std::vector<std::set<std::string>> members;  // of each open object
  using Event = json::parse_event_t;
  const auto check = [&](int depth, Event event, json& parsed) {
    if (out.problem != JsonInput::Problem::kNone) return false;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (static_cast<std::size_t>(depth) >= max_depth) {
          out.problem = JsonInput::Problem::kTooDeep;
          return false;
        }
        if (event == Event::object_start) members.emplace_back();
        return true;
      case Event::key: {
        auto& name = parsed.get_ref<std::string&>();
        if (!members.back().insert(name).second) {
          out.problem = JsonInput::Problem::kDuplicate;
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
  if (out.problem != JsonInput::Problem::kNone) {
    out.value = json(json::value_t::discarded);
  } else if (out.value.is_discarded()) {
    out.problem = JsonInput::Problem::kSyntax;
  }
  return out;
}

}  // namespace stir
