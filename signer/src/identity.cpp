#include "stir/identity.h"

#include "stir/base64url.h"

namespace stir {
namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

bool is_outer_space(char c) noexcept { return is_space(c) || c == '\r' || c == '\n'; }

// RFC 3261 token characters; parameter names and unquoted values use them.
bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '!':
    case '%':
    case '*':
    case '_':
    case '+':
    case '`':
    case '\'':
    case '~':
      return true;
    default:
      return false;
  }
}

// Unquoted values may also be hosts (IPv6 references, ':'), as RFC 3261 gen-value allows.
bool is_value_char(char c) noexcept { return is_token_char(c) || c == ':' || c == '[' || c == ']'; }

char to_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_outer_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_outer_space(s.back())) s.remove_suffix(1);
  return s;
}

// Reads the parameters after the token. `pos` is at a ';' or at the end.
class ParamParser {
 public:
  // `base` is where `text` starts in the whole value, for error offsets.
  ParamParser(std::string_view text, std::size_t base, IdentityHeader& out, IdentityParse& result)
      : text_(text), base_(base), out_(out), result_(result) {}

  bool parse() {
    while (pos_ < text_.size()) {
      if (text_[pos_] != ';') return fail("expected ';' before parameter");
      ++pos_;
      if (!parse_one()) return false;
    }
    return true;
  }

 private:
  bool fail(std::string message, bool info = false) {
    result_.error = std::move(message) + " at offset " + std::to_string(base_ + pos_);
    result_.info_error = info;
    return false;
  }

  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }

  bool parse_one() {
    skip_space();
    std::string name;
    while (pos_ < text_.size() && is_token_char(text_[pos_])) name += to_lower(text_[pos_++]);
    if (name.empty()) return fail("empty or invalid parameter name");
    skip_space();
    std::string value;
    bool has_value = false;
    bool quoted = false;
    if (pos_ < text_.size() && text_[pos_] == '=') {
      ++pos_;
      skip_space();
      has_value = true;
      if (!read_value(value, quoted, name == "info")) return false;
      skip_space();
    }
    if (pos_ < text_.size() && text_[pos_] != ';') {
      return fail("unexpected character after parameter '" + name + "'", name == "info");
    }
    return store(name, std::move(value), has_value, quoted);
  }

  bool read_value(std::string& value, bool& quoted, bool is_info) {
    if (pos_ >= text_.size()) return fail("missing value", is_info);
    const char first = text_[pos_];
    if (first == '"') {
      quoted = true;
      ++pos_;
      while (pos_ < text_.size() && text_[pos_] != '"') {
        if (text_[pos_] == '\\') {
          ++pos_;
          if (pos_ >= text_.size()) break;
        }
        value += text_[pos_++];
      }
      if (pos_ >= text_.size()) return fail("unterminated quoted value", is_info);
      ++pos_;
      return true;
    }
    if (first == '<') {
      const std::size_t close = text_.find('>', pos_);
      if (close == std::string_view::npos) return fail("unterminated '<'", is_info);
      value.assign(text_.substr(pos_, close - pos_ + 1));
      pos_ = close + 1;
      return true;
    }
    while (pos_ < text_.size() && is_value_char(text_[pos_])) value += text_[pos_++];
    if (value.empty()) return fail("missing value", is_info);
    return true;
  }

  bool store(const std::string& name, std::string value, bool has_value, bool quoted) {
    if (name == "info") {
      if (out_.info) return fail("repeated info parameter", true);
      if (!has_value || quoted || value.size() < 3 || value.front() != '<' || value.back() != '>') {
        return fail("info must be a non-empty <URI>", true);
      }
      const std::string_view uri = std::string_view(value).substr(1, value.size() - 2);
      for (const char c : uri) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F || c == '<' || c == '"') {
          return fail("info URI holds whitespace or a forbidden character", true);
        }
      }
      out_.info.emplace(uri);
      return true;
    }
    if (name == "alg" || name == "ppt") {
      std::optional<std::string>& slot = name == "alg" ? out_.alg : out_.ppt;
      if (slot) return fail("repeated " + name + " parameter");
      if (!has_value) return fail(name + " parameter without a value");
      slot.emplace(std::move(value));
      return true;
    }
    out_.other_params.emplace_back(name, std::move(value));
    return true;
  }

  std::string_view text_;
  std::size_t base_;
  IdentityHeader& out_;
  IdentityParse& result_;
  std::size_t pos_ = 0;
};

}  // namespace

bool split_compact_jws(std::string_view jws, IdentityHeader& out, std::string& error) {
  const std::size_t dot1 = jws.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : jws.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) {
    error = "token must have three '.'-separated segments";
    return false;
  }
  if (jws.find('.', dot2 + 1) != std::string_view::npos) {
    error = "token has more than three segments";
    return false;
  }
  const std::string_view header = jws.substr(0, dot1);
  const std::string_view payload = jws.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature = jws.substr(dot2 + 1);
  if (!is_base64url_alphabet(header) || !is_base64url_alphabet(payload) ||
      !is_base64url_alphabet(signature)) {
    error = "token segment holds a character outside base64url";
    return false;
  }
  if (signature.empty()) {
    error = "token signature segment is empty";
    return false;
  }
  if (header.empty() != payload.empty()) {
    error = header.empty() ? "token header segment is empty" : "token payload segment is empty";
    return false;
  }
  out.jws.assign(jws);
  out.header_b64.assign(header);
  out.payload_b64.assign(payload);
  out.signature_b64.assign(signature);
  out.compact_form = header.empty();
  return true;
}

IdentityParse parse_identity_header(std::string_view value) {
  IdentityParse result;
  if (value.size() > kMaxIdentityHeaderSize) {
    result.error =
        "Identity header value longer than " + std::to_string(kMaxIdentityHeaderSize) + " bytes";
    return result;
  }
  value = trim(value);
  if (value.empty()) {
    result.error = "empty Identity header value";
    return result;
  }
  const std::size_t semicolon = value.find(';');
  std::string_view token = value.substr(0, semicolon);
  while (!token.empty() && is_space(token.back())) token.remove_suffix(1);

  IdentityHeader header;
  if (!split_compact_jws(token, header, result.error)) return result;
  if (semicolon != std::string_view::npos) {
    ParamParser params(value.substr(semicolon), semicolon, header, result);
    if (!params.parse()) return result;
  }
  result.header = std::move(header);
  return result;
}

}  // namespace stir
