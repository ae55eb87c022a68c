// A PKCS#11 attribute template that owns the memory its CK_ATTRIBUTE
// entries point into, so call sites never juggle raw arrays and lifetimes.
//
// Not thread-safe; build one per call. Values are copied on add.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "sks/pkcs11/pkcs11.h"

namespace sks::p11 {

class AttributeTemplate {
 public:
  AttributeTemplate() = default;
  // Copying would leave the copy's pointers aimed at the original's storage.
  AttributeTemplate(const AttributeTemplate&) = delete;
  AttributeTemplate& operator=(const AttributeTemplate&) = delete;

  AttributeTemplate& add_bool(CK_ATTRIBUTE_TYPE type, bool value);
  AttributeTemplate& add_ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG value);
  AttributeTemplate& add_bytes(CK_ATTRIBUTE_TYPE type, const std::vector<std::uint8_t>& value);
  AttributeTemplate& add_string(CK_ATTRIBUTE_TYPE type, std::string_view value);

  CK_ATTRIBUTE* data() noexcept { return attributes_.data(); }
  CK_ULONG size() const noexcept { return attributes_.size(); }

 private:
  AttributeTemplate& add_raw(CK_ATTRIBUTE_TYPE type, const void* value, std::size_t length);

  // A deque keeps element addresses stable as values are added.
  std::deque<std::vector<std::uint8_t>> storage_;
  std::vector<CK_ATTRIBUTE> attributes_;
};

}  // namespace sks::p11
