#include "sks/pkcs11/key_store.h"

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>

#include "sks/pkcs11/attributes.h"
#include "stir/error.h"
#include "stir/hex.h"

namespace sks::p11 {

using stir::Error;
using stir::ErrorCode;

namespace {

// DER of the OID prime256v1 (1.2.840.10045.3.1.7), as CKA_EC_PARAMS wants it.
const std::vector<std::uint8_t> kP256Params = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                               0xCE, 0x3D, 0x03, 0x01, 0x07};
constexpr std::size_t kKeyIdBytes = 16;

std::vector<CK_OBJECT_HANDLE> find_objects(const Module& module, CK_SESSION_HANDLE session,
                                           AttributeTemplate& query) {
  CK_FUNCTION_LIST* api = module.api();
  check(module.call("C_FindObjectsInit",
                    [&] { return api->C_FindObjectsInit(session, query.data(), query.size()); }),
        "C_FindObjectsInit");
  std::vector<CK_OBJECT_HANDLE> found;
  std::array<CK_OBJECT_HANDLE, 64> batch{};
  CK_RV rv = CKR_OK;
  for (;;) {
    CK_ULONG count = 0;
    rv = module.call("C_FindObjects", [&] {
      return api->C_FindObjects(session, batch.data(), batch.size(), &count);
    });
    if (rv != CKR_OK || count == 0) break;
    found.insert(found.end(), batch.begin(), batch.begin() + count);
  }
  // Always end the search, or the session stays busy with it.
  const CK_RV final_rv =
      module.call("C_FindObjectsFinal", [&] { return api->C_FindObjectsFinal(session); });
  check(rv, "C_FindObjects");
  check(final_rv, "C_FindObjectsFinal");
  return found;
}

CK_RV get_attribute(const Module& module, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                    CK_ATTRIBUTE& attribute) {
  return module.call("C_GetAttributeValue", [&] {
    return module.api()->C_GetAttributeValue(session, object, &attribute, 1);
  });
}

std::vector<std::uint8_t> read_bytes(const Module& module, CK_SESSION_HANDLE session,
                                     CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type,
                                     std::string_view name) {
  CK_ATTRIBUTE attribute{type, nullptr, 0};
  check(get_attribute(module, session, object, attribute), "C_GetAttributeValue", name);
  std::vector<std::uint8_t> value(attribute.ulValueLen);
  attribute.pValue = value.data();
  check(get_attribute(module, session, object, attribute), "C_GetAttributeValue", name);
  value.resize(attribute.ulValueLen);
  return value;
}

bool read_bool(const Module& module, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
               CK_ATTRIBUTE_TYPE type, std::string_view name) {
  CK_BBOOL value = CK_FALSE;
  CK_ATTRIBUTE attribute{type, &value, sizeof value};
  check(get_attribute(module, session, object, attribute), "C_GetAttributeValue", name);
  return value == CK_TRUE;
}

std::vector<CK_OBJECT_HANDLE> find_by(const Module& module, CK_SESSION_HANDLE session,
                                      CK_OBJECT_CLASS object_class, CK_ATTRIBUTE_TYPE key_type,
                                      const std::vector<std::uint8_t>& key) {
  AttributeTemplate query;
  query.add_ulong(CKA_CLASS, object_class).add_bytes(key_type, key);
  return find_objects(module, session, query);
}

std::vector<std::uint8_t> as_bytes(std::string_view text) { return {text.begin(), text.end()}; }

// The unique private key with this label, or nothing.
std::optional<CK_OBJECT_HANDLE> find_private(const Module& module, CK_SESSION_HANDLE session,
                                             const std::string& label) {
  auto handles = find_by(module, session, CKO_PRIVATE_KEY, CKA_LABEL, as_bytes(label));
  if (handles.empty()) return std::nullopt;
  if (handles.size() > 1) {
    throw Error(ErrorCode::kInvalidArgument, "the token holds " + std::to_string(handles.size()) +
                                                 " private keys labelled '" + label +
                                                 "'; remove the extra ones by CKA_ID");
  }
  return handles.front();
}

KeyInfo describe_key(const Module& module, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
  KeyInfo info;
  const auto label = read_bytes(module, session, key, CKA_LABEL, "CKA_LABEL");
  info.label.assign(label.begin(), label.end());
  info.id = read_bytes(module, session, key, CKA_ID, "CKA_ID");
  info.sensitive = read_bool(module, session, key, CKA_SENSITIVE, "CKA_SENSITIVE");
  info.extractable = read_bool(module, session, key, CKA_EXTRACTABLE, "CKA_EXTRACTABLE");
  CK_KEY_TYPE key_type = 0;
  CK_ATTRIBUTE type_attribute{CKA_KEY_TYPE, &key_type, sizeof key_type};
  check(get_attribute(module, session, key, type_attribute), "C_GetAttributeValue", "CKA_KEY_TYPE");
  if (key_type == CKK_EC) {
    const auto params = read_bytes(module, session, key, CKA_EC_PARAMS, "CKA_EC_PARAMS");
    info.curve = params == kP256Params ? "P-256" : "EC " + stir::hex(params);
  } else {
    info.curve = "not EC (CKK " + std::to_string(key_type) + ")";
  }
  info.has_public_key = !find_by(module, session, CKO_PUBLIC_KEY, CKA_ID, info.id).empty();
  return info;
}

}  // namespace

