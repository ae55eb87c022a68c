// The PASSporT's canonical JSON as written directly (canonical_header_json,
// canonical_claims_json) against the tree it stands for, dumped by
// nlohmann (canonical_json(header_to_json()), canonical_json(
// claims_to_json())): for every header and claims both give the same
// bytes, or both refuse with the same words (a string that is not UTF-8).
// The input: bytes 0-7 the iat (little-endian), then the fields separated
// by '\n' (alg, ppt, typ, x5u, attest, orig tn, orig uri, dest tns, dest
// uris, origid), the entries of the two dest lists by '\t'.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "stir/passport.h"

namespace {

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// The text written, or the refusal prefixed with "!".
template <class F>
std::string written(F&& write) {
  try {
    return write();
  } catch (const stir::Error& e) {
    return std::string("!") + e.what();
  }
}

void expect_same(const std::string& got, const std::string& want, const char* what) {
  if (got == want) return;
  std::fprintf(stderr, "written:   %s\ntree dump: %s\n", got.c_str(), want.c_str());
  stir::fuzz::property_failed(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::int64_t iat = 0;
  std::memcpy(&iat, data, sizeof iat);
  std::vector<std::string> fields = split(stir::fuzz::as_text(data + 8, size - 8), '\n');
  fields.resize(10);
  stir::PassportHeader header;
  header.alg = fields[0];
  header.ppt = fields[1];
  header.typ = fields[2];
  header.x5u = fields[3];
  stir::ShakenClaims claims;
  claims.attest = fields[4];
  claims.orig_tn = fields[5];
  claims.orig_uri = fields[6];
  if (!fields[7].empty()) claims.dest_tn = split(fields[7], '\t');
  if (!fields[8].empty()) claims.dest_uri = split(fields[8], '\t');
  claims.origid = fields[9];
  claims.iat = iat;

  expect_same(written([&] { return stir::canonical_header_json(header); }),
              written([&] { return stir::canonical_json(stir::header_to_json(header)); }),
              "the header written otherwise than its tree");
  expect_same(written([&] { return stir::canonical_claims_json(claims); }),
              written([&] { return stir::canonical_json(stir::claims_to_json(claims)); }),
              "the claims written otherwise than their tree");
  return 0;
}
