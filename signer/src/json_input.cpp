#include "stir/json_input.h"

#include <set>
#include <vector>

namespace stir {
namespace {

using nlohmann::json;

// Counts depth and member names; stops the parse at the first problem.
class Checker final : public nlohmann::json_sax<json> {
 public:
  explicit Checker(std::size_t max_depth) : max_depth_(max_depth) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    if (!enter()) return false;
    objects_.emplace_back();
    open_.push_back(true);
    return true;
  }
  bool key(string_t& name) override {
    if (!objects_.back().insert(name).second) {
      problem = JsonInput::Problem::kDuplicate;
      member = name;
      return false;
    }
    return true;
  }
  bool end_object() override {
    objects_.pop_back();
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (!enter()) return false;
    open_.push_back(false);
    return true;
  }
  bool end_array() override {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    problem = JsonInput::Problem::kSyntax;
    return false;
  }

  JsonInput::Problem problem = JsonInput::Problem::kNone;
  std::string member;

 private:
  bool enter() {
    if (open_.size() >= max_depth_) {
      problem = JsonInput::Problem::kTooDeep;
      return false;
    }
    return true;
  }

  const std::size_t max_depth_;
  std::vector<bool> open_;  // true: an object
  std::vector<std::set<std::string>> objects_;
};

}  // namespace

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
  Checker checker(max_depth);
  const bool clean = json::sax_parse(text, &checker, json::input_format_t::json, /*strict=*/true,
                                     /*ignore_comments=*/false);
  if (!clean || checker.problem != JsonInput::Problem::kNone) {
    out.problem = checker.problem != JsonInput::Problem::kNone ? checker.problem
                                                               : JsonInput::Problem::kSyntax;
    out.member = std::move(checker.member);
    out.value = json(json::value_t::discarded);
    return out;
  }
  out.value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (out.value.is_discarded()) out.problem = JsonInput::Problem::kSyntax;
  return out;
}

}  // namespace stir
