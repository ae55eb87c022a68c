#include "sks/pkcs11/attributes.h"

#include <cstring>

namespace sks::p11 {

AttributeTemplate& AttributeTemplate::add_raw(CK_ATTRIBUTE_TYPE type, const void* value,
                                              std::size_t length) {
  auto& bytes = storage_.emplace_back(length);
  if (length != 0) std::memcpy(bytes.data(), value, length);
  attributes_.push_back(CK_ATTRIBUTE{type, bytes.data(), static_cast<CK_ULONG>(length)});
  return *this;
}

AttributeTemplate& AttributeTemplate::add_bool(CK_ATTRIBUTE_TYPE type, bool value) {
  const CK_BBOOL b = value ? CK_TRUE : CK_FALSE;
  return add_raw(type, &b, sizeof b);
}

AttributeTemplate& AttributeTemplate::add_ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG value) {
  return add_raw(type, &value, sizeof value);
}

AttributeTemplate& AttributeTemplate::add_bytes(CK_ATTRIBUTE_TYPE type,
                                                const std::vector<std::uint8_t>& value) {
  return add_raw(type, value.data(), value.size());
}

AttributeTemplate& AttributeTemplate::add_string(CK_ATTRIBUTE_TYPE type, std::string_view value) {
  return add_raw(type, value.data(), value.size());
}

}  // namespace sks::p11
