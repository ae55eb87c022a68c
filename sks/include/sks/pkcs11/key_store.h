// ES256 keys inside the token: generate, find, list, destroy, export the
// public half, and sign.
//
// Private keys are created sensitive and not extractable, so nothing
// outside the token can read them; this class never asks for CKA_VALUE.
// Keys are named by CKA_LABEL and tied together by a random CKA_ID shared
// by the private and the public object.
//
// Ownership: KeyStore borrows the SessionPool (and through it the Token).
// Threads: every member is safe to call concurrently. Handles are cached
// and looked up again by CKA_ID when the token says they are stale.
// Errors: stir::Error (kNotFound, kAlreadyExists, kInvalidArgument, kPkcs11).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sks/pkcs11/session_pool.h"
#include "sks/pkcs11/signature_check.h"
#include "stir/digest_signer.h"
#include "stir/openssl.h"

namespace sks::p11 {

// What the token says about one private key; holds no key material.
struct KeyInfo {
  std::string label;
  std::vector<std::uint8_t> id;  // CKA_ID
  std::string curve;             // "P-256", or the OID in hex when another curve
  bool sensitive = false;
  bool extractable = true;
  bool has_public_key = false;
};

class KeyStore;

// A private key in the token that signs SHA-256 digests (C_Sign with
// CKM_ECDSA; SoftHSM 2.6 has no CKM_ECDSA_SHA256). Obtained from
// KeyStore::signing_key(); resolve it once and keep it, never per request.
// sign_digest is safe from any number of threads: each call leases its own
// session. A lost session or a device fault gets a fresh session, a stale
// handle is looked up again, then the signature is tried once more;
// nothing is retried twice. A token found down (or failing the retry too)
// trips the pool's circuit breaker: stir::Error kUnavailable, and at once
// while the breaker stays open. Every signature is 64 bytes, and checked
// against the public key as SignatureCheck says; a refused signature's
// session is discarded and the signature made again (and checked) on a
// fresh session; kCrypto when that one is refused too.
class TokenKey final : public stir::DigestSigner {
 public:
  // `public_key` may be null (no public object in the token): no check then.
  TokenKey(SessionPool& pool, SignatureCheck& check, std::string label,
           std::vector<std::uint8_t> id, CK_OBJECT_HANDLE handle, stir::EvpPkeyPtr public_key);

  stir::Es256Signature sign_digest(const stir::Sha256Digest& digest) const override;

  const std::string& label() const noexcept { return label_; }
  const std::vector<std::uint8_t>& id() const noexcept { return id_; }

 private:
  friend class KeyStore;
  CK_OBJECT_HANDLE refresh_handle(CK_SESSION_HANDLE session) const;
  // Why `signature` may not leave (its session then discarded), or nullopt:
  // the length always, the public key as SignatureCheck says or `always`.
  std::optional<std::string> check_failure(SessionPool::Lease& lease,
                                           const stir::Sha256Digest& digest,
                                           const stir::Es256Signature& signature, CK_ULONG length,
                                           bool always) const;
  [[noreturn]] void token_down(SessionPool::Lease* lease, const std::string& why) const;

  SessionPool& pool_;
  SignatureCheck& check_;
  const std::string label_;
  const std::vector<std::uint8_t> id_;
  mutable std::atomic<CK_OBJECT_HANDLE> handle_;
  const stir::EvpPkeyPtr public_key_;
};

class KeyStore {
 public:
  explicit KeyStore(SessionPool& pool) : pool_(pool) {}

  SessionPool& pool() const noexcept { return pool_; }

  // Labels: 1-64 characters from [A-Za-z0-9._-], so they fit PKCS#11 URIs
  // and file names unchanged.
  static bool is_valid_label(std::string_view label);

  // Generates a P-256 key pair in the token (CKM_EC_KEY_PAIR_GEN).
  // Throws kAlreadyExists when a key with this label exists.
  KeyInfo generate(const std::string& label);
  std::optional<KeyInfo> find(const std::string& label);
  // The private key with this CKA_ID (as `keys list` shows it, in bytes).
  std::optional<KeyInfo> find_by_id(const std::vector<std::uint8_t>& id);
  std::vector<KeyInfo> list();
  // Destroys the private and public objects. Throws kNotFound.
  void destroy(const std::string& label);

  // SubjectPublicKeyInfo of the key, from the public object's CKA_EC_POINT
  // (DER OCTET STRING or bare point, both accepted). Throws kNotFound.
  std::vector<std::uint8_t> public_key_der(const std::string& label);
  std::string public_key_pem(const std::string& label);

  // The 65-byte uncompressed point from a CKA_EC_POINT value: a DER OCTET
  // STRING around it (PKCS#11 v2.40) or the bare point (some modules).
  // Throws kMalformed for anything else.
  static std::vector<std::uint8_t> ec_point_from_attribute(const std::vector<std::uint8_t>& value);

  // The signer for a key; cached, so repeated calls return the same object.
  std::shared_ptr<TokenKey> signing_key(const std::string& label);

  // How signatures are checked before they leave (signature_check.h).
  SignatureCheck& signature_check() noexcept { return check_; }

  // After Token::reconnect(), with SessionPool::exclusive() held: looks up
  // every cached signer's handle again by CKA_ID on `session` (a key no
  // longer in the token gets an invalid handle) and signs and verifies a
  // test digest with each. Throws stir::Error when one fails.
  void reconnected(CK_SESSION_HANDLE session);

 private:
  SessionPool& pool_;
  SignatureCheck check_;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, std::shared_ptr<TokenKey>> signers_;
};

}  // namespace sks::p11
