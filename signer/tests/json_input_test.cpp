#include "stir/json_input.h"

#include <gtest/gtest.h>

#include <string>

namespace stir {
namespace {

using Problem = JsonInput::Problem;

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonInput, AcceptsADocumentAndKeepsItsTree) {
  const JsonInput in = parse_json_input(R"({"a":{"tn":["1","2"]},"b":[{"x":1},{"x":2}],"c":null})");
  ASSERT_EQ(in.problem, Problem::kNone);
  EXPECT_EQ(in.value["a"]["tn"][1], "2");
  EXPECT_EQ(in.value["b"][1]["x"], 2);  // the same name in sibling objects is no repeat
  EXPECT_TRUE(in.value["c"].is_null());
  EXPECT_EQ(in.why(), "");
}

TEST(JsonInput, RefusesARepeatedMemberAtAnyDepth) {
  for (const char* text :
       {R"({"a":1,"a":2})", R"({"x":{"a":1,"b":{},"a":2}})", R"([{"k":[{"a":1,"a":1}]}])"}) {
    const JsonInput in = parse_json_input(text);
    EXPECT_EQ(in.problem, Problem::kDuplicate) << text;
    EXPECT_EQ(in.member, "a") << text;
    EXPECT_TRUE(in.value.is_discarded()) << text;
    EXPECT_EQ(in.why(), R"(member "a" appears more than once)");
  }
}

TEST(JsonInput, RefusesNestingDeeperThanTheLimit) {
  EXPECT_EQ(parse_json_input(nested(32)).problem, Problem::kNone);
  const JsonInput in = parse_json_input(nested(33));
  EXPECT_EQ(in.problem, Problem::kTooDeep);
  EXPECT_EQ(in.why(), "nested deeper than 32 levels");
  EXPECT_EQ(parse_json_input(R"({"a":{"b":1}})", 2).problem, Problem::kNone);
  EXPECT_EQ(parse_json_input(R"({"a":{"b":{}}})", 2).problem, Problem::kTooDeep);
  // Far deeper than any stack would take: refused, not recursed into.
  EXPECT_EQ(parse_json_input(nested(100000)).problem, Problem::kTooDeep);
}

TEST(JsonInput, ReportsTheFirstProblem) {
  // A repeat before a syntax error, and a syntax error before a repeat.
  EXPECT_EQ(parse_json_input(R"({"a":1,"a":2,)").problem, Problem::kDuplicate);
  EXPECT_EQ(parse_json_input(R"({"a":1 "a":2})").problem, Problem::kSyntax);
  EXPECT_EQ(parse_json_input(R"({"a":1,"a":)" + nested(40) + "}").problem, Problem::kDuplicate);
  EXPECT_EQ(parse_json_input(R"({"b":)" + nested(40) + R"(,"b":1})").problem, Problem::kTooDeep);
}

TEST(JsonInput, RefusesWhatIsNotJson) {
  for (const char* text : {"", "{", "{\"a\":1} x", "{'a':1}", "/* c */ {}", "[1,]"}) {
    const JsonInput in = parse_json_input(text);
    EXPECT_EQ(in.problem, Problem::kSyntax) << text;
    EXPECT_EQ(in.why(), "not valid JSON");
  }
}

}  // namespace
}  // namespace stir
