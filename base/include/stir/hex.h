// Hex text of bytes: digests in logs and file names, key IDs, serials.
//
// Threads: no state; safe to call from any thread. Errors: none (only
// std::bad_alloc).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace stir {

enum class HexCase { kLower, kUpper };

// Two digits a byte, `separator` between bytes ("" by default):
// hex({0xAB, 0x01}) is "ab01"; hex(bytes, HexCase::kUpper, ":") is "AB:01".
std::string hex(std::span<const std::uint8_t> bytes, HexCase letters = HexCase::kLower,
                std::string_view separator = {});

}  // namespace stir