std::vector<std::uint8_t> KeyStore::ec_point_from_attribute(
    const std::vector<std::uint8_t>& value) {
  constexpr std::size_t kPointSize = 65;  // 0x04 || X || Y on P-256
  if (value.size() == kPointSize && value[0] == 0x04) return value;
  const unsigned char* p = value.data();
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> octets(
      d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(value.size())), ASN1_OCTET_STRING_free);
  if (!octets || p != value.data() + value.size()) {
    throw Error(ErrorCode::kMalformed, "CKA_EC_POINT is neither DER nor a bare point");
  }
  std::vector<std::uint8_t> point(octets->data, octets->data + octets->length);
  if (point.size() != kPointSize || point[0] != 0x04) {
    throw Error(ErrorCode::kMalformed, "CKA_EC_POINT is not an uncompressed P-256 point");
  }
  return point;
}

bool KeyStore::is_valid_label(std::string_view label) {
  if (label.empty() || label.size() > 64) return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

namespace {
void require_valid_label(const std::string& label) {
  if (!KeyStore::is_valid_label(label)) {
    throw Error(ErrorCode::kInvalidArgument,
                "key label '" + label + "' is not 1-64 characters from A-Z a-z 0-9 . _ -");
  }
}
}  // namespace

KeyInfo KeyStore::generate(const std::string& label) {
  require_valid_label(label);
  auto lease = pool_.acquire();
  const Module& module = pool_.token().module();
  CK_FUNCTION_LIST* api = module.api();
  if (find_private(module, lease.handle(), label) ||
      !find_by(module, lease.handle(), CKO_PUBLIC_KEY, CKA_LABEL, as_bytes(label)).empty()) {
    throw Error(ErrorCode::kAlreadyExists, "a key labelled '" + label + "' already exists");
  }
  std::vector<std::uint8_t> id(kKeyIdBytes);
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) {
    throw Error(ErrorCode::kCrypto, "RAND_bytes failed while making a CKA_ID");
  }
  AttributeTemplate public_template;
  public_template.add_ulong(CKA_CLASS, CKO_PUBLIC_KEY)
      .add_ulong(CKA_KEY_TYPE, CKK_EC)
      .add_bool(CKA_TOKEN, true)
      .add_bool(CKA_PRIVATE, false)
      .add_bool(CKA_VERIFY, true)
      .add_bytes(CKA_EC_PARAMS, kP256Params)
      .add_string(CKA_LABEL, label)
      .add_bytes(CKA_ID, id);
  // PROTOCOL.md section 6. No CKA_START_DATE/CKA_END_DATE: SoftHSM cannot
  // read them back from private keys.
  AttributeTemplate private_template;
  private_template.add_ulong(CKA_CLASS, CKO_PRIVATE_KEY)
      .add_ulong(CKA_KEY_TYPE, CKK_EC)
      .add_bool(CKA_TOKEN, true)
      .add_bool(CKA_PRIVATE, true)
      .add_bool(CKA_SENSITIVE, true)
      .add_bool(CKA_EXTRACTABLE, false)
      .add_bool(CKA_SIGN, true)
      .add_bool(CKA_DERIVE, false)
      .add_string(CKA_LABEL, label)
      .add_bytes(CKA_ID, id);
  CK_MECHANISM mechanism{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
  check(module.call("C_GenerateKeyPair",
                    [&] {
                      return api->C_GenerateKeyPair(
                          lease.handle(), &mechanism, public_template.data(),
                          public_template.size(), private_template.data(), private_template.size(),
                          &public_key, &private_key);
                    }),
        "C_GenerateKeyPair", label);
  return describe_key(module, lease.handle(), private_key);
}

std::optional<KeyInfo> KeyStore::find(const std::string& label) {
  require_valid_label(label);
  auto lease = pool_.acquire();
  const Module& module = pool_.token().module();
  auto key = find_private(module, lease.handle(), label);
  if (!key) return std::nullopt;
  return describe_key(module, lease.handle(), *key);
}

std::optional<KeyInfo> KeyStore::find_by_id(const std::vector<std::uint8_t>& id) {
  auto lease = pool_.acquire();
  const Module& module = pool_.token().module();
  const auto handles = find_by(module, lease.handle(), CKO_PRIVATE_KEY, CKA_ID, id);
  if (handles.empty()) return std::nullopt;
  return describe_key(module, lease.handle(), handles.front());
}

std::vector<KeyInfo> KeyStore::list() {
  auto lease = pool_.acquire();
  const Module& module = pool_.token().module();
  AttributeTemplate query;
  query.add_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
  std::vector<KeyInfo> keys;
  for (CK_OBJECT_HANDLE key : find_objects(module, lease.handle(), query)) {
    keys.push_back(describe_key(module, lease.handle(), key));
  }
  std::sort(keys.begin(), keys.end(),
            [](const KeyInfo& a, const KeyInfo& b) { return a.label < b.label; });
  return keys;
}

void KeyStore::destroy(const std::string& label) {
  require_valid_label(label);
  auto lease = pool_.acquire();
  const Module& module = pool_.token().module();
  CK_FUNCTION_LIST* api = module.api();
  auto key = find_private(module, lease.handle(), label);
  if (!key) throw Error(ErrorCode::kNotFound, "no key labelled '" + label + "' in the token");
  const auto id = read_bytes(module, lease.handle(), *key, CKA_ID, "CKA_ID");
  const auto public_keys = find_by(module, lease.handle(), CKO_PUBLIC_KEY, CKA_ID, id);
  // Private first: once it is gone nothing can sign with this key again.
  check(module.call("C_DestroyObject", [&] { return api->C_DestroyObject(lease.handle(), *key); }),
        "C_DestroyObject", label);
  for (CK_OBJECT_HANDLE public_key : public_keys) {
    check(module.call("C_DestroyObject",
                      [&] { return api->C_DestroyObject(lease.handle(), public_key); }),
          "C_DestroyObject", label);
  }
  std::lock_guard lock(cache_mutex_);
  signers_.erase(label);
}

namespace {
// The P-256 public key with this uncompressed point.
stir::EvpPkeyPtr p256_public_key(const std::vector<std::uint8_t>& point, const std::string& label) {
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> builder(OSSL_PARAM_BLD_new(),
                                                                          OSSL_PARAM_BLD_free);
  char group[] = "prime256v1";
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    throw Error(ErrorCode::kCrypto, "cannot build EC public key parameters");
  }
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params_list(
      OSSL_PARAM_BLD_to_param(builder.get()), OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> context(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!params_list || !context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
      EVP_PKEY_fromdata(context.get(), &raw, EVP_PKEY_PUBLIC_KEY, params_list.get()) != 1) {
    throw Error(ErrorCode::kCrypto,
                "the token's CKA_EC_POINT for '" + label + "' is not a valid P-256 point");
  }
  return stir::EvpPkeyPtr(raw);
}
}  // namespace

stir::EvpPkeyPtr KeyStore::public_key(const std::string& label) {
  require_valid_label(label);
  std::vector<std::uint8_t> point;
  {
    auto lease = pool_.acquire();
    const Module& module = pool_.token().module();
    auto key = find_private(module, lease.handle(), label);
    if (!key) throw Error(ErrorCode::kNotFound, "no key labelled '" + label + "' in the token");
    const auto id = read_bytes(module, lease.handle(), *key, CKA_ID, "CKA_ID");
    const auto public_keys = find_by(module, lease.handle(), CKO_PUBLIC_KEY, CKA_ID, id);
    if (public_keys.empty()) {
      throw Error(ErrorCode::kNotFound,
                  "key '" + label + "' has no public key object in the token");
    }
    const auto params =
        read_bytes(module, lease.handle(), public_keys.front(), CKA_EC_PARAMS, "CKA_EC_PARAMS");
    if (params != kP256Params) {
      throw Error(ErrorCode::kInvalidArgument, "key '" + label + "' is not on P-256");
    }
    point = ec_point_from_attribute(
        read_bytes(module, lease.handle(), public_keys.front(), CKA_EC_POINT, "CKA_EC_POINT"));
  }
  return p256_public_key(point, label);
}

std::vector<std::uint8_t> KeyStore::public_key_der(const std::string& label) {
  const stir::EvpPkeyPtr pkey = public_key(label);
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(pkey.get(), &der);
  if (length <= 0) throw Error(ErrorCode::kCrypto, "cannot encode the public key");
  std::vector<std::uint8_t> spki(der, der + length);
  OPENSSL_free(der);
  return spki;
}

std::string KeyStore::public_key_pem(const std::string& label) {
  const stir::EvpPkeyPtr pkey = public_key(label);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
    throw Error(ErrorCode::kCrypto, "cannot write the public key as PEM");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::shared_ptr<TokenKey> KeyStore::signing_key(const std::string& label) {
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = signers_.find(label); it != signers_.end()) return it->second;
  }
  require_valid_label(label);
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  std::vector<std::uint8_t> id;
  {
    auto lease = pool_.acquire();
    const Module& module = pool_.token().module();
    auto key = find_private(module, lease.handle(), label);
    if (!key) throw Error(ErrorCode::kNotFound, "no key labelled '" + label + "' in the token");
    id = read_bytes(module, lease.handle(), *key, CKA_ID, "CKA_ID");
    handle = *key;
  }
  stir::EvpPkeyPtr public_half;  // read once here: the signature check and self-test use it
  try {
    public_half = public_key(label);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;  // no public object: nothing to check with
  }
  auto signer = std::make_shared<TokenKey>(pool_, check_, label, std::move(id), handle,
                                           std::move(public_half));
  std::lock_guard lock(cache_mutex_);
  return signers_.emplace(label, std::move(signer)).first->second;
}

