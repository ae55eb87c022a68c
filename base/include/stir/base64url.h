// BASE64URL as JWS uses it (RFC 7515 section 2): URL-safe alphabet, no padding.
//
// Pure functions on values: no shared state, safe from any thread. Encoding
// never fails. Decoding is strict so that one token has exactly one spelling:
// it refuses '=' padding, '+', '/', whitespace, any byte outside the
// alphabet, a length of 4n+1 and non-zero unused trailing bits, returning
// std::nullopt (never throwing, except std::bad_alloc) on any input.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace stir {

std::string base64url_encode(std::span<const std::uint8_t> bytes);
std::string base64url_encode(std::string_view bytes);

// The decoded bytes, or nullopt when `text` is not strict unpadded base64url.
std::optional<std::string> base64url_decode(std::string_view text);

// True when every byte of `text` is in the base64url alphabet (A-Z a-z 0-9 - _).
bool is_base64url_alphabet(std::string_view text) noexcept;

}  // namespace stir
