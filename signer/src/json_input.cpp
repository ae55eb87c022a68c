#include "stir/json_input.h"

#include <utility>
#include <vector>

namespace stir {

using nlohmann::json;

std::string JsonProblem::why() const {
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

namespace {

// Builds the tree from the parser's events, as nlohmann's own DOM builder
// does, and stops at the first problem: nesting deeper than the limit (the
// tree is never built that deep), or a member already in the object being
// built (looked up in that object: no second set of names). nlohmann's
// callback parser did the same checks through a std::function per event,
// with a set of names per open object; this builder takes about a third of
// the instructions less (bench/README.md, issue 20).
class TreeBuilder {
 public:
  TreeBuilder(JsonInput& out, std::size_t max_depth) : out_(out), max_depth_(max_depth) {}

  bool null() { return value(nullptr); }
  bool boolean(bool v) { return value(v); }
  bool number_integer(json::number_integer_t v) { return value(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return value(v); }
  bool string(json::string_t& v) { return value(std::move(v)); }
  bool binary(json::binary_t& v) { return value(std::move(v)); }

  bool start_object(std::size_t) { return open(json::value_t::object); }
  bool start_array(std::size_t) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& name) {
    auto& members = open_.back()->get_ref<json::object_t&>();
    // try_emplace leaves `name` alone when the member is there already.
    const auto [at, added] = members.try_emplace(std::move(name));
    if (!added) {
      out_.problem = JsonInput::Problem::kDuplicate;
      out_.member = std::move(name);
      return false;
    }
    member_ = &at->second;
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    if (out_.problem == JsonInput::Problem::kNone) out_.problem = JsonInput::Problem::kSyntax;
    return false;
  }

 private:
  // Places a value: the root, the next element of the open array, or the
  // member whose name came last.
  template <class V>
  json* place(V&& v) {
    if (open_.empty()) {
      out_.value = json(std::forward<V>(v));
      return &out_.value;
    }
    json& container = *open_.back();
    if (container.is_array()) {
      auto& elements = container.get_ref<json::array_t&>();
      elements.emplace_back(std::forward<V>(v));
      return &elements.back();
    }
    *member_ = json(std::forward<V>(v));
    return member_;
  }
  template <class V>
  bool value(V&& v) {
    place(std::forward<V>(v));
    return true;
  }
  bool open(json::value_t type) {
    // The outermost object or array is depth 1.
    if (open_.size() >= max_depth_) {
      out_.problem = JsonInput::Problem::kTooDeep;
      return false;
    }
    open_.push_back(place(type));
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  JsonInput& out_;
  const std::size_t max_depth_;
  std::vector<json*> open_;  // the objects and arrays not yet closed
  json* member_ = nullptr;   // where the value of the last key goes
};

}  // namespace

JsonInput parse_json_input(std::string_view text, std::size_t max_depth) {
  JsonInput out;
  out.max_depth = max_depth;
  TreeBuilder builder(out, max_depth);
  const bool parsed = json::sax_parse(text, &builder, json::input_format_t::json,
                                      /*strict=*/true, /*ignore_comments=*/false);
  if (!parsed && out.problem == JsonInput::Problem::kNone)
    out.problem = JsonInput::Problem::kSyntax;
  if (out.problem != JsonInput::Problem::kNone) out.value = json(json::value_t::discarded);
  return out;
}

}  // namespace stir