namespace {

// One C_SignInit + C_Sign of `digest` with `key` on `session`; `function`
// names the call that failed.
CK_RV sign_once(const Module& module, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                const stir::Sha256Digest& digest, stir::Es256Signature& signature, CK_ULONG& length,
                const char*& function) {
  CK_FUNCTION_LIST* api = module.api();
  CK_MECHANISM mechanism{CKM_ECDSA, nullptr, 0};
  length = signature.size();
  function = "C_SignInit";
  const CK_RV rv =
      module.call("C_SignInit", [&] { return api->C_SignInit(session, &mechanism, key); });
  if (rv != CKR_OK) return rv;
  function = "C_Sign";
  return module.call("C_Sign", [&] {
    return api->C_Sign(session, const_cast<unsigned char*>(digest.data()), digest.size(),
                       signature.data(), &length);
  });
}

// Signs on a session the caller holds, once, no retry: what recovery's
// self-test signs with, the pool being held exclusively then.
class SessionSigner final : public stir::DigestSigner {
 public:
  SessionSigner(const Module& module, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
      : module_(module), session_(session), key_(key) {}

  stir::Es256Signature sign_digest(const stir::Sha256Digest& digest) const override {
    stir::Es256Signature signature{};
    CK_ULONG length = 0;
    const char* function = "C_SignInit";
    check(sign_once(module_, session_, key_, digest, signature, length, function), function);
    if (length != signature.size()) {
      throw Error(ErrorCode::kCrypto,
                  "C_Sign returned " + std::to_string(length) + " bytes, expected 64");
    }
    return signature;
  }

 private:
  const Module& module_;
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE key_;
};

}  // namespace

void self_test(const std::string& label, const stir::DigestSigner& signer, EVP_PKEY* public_key) {
  static const stir::Sha256Digest digest = stir::sha256("sks key self-test");
  stir::Es256Signature signature{};
  try {
    signature = signer.sign_digest(digest);
  } catch (const Error& e) {
    throw Error(e.code(), "key '" + label + "': " + e.what());
  }
  if (public_key != nullptr && !stir::verify_es256_digest(public_key, digest, signature)) {
    throw Error(ErrorCode::kCrypto, "key '" + label +
                                        "' signed a self-test that does not verify with its "
                                        "public key");
  }
}

void KeyStore::reconnected(CK_SESSION_HANDLE session) {
  std::lock_guard lock(cache_mutex_);
  const Module& module = pool_.token().module();
  for (const auto& [label, signer] : signers_) {
    const auto handles = find_by(module, session, CKO_PRIVATE_KEY, CKA_ID, signer->id_);
    // Never keep an old handle: after a reset it may name another object.
    signer->handle_.store(handles.empty() ? CK_INVALID_HANDLE : handles.front());
    if (handles.empty()) continue;
    self_test(label, SessionSigner(module, session, handles.front()), signer->public_key_.get());
  }
}

TokenKey::TokenKey(SessionPool& pool, SignatureCheck& check, std::string label,
                   std::vector<std::uint8_t> id, CK_OBJECT_HANDLE handle,
                   stir::EvpPkeyPtr public_key)
    : pool_(pool),
      check_(check),
      label_(std::move(label)),
      id_(std::move(id)),
      handle_(handle),
      public_key_(std::move(public_key)) {}

stir::EvpPkeyPtr TokenKey::public_key() const {
  if (!public_key_ || EVP_PKEY_up_ref(public_key_.get()) != 1) return nullptr;
  return stir::EvpPkeyPtr(public_key_.get());
}

CK_OBJECT_HANDLE TokenKey::refresh_handle(CK_SESSION_HANDLE session) const {
  auto handles = find_by(pool_.token().module(), session, CKO_PRIVATE_KEY, CKA_ID, id_);
  if (handles.empty()) {
    throw Error(ErrorCode::kNotFound, "key '" + label_ + "' is no longer in the token");
  }
  handle_.store(handles.front());
  return handles.front();
}

void TokenKey::token_down(SessionPool::Lease* lease, const std::string& why) const {
  if (lease != nullptr) lease->discard();
  pool_.breaker().trip(why);
  throw Error(ErrorCode::kUnavailable, "token unavailable: " + why);
}

namespace {
// A PKCS#11 failure that says the token (not this request) is broken.
bool is_token_failure(const Error& e) {
  const auto* failure = dynamic_cast<const Pkcs11Error*>(&e);
  return failure != nullptr && (is_token_down(failure->rv()) || is_device_fault(failure->rv()) ||
                                is_session_lost(failure->rv()));
}

// Runs `step`; a token failure it throws goes to `down` (which trips the
// breaker and throws), any other error passes unchanged.
template <typename Step, typename Down>
decltype(auto) unless_token_down(Step&& step, Down&& down) {
  try {
    return step();
  } catch (const Error& e) {
    if (is_token_failure(e)) down(std::string(e.what()));
    throw;
  }
}
}  // namespace

std::optional<std::string> TokenKey::check_failure(SessionPool::Lease& lease,
                                                   const stir::Sha256Digest& digest,
                                                   const stir::Es256Signature& signature,
                                                   CK_ULONG length, bool always) const {
  if (length != signature.size()) {
    lease.discard();
    check_.count_failure("length", label_);
    return "C_Sign returned " + std::to_string(length) + " bytes for key '" + label_ +
           "', expected 64";
  }
  if (public_key_ && (check_.should_check(lease.fresh()) || always)) {
    check_.count_checked();
    if (!stir::verify_es256_digest(public_key_.get(), digest, signature)) {
      lease.discard();
      check_.count_failure("verify", label_);
      return "the token's signature with key '" + label_ + "' does not verify with its public key";
    }
  }
  lease.mark_used();
  return std::nullopt;
}

SessionPool::Lease TokenKey::lease_session() const {
  const auto timeout = pool_.token().module().policy().timeout;
  auto lease = unless_token_down([&] { return pool_.try_acquire_for(timeout); },
                                 [&](const std::string& why) { token_down(nullptr, why); });
  if (!lease) {
    throw Error(ErrorCode::kUnavailable,
                "no token session came free within " + std::to_string(timeout.count()) + " ms");
  }
  return std::move(*lease);
}

void TokenKey::retry_refused(SessionPool::Lease& lease, const std::string& why, int attempt) const {
  if (attempt > 0) {
    throw Error(ErrorCode::kCrypto, why + " (again on a fresh session); session discarded");
  }
  // Once more on a fresh session: a faulty session or a transient device
  // fault must not cost the call (the bad signature never leaves).
  unless_token_down([&] { lease.replace(); },
                    [&](const std::string& down) { token_down(&lease, down); });
  check_.count_retry();
}

bool TokenKey::renew_for_retry(SessionPool::Lease& lease, CK_RV rv, CK_OBJECT_HANDLE& key) const {
  const bool renewed = unless_token_down(
      [&] {
        if (is_session_lost(rv) || is_device_fault(rv) || rv == CKR_OPERATION_ACTIVE) {
          // A previous user may have left an operation open: close it too.
          if (!is_session_lost(rv)) lease.discard();
          lease.replace();
        } else if (is_object_handle_stale(rv)) {
          key = refresh_handle(lease.handle());
        } else if (rv == CKR_USER_NOT_LOGGED_IN) {
          pool_.token().relogin();
        } else {
          return false;
        }
        return true;
      },
      [&](const std::string& why) { token_down(&lease, why); });
  if (renewed) pool_.breaker().count_retry();
  return renewed;
}

void TokenKey::retry_failed(SessionPool::Lease& lease, CK_RV rv, const char* function, int attempt,
                            CK_OBJECT_HANDLE& key) const {
  const std::string failure = std::string(function) + " " + ckr_name(rv);
  if (is_token_down(rv)) token_down(&lease, failure);
  if (attempt == 0) {
    // One retry, and only for causes that a fresh session, a fresh handle
    // or a fresh login can cure. A wrong PIN never gets here.
    if (renew_for_retry(lease, rv, key)) return;
  } else if (is_session_lost(rv) || is_device_fault(rv)) {
    token_down(&lease, failure + " again on a fresh session");
  }
  check(rv, function, label_);
}

stir::Es256Signature TokenKey::sign_digest(const stir::Sha256Digest& digest) const {
  CircuitBreaker& breaker = pool_.breaker();
  breaker.check();  // a dead token answers at once, nothing waits for it
  SessionPool::Lease lease = lease_session();
  // Tripped while this request waited for its session: the handles and
  // the login are trustworthy only once a reconnect has closed it again.
  breaker.check();
  const Module& module = pool_.token().module();
  CK_OBJECT_HANDLE key = handle_.load(std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    stir::Es256Signature signature{};
    CK_ULONG length = 0;
    const char* function = "C_SignInit";
    const CK_RV rv = sign_once(module, lease.handle(), key, digest, signature, length, function);
    if (rv != CKR_OK) {
      retry_failed(lease, rv, function, attempt, key);  // returns only to try again
      continue;
    }
    // A retry's signature is always checked: this token just misbehaved.
    const auto bad = check_failure(lease, digest, signature, length, attempt > 0);
    if (!bad) return signature;
    retry_refused(lease, *bad, attempt);  // returns only to try again
  }
}

}  // namespace sks::p11
