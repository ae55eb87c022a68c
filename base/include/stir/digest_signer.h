// "Sign these 32 bytes": the only way the PASSporT code reaches a key.
//
// The signer library never touches a key itself. The production
// implementation signs inside a PKCS#11 token (sks/); unit tests use a
// software key. Implementations state their own thread-safety; the one in
// sks/ is safe to call from any number of threads.
#pragma once

#include <array>
#include <cstdint>

namespace stir {

using Sha256Digest = std::array<std::uint8_t, 32>;
// ES256 signature as JWS wants it: raw r||s, each left-padded to 32 bytes.
using Es256Signature = std::array<std::uint8_t, 64>;

class DigestSigner {
 public:
  virtual ~DigestSigner() = default;
  // Throws stir::Error on failure; never returns a partial signature.
  virtual Es256Signature sign_digest(const Sha256Digest& digest) const = 0;
};

}  // namespace stir
