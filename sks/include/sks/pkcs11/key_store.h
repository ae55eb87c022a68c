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
  // The public half, read from the token once when the key was resolved
  // (KeyStore::signing_key); a new reference to it, null when the token
  // holds no public object.
  stir::EvpPkeyPtr public_key() const;

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
  // The steps of sign_digest. A session within the policy's timeout:
  SessionPool::Lease lease_session() const;
  // After a signature check_failure refused (`why`), or a failed C_SignInit
  // or C_Sign (`rv` from `function`): return when the signature is to be
  // made once more (on a fresh session, with a fresh handle in `key`, after
  // a fresh login), throw otherwise.
  void retry_refused(SessionPool::Lease& lease, const std::string& why, int attempt) const;
  void retry_failed(SessionPool::Lease& lease, CK_RV rv, const char* function, int attempt,
                    CK_OBJECT_HANDLE& key) const;
  // Renews what `rv` says is broken (counted as a retry); false when no
  // renewal cures it.
  bool renew_for_retry(SessionPool::Lease& lease, CK_RV rv, CK_OBJECT_HANDLE& key) const;

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

  // The key's public half, from the public object's CKA_EC_POINT (DER
  // OCTET STRING or bare point, both accepted): the one place a public key
  // is read from the token. Throws kNotFound (no such key, or no public
  // object), kInvalidArgument (not P-256), kCrypto (not a valid point).
  stir::EvpPkeyPtr public_key(const std::string& label);
  // The same as SubjectPublicKeyInfo (DER) and as PEM.
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
  // longer in the token gets an invalid handle) and runs self_test() (below)
  // on each, signing on `session`. Throws stir::Error when one fails.
  void reconnected(CK_SESSION_HANDLE session);

 private:
  SessionPool& pool_;
  SignatureCheck check_;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, std::shared_ptr<TokenKey>> signers_;
};

// The one key self-test, run by every path that needs one: start-up and
// GET /readyz (ApiServer::readiness), reload (KeyRing::self_test) and the
// token's recovery (KeyStore::reconnected). Signs a fixed test digest with
// `signer` and verifies the signature with `public_key`; when that is null
// (no public object in the token) only the signer's own checks apply.
// Threads: as safe as `signer` (a TokenKey: any number of threads).
// Errors: stir::Error kCrypto "key '<label>' signed a self-test that does
// not verify with its public key"; a failure of the signer as
// "key '<label>': <its message>", with its code (a token found down has
// tripped the breaker, as for any signature).
void self_test(const std::string& label, const stir::DigestSigner& signer, EVP_PKEY* public_key);

}  // namespace sks::p11
