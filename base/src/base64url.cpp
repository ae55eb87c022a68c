#include "stir/base64url.h"

#include <array>

namespace stir {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::uint8_t kInvalid = 0xFF;

// Reverse lookup over all 256 byte values, so any input byte is a safe index.
constexpr std::array<std::uint8_t, 256> make_decode_table() {
  std::array<std::uint8_t, 256> table{};
  table.fill(kInvalid);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr std::array<std::uint8_t, 256> kDecode = make_decode_table();

}  // namespace

std::string base64url_encode(std::span<const std::uint8_t> bytes) {
  // Sized once and written by index: a push_back per character was not
  // inlined, and a PASSporT encodes about 420 of them (issue 20).
  const std::size_t whole = bytes.size() / 3;
  const std::size_t rest = bytes.size() % 3;
  std::string out(whole * 4 + (rest == 0 ? 0 : rest + 1), '\0');
  char* o = out.data();
  const std::uint8_t* in = bytes.data();
  for (std::size_t n = 0; n < whole; ++n, in += 3, o += 4) {
    const std::uint32_t v =
        (std::uint32_t{in[0]} << 16) | (std::uint32_t{in[1]} << 8) | std::uint32_t{in[2]};
    o[0] = kAlphabet[(v >> 18) & 0x3F];
    o[1] = kAlphabet[(v >> 12) & 0x3F];
    o[2] = kAlphabet[(v >> 6) & 0x3F];
    o[3] = kAlphabet[v & 0x3F];
  }
  if (rest != 0) {
    const std::uint32_t v =
        (std::uint32_t{in[0]} << 16) | (rest == 2 ? std::uint32_t{in[1]} << 8 : 0U);
    o[0] = kAlphabet[(v >> 18) & 0x3F];
    o[1] = kAlphabet[(v >> 12) & 0x3F];
    if (rest == 2) o[2] = kAlphabet[(v >> 6) & 0x3F];
  }
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  return base64url_encode(
      std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

bool is_base64url_alphabet(std::string_view text) noexcept {
  for (const char c : text) {
    if (kDecode[static_cast<unsigned char>(c)] == kInvalid) return false;
  }
  return true;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // 4n+1 characters would carry only 6 bits of a final byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int nbits = 0;
  for (const char c : text) {
    const std::uint8_t v = kDecode[static_cast<unsigned char>(c)];
    if (v == kInvalid) return std::nullopt;
    bits = (bits << 6) | v;
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out += static_cast<char>((bits >> nbits) & 0xFF);
    }
    bits &= (1u << nbits) - 1;
  }
  // Leftover bits must be zero, otherwise two spellings would decode alike.
  if (bits != 0) return std::nullopt;
  return out;
}

}  // namespace stir
