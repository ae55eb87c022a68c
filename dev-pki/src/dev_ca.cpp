// TEST PKI, NOT FOR PRODUCTION. See dev_ca.h.
#include "dev_pki/dev_ca.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "sks/x509/csr.h"
#include "sks/x509/token_signing.h"
#include "stir/error.h"
#include "stir/files.h"
#include "stir/x509.h"

namespace dev_pki {
namespace {

namespace fs = std::filesystem;
using stir::Error;
using stir::ErrorCode;
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, stir::detail::OpenSslDeleter<T, Free>>;
using X509NamePtr = Owned<X509_NAME, X509_NAME_free>;
using X509ReqPtr = Owned<X509_REQ, X509_REQ_free>;
using X509CrlPtr = Owned<X509_CRL, X509_CRL_free>;
using X509RevokedPtr = Owned<X509_REVOKED, X509_REVOKED_free>;
using AsnIntegerPtr = Owned<ASN1_INTEGER, ASN1_INTEGER_free>;
using AsnObjectPtr = Owned<ASN1_OBJECT, ASN1_OBJECT_free>;
using AsnTimePtr = Owned<ASN1_TIME, ASN1_TIME_free>;
using AsnOctetStringPtr = Owned<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using BasicConstraintsPtr = Owned<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;
using AuthorityKeyIdPtr = Owned<AUTHORITY_KEYID, AUTHORITY_KEYID_free>;
using GeneralNamesPtr = Owned<GENERAL_NAMES, GENERAL_NAMES_free>;
using IssuingDistPointPtr = Owned<ISSUING_DIST_POINT, ISSUING_DIST_POINT_free>;
using X509ExtensionPtr = Owned<X509_EXTENSION, X509_EXTENSION_free>;

void free_extensions(STACK_OF(X509_EXTENSION) * extensions) {
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
}
using ExtensionsPtr = Owned<STACK_OF(X509_EXTENSION), free_extensions>;
void free_policies(CERTIFICATEPOLICIES* policies) { CERTIFICATEPOLICIES_free(policies); }
using PoliciesPtr = Owned<CERTIFICATEPOLICIES, free_policies>;
void free_dist_points(CRL_DIST_POINTS* points) { CRL_DIST_POINTS_free(points); }
using DistPointsPtr = Owned<CRL_DIST_POINTS, free_dist_points>;

constexpr std::int64_t kRootYears = 10;
constexpr std::int64_t kCaYears = 5;
constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kBackdate = 3600;  // tolerate clock skew between machines
constexpr std::int64_t kCrlDays = 7;

[[noreturn]] void crypto_failure(const std::string& what) {
  throw Error(ErrorCode::kCrypto, what + ": " + stir::openssl_error_string());
}

void check(int ok, const char* what) {
  if (ok <= 0) crypto_failure(what);
}

stir::X509Ptr read_certificate(const std::string& path) {
  const std::optional<std::string> pem = stir::read_file_if_exists(path);
  if (!pem) return nullptr;
  std::vector<stir::X509Ptr> chain = stir::parse_pem_chain(*pem);
  return std::move(chain.front());
}

std::string certificate_pem(const X509* certificate) {
  std::vector<stir::X509Ptr> one;
  one.emplace_back(X509_dup(const_cast<X509*>(certificate)));
  return stir::chain_to_pem(one);
}

X509NamePtr make_name(const std::string& country, const std::string& organization,
                      const std::string& common_name) {
  X509NamePtr name(X509_NAME_new());
  if (!name) crypto_failure("X509_NAME_new");
  for (const auto& [field, value] :
       {std::pair{"C", &country}, std::pair{"O", &organization}, std::pair{"CN", &common_name}}) {
    check(X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value->data()),
                                     static_cast<int>(value->size()), -1, 0),
          "X509_NAME_add_entry_by_txt");
  }
  return name;
}

std::string one_line(const X509_NAME* name) {
  char buffer[512];
  X509_NAME_oneline(name, buffer, sizeof buffer);
  return buffer;
}

std::string bn_hex(const BIGNUM* value) {
  char* text = BN_bn2hex(value);
  if (text == nullptr) crypto_failure("BN_bn2hex");
  std::string out = text;
  OPENSSL_free(text);
  return out;
}

std::string serial_hex(const X509* certificate) {
  stir::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr));
  if (!serial) crypto_failure("ASN1_INTEGER_to_BN");
  return bn_hex(serial.get());
}

// Normalises a hex serial ("0a:1B", "0A1b") to BN_bn2hex's upper case.
std::string normalise_serial(const std::string& text) {
  std::string digits;
  for (char c : text) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      throw Error(ErrorCode::kInvalidArgument, "serial '" + text + "' is not hexadecimal");
    }
    digits += c;
  }
  BIGNUM* value = nullptr;
  if (digits.empty() || BN_hex2bn(&value, digits.c_str()) == 0) {
    throw Error(ErrorCode::kInvalidArgument, "serial '" + text + "' is not hexadecimal");
  }
  stir::BignumPtr owned(value);
  return bn_hex(owned.get());
}

AsnIntegerPtr serial_integer(const std::string& hex) {
  BIGNUM* value = nullptr;
  if (BN_hex2bn(&value, hex.c_str()) == 0) crypto_failure("BN_hex2bn");
  stir::BignumPtr owned(value);
  AsnIntegerPtr integer(BN_to_ASN1_INTEGER(owned.get(), nullptr));
  if (!integer) crypto_failure("BN_to_ASN1_INTEGER");
  return integer;
}

// 126 random bits: ATIS-1000080 wants at least 64. The top byte is 01xxxxxx
// so the serial is positive and always 16 DER bytes long.
AsnIntegerPtr random_serial() {
  unsigned char bytes[16];
  check(RAND_bytes(bytes, sizeof bytes), "RAND_bytes");
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x3F) | 0x40);
  stir::BignumPtr value(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!value) crypto_failure("BN_bin2bn");
  AsnIntegerPtr integer(BN_to_ASN1_INTEGER(value.get(), nullptr));
  if (!integer) crypto_failure("BN_to_ASN1_INTEGER");
  return integer;
}

// Version 3, serial, names, validity and key; the caller adds extensions.
stir::X509Ptr new_certificate(const X509_NAME* subject, const X509_NAME* issuer,
                              const EVP_PKEY* key, std::time_t not_before, std::time_t not_after) {
  stir::X509Ptr certificate(X509_new());
  if (!certificate) crypto_failure("X509_new");
  AsnIntegerPtr serial = random_serial();
  check(X509_set_version(certificate.get(), X509_VERSION_3), "X509_set_version");
  check(X509_set_serialNumber(certificate.get(), serial.get()), "X509_set_serialNumber");
  check(X509_set_subject_name(certificate.get(), subject), "X509_set_subject_name");
  check(X509_set_issuer_name(certificate.get(), issuer), "X509_set_issuer_name");
  check(ASN1_TIME_set(X509_getm_notBefore(certificate.get()), not_before) != nullptr,
        "ASN1_TIME_set");
  check(ASN1_TIME_set(X509_getm_notAfter(certificate.get()), not_after) != nullptr,
        "ASN1_TIME_set");
  // X509_set_pubkey only reads the key (and takes a reference).
  check(X509_set_pubkey(certificate.get(), const_cast<EVP_PKEY*>(key)), "X509_set_pubkey");
  return certificate;
}

void add_basic_constraints(X509* certificate, bool ca, long path_length) {
  BasicConstraintsPtr constraints(BASIC_CONSTRAINTS_new());
  if (!constraints) crypto_failure("BASIC_CONSTRAINTS_new");
  constraints->ca = ca ? 0xFF : 0;
  if (ca && path_length >= 0) {
    constraints->pathlen = ASN1_INTEGER_new();
    check(constraints->pathlen != nullptr && ASN1_INTEGER_set(constraints->pathlen, path_length),
          "ASN1_INTEGER_set");
  }
  check(X509_add1_ext_i2d(certificate, NID_basic_constraints, constraints.get(), 1,
                          X509V3_ADD_DEFAULT),
        "basicConstraints");
}

void add_key_usage(X509* certificate, std::initializer_list<int> bits) {
  Owned<ASN1_BIT_STRING, ASN1_BIT_STRING_free> usage(ASN1_BIT_STRING_new());
  if (!usage) crypto_failure("ASN1_BIT_STRING_new");
  for (int bit : bits)
    check(ASN1_BIT_STRING_set_bit(usage.get(), bit, 1), "ASN1_BIT_STRING_set_bit");
  check(X509_add1_ext_i2d(certificate, NID_key_usage, usage.get(), 1, X509V3_ADD_DEFAULT),
        "keyUsage");
}

// RFC 5280 method 1: SHA-1 of the subjectPublicKey bits.
AsnOctetStringPtr key_identifier(const X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  check(X509_pubkey_digest(certificate, EVP_sha1(), digest, &size), "X509_pubkey_digest");
  AsnOctetStringPtr id(ASN1_OCTET_STRING_new());
  check(id != nullptr && ASN1_OCTET_STRING_set(id.get(), digest, static_cast<int>(size)),
        "ASN1_OCTET_STRING_set");
  return id;
}

void add_key_identifiers(X509* certificate, const ASN1_OCTET_STRING* issuer_key_id) {
  AsnOctetStringPtr subject_key_id = key_identifier(certificate);
  check(X509_add1_ext_i2d(certificate, NID_subject_key_identifier, subject_key_id.get(), 0,
                          X509V3_ADD_DEFAULT),
        "subjectKeyIdentifier");
  AuthorityKeyIdPtr authority(AUTHORITY_KEYID_new());
  if (!authority) crypto_failure("AUTHORITY_KEYID_new");
  authority->keyid =
      ASN1_OCTET_STRING_dup(issuer_key_id != nullptr ? issuer_key_id : subject_key_id.get());
  check(authority->keyid != nullptr && X509_add1_ext_i2d(certificate, NID_authority_key_identifier,
                                                         authority.get(), 0, X509V3_ADD_DEFAULT),
        "authorityKeyIdentifier");
}

GENERAL_NAMES* directory_names(const X509_NAME* name) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  GENERAL_NAME* entry = GENERAL_NAME_new();
  X509_NAME* copy = X509_NAME_dup(name);
  if (!names || entry == nullptr || copy == nullptr) {
    GENERAL_NAME_free(entry);
    X509_NAME_free(copy);
    crypto_failure("GENERAL_NAME_new");
  }
  GENERAL_NAME_set0_value(entry, GEN_DIRNAME, copy);
  if (sk_GENERAL_NAME_push(names.get(), entry) <= 0) {
    GENERAL_NAME_free(entry);
    crypto_failure("sk_GENERAL_NAME_push");
  }
  return names.release();
}

DIST_POINT_NAME* url_point_name(const std::string& url) {
  Owned<DIST_POINT_NAME, DIST_POINT_NAME_free> point(DIST_POINT_NAME_new());
  GENERAL_NAME* entry = GENERAL_NAME_new();
  ASN1_IA5STRING* text = ASN1_IA5STRING_new();
  if (!point || entry == nullptr || text == nullptr ||
      ASN1_STRING_set(text, url.data(), static_cast<int>(url.size())) != 1) {
    GENERAL_NAME_free(entry);
    ASN1_IA5STRING_free(text);
    crypto_failure("DIST_POINT_NAME_new");
  }
  GENERAL_NAME_set0_value(entry, GEN_URI, text);
  point->type = 0;  // fullName
  point->name.fullname = GENERAL_NAMES_new();
  if (point->name.fullname == nullptr || sk_GENERAL_NAME_push(point->name.fullname, entry) <= 0) {
    GENERAL_NAME_free(entry);
    crypto_failure("sk_GENERAL_NAME_push");
  }
  return point.release();
}

// A new element made by `make` and pushed onto a stack made just before
// (`stack_made`); the stack owns it from then on. On any failure the element,
// not owned yet, is freed and the failing call reported.
template <typename Element, typename Push>
Element* push_new(bool stack_made, Element* (*make)(), void (*free_element)(Element*), Push push,
                  const char* make_name, const char* push_name) {
  Element* element = make();
  if (!stack_made || element == nullptr) {
    free_element(element);
    crypto_failure(make_name);
  }
  if (push(element) <= 0) {
    free_element(element);
    crypto_failure(push_name);
  }
  return element;
}

// One distribution point: the CRL URL, with cRLIssuer naming the root.
void add_crl_distribution_point(X509* certificate, const std::string& url,
                                const X509_NAME* crl_issuer) {
  DistPointsPtr points(sk_DIST_POINT_new_null());
  DIST_POINT* point = push_new(
      points != nullptr, DIST_POINT_new, DIST_POINT_free,
      [&](DIST_POINT* p) { return sk_DIST_POINT_push(points.get(), p); }, "DIST_POINT_new",
      "sk_DIST_POINT_push");
  point->distpoint = url_point_name(url);
  point->CRLissuer = directory_names(crl_issuer);
  check(X509_add1_ext_i2d(certificate, NID_crl_distribution_points, points.get(), 0,
                          X509V3_ADD_DEFAULT),
        "crlDistributionPoints");
}

void add_policy(X509* certificate, const char* oid) {
  PoliciesPtr policies(sk_POLICYINFO_new_null());
  POLICYINFO* info = push_new(
      policies != nullptr, POLICYINFO_new, POLICYINFO_free,
      [&](POLICYINFO* p) { return sk_POLICYINFO_push(policies.get(), p); }, "POLICYINFO_new",
      "sk_POLICYINFO_push");
  ASN1_OBJECT_free(info->policyid);
  info->policyid = OBJ_txt2obj(oid, 1);
  check(info->policyid != nullptr && X509_add1_ext_i2d(certificate, NID_certificate_policies,
                                                       policies.get(), 0, X509V3_ADD_DEFAULT),
        "certificatePolicies");
}

void add_tn_auth_list(X509* certificate, const std::string& spc) {
  const std::vector<std::uint8_t> der = stir::tn_auth_list_der(spc);
  AsnObjectPtr oid(OBJ_txt2obj(sks::x509::kTnAuthListOid, 1));
  AsnOctetStringPtr value(ASN1_OCTET_STRING_new());
  check(
      oid && value && ASN1_OCTET_STRING_set(value.get(), der.data(), static_cast<int>(der.size())),
      "TNAuthList");
  X509ExtensionPtr extension(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, value.get()));
  check(extension && X509_add_ext(certificate, extension.get(), -1), "TNAuthList");
}

// The SPC of a CSR's requested TNAuthList. The project's TNAuthList parser
// reads certificates, so the extension is looked at inside a scratch one.
std::string csr_spc(X509_REQ* request) {
  ExtensionsPtr extensions(X509_REQ_get_extensions(request));
  AsnObjectPtr oid(OBJ_txt2obj(sks::x509::kTnAuthListOid, 1));
  const int index = extensions ? X509v3_get_ext_by_OBJ(extensions.get(), oid.get(), -1) : -1;
  if (index < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "the CSR requests no TNAuthList (OID 1.3.6.1.5.5.7.1.26); a SHAKEN certificate "
                "needs the SPC");
  }
  X509_EXTENSION* extension = X509v3_get_ext(extensions.get(), index);
  stir::X509Ptr scratch(X509_new());
  check(scratch && X509_add_ext(scratch.get(), extension, -1), "X509_add_ext");
  const std::optional<std::string> spc = stir::tn_auth_list_spc(scratch.get());
  if (!spc) throw Error(ErrorCode::kInvalidArgument, "the CSR's TNAuthList holds no SPC");
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(extension);
  std::vector<std::uint8_t> expected;
  try {
    expected = stir::tn_auth_list_der(*spc);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument, std::string("the CSR's ") + e.what());
  }
  if (static_cast<std::size_t>(ASN1_STRING_length(data)) != expected.size() ||
      std::memcmp(ASN1_STRING_get0_data(data), expected.data(), expected.size()) != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "the CSR's TNAuthList must hold exactly one SPC and no TNs or ranges");
  }
  return *spc;
}

// C, O and CN of the CSR's subject, each exactly once and nothing else.
X509NamePtr csr_subject(X509_REQ* request, const std::string& spc) {
  const X509_NAME* name = X509_REQ_get_subject_name(request);
  std::string values[3];
  constexpr int kNids[3] = {NID_countryName, NID_organizationName, NID_commonName};
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    const int slot = nid == kNids[0] ? 0 : nid == kNids[1] ? 1 : nid == kNids[2] ? 2 : -1;
    if (slot < 0 || !values[slot].empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the CSR's subject '" + one_line(name) +
                      "' must hold exactly one C, one O and one CN and nothing else");
    }
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (length < 0) crypto_failure("ASN1_STRING_to_UTF8");
    values[slot].assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
  }
  if (values[0].empty() || values[1].empty() || values[2].empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the CSR's subject '" + one_line(name) + "' must hold C, O and CN");
  }
  if (values[2] != sks::x509::shaken_common_name(spc)) {
    throw Error(ErrorCode::kInvalidArgument, "the CSR's CN '" + values[2] + "' is not '" +
                                                 sks::x509::shaken_common_name(spc) +
                                                 "' (its TNAuthList SPC is " + spc + ")");
  }
  return make_name(values[0], values[1], values[2]);
}

}  // namespace

DevCa::DevCa(sks::p11::KeyStore& keys, std::string dir)
    : keys_(keys), dir_(fs::absolute(dir).lexically_normal().string()) {}

bool DevCa::load_state() {
  const std::optional<std::string> text = stir::read_file_if_exists(state_path());
  if (!text) return false;
  try {
    const nlohmann::json json = nlohmann::json::parse(*text);
    state_ = State{};
    state_.crl_url = json.at("crl_url").get<std::string>();
    state_.crl_number = json.at("crl_number").get<std::int64_t>();
    for (const auto& entry : json.at("issued")) {
      state_.issued.push_back({entry.at("serial").get<std::string>(),
                               entry.at("subject").get<std::string>(),
                               entry.at("not_after").get<std::string>()});
    }
    for (const auto& entry : json.at("revoked")) {
      state_.revoked.push_back({entry.at("serial").get<std::string>(),
                                entry.at("by_root").get<bool>(),
                                entry.at("time").get<std::int64_t>()});
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kMalformed, state_path() + " does not parse: " + e.what());
  }
  return true;
}

void DevCa::save_state() const {
  nlohmann::json json = {{"warning", "TEST PKI, NOT FOR PRODUCTION"},
                         {"crl_url", state_.crl_url},
                         {"crl_number", state_.crl_number},
                         {"issued", nlohmann::json::array()},
                         {"revoked", nlohmann::json::array()}};
  for (const auto& entry : state_.issued) {
    json["issued"].push_back(
        {{"serial", entry.serial}, {"subject", entry.subject}, {"not_after", entry.not_after}});
  }
  for (const auto& entry : state_.revoked) {
    json["revoked"].push_back(
        {{"serial", entry.serial}, {"by_root", entry.by_root}, {"time", entry.time}});
  }
  stir::write_file_atomic(state_path(), json.dump(2) + "\n", 0644);
}

void DevCa::require_init() {
  if (!load_state() || !(root_ = read_certificate(root_path())) ||
      !(ca_ = read_certificate(ca_path()))) {
    throw Error(ErrorCode::kNotFound,
                "no test PKI in " + dir_ + "; run `sti-dev-ca init --dir " + dir_ + "` first");
  }
}

stir::EvpPkeyPtr DevCa::ca_public_key(const char* label, bool generate) {
  if (generate && !keys_.find(label)) keys_.generate(label);
  return stir::load_public_key_pem(keys_.public_key_pem(label));
}

InitResult DevCa::init(const std::string& crl_url) {
  InitResult result;
  stir::ensure_directory(dir_, 0755);
  if (load_state()) {
    if (!crl_url.empty() && crl_url != state_.crl_url) {
      throw Error(ErrorCode::kAlreadyExists, "the test PKI in " + dir_ + " has CRL URL " +
                                                 state_.crl_url + ", not " + crl_url +
                                                 "; use another --dir");
    }
  } else {
    state_ = State{};
    state_.crl_url = crl_url.empty() ? kDefaultCrlUrl : crl_url;
    save_state();
  }

  const stir::EvpPkeyPtr root_key = ca_public_key(kRootKeyLabel, true);
  const stir::EvpPkeyPtr ca_key = ca_public_key(kCaKeyLabel, true);
  const std::time_t now = std::time(nullptr);

  root_ = read_certificate(root_path());
  if (root_ && !stir::same_public_key(X509_get0_pubkey(root_.get()), root_key.get())) {
    throw Error(ErrorCode::kAlreadyExists, root_path() + " is not for the token key '" +
                                               kRootKeyLabel +
                                               "' (was the token re-created?); use another --dir");
  }
  if (!root_) {
    X509NamePtr name = make_name("US", "STI-PA Test (NOT FOR PRODUCTION)", "STI-PA Test Root");
    root_ = new_certificate(name.get(), name.get(), root_key.get(), now - kBackdate,
                            now + kRootYears * 365 * kDay);
    add_basic_constraints(root_.get(), true, -1);
    add_key_usage(root_.get(), {5, 6});  // keyCertSign, cRLSign
    add_key_identifiers(root_.get(), nullptr);
    sks::x509::sign_certificate(root_.get(), *keys_.signing_key(kRootKeyLabel), root_key.get());
    stir::write_file_atomic(root_path(), certificate_pem(root_.get()), 0644);
    result.created_root = true;
  }

  ca_ = read_certificate(ca_path());
  if (ca_) {
    if (!stir::same_public_key(X509_get0_pubkey(ca_.get()), ca_key.get())) {
      throw Error(ErrorCode::kAlreadyExists,
                  ca_path() + " is not for the token key '" + kCaKeyLabel +
                      "' (was the token re-created?); use another --dir");
    }
    std::vector<stir::X509Ptr> chain;
    chain.emplace_back(X509_dup(ca_.get()));
    chain.emplace_back(X509_dup(root_.get()));
    stir::check_chain_links(chain);
  } else {
    X509NamePtr name = make_name("US", "STI-CA Test (NOT FOR PRODUCTION)", "STI-CA Test");
    ca_ = new_certificate(name.get(), X509_get_subject_name(root_.get()), ca_key.get(),
                          now - kBackdate, now + kCaYears * 365 * kDay);
    add_basic_constraints(ca_.get(), true, 0);
    add_key_usage(ca_.get(), {5, 6});
    add_key_identifiers(ca_.get(), X509_get0_subject_key_id(root_.get()));
    sks::x509::sign_certificate(ca_.get(), *keys_.signing_key(kRootKeyLabel), root_key.get());
    stir::write_file_atomic(ca_path(), certificate_pem(ca_.get()), 0644);
    result.created_ca = true;
  }

  if (!fs::exists(crl_path())) {
    write_crl();
    result.created_crl = true;
  }
  return result;
}

std::string DevCa::issue(const std::string& csr_pem, int days) {
  require_init();
  stir::BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  X509ReqPtr request(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!request) {
    throw Error(ErrorCode::kMalformed,
                "not a PEM certificate request: " + stir::openssl_error_string());
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(request.get());
  if (!stir::is_p256_key(key)) {
    throw Error(ErrorCode::kInvalidArgument, "the CSR's key is not an EC P-256 key");
  }
  if (X509_REQ_verify(request.get(), key) != 1) {
    ERR_clear_error();
    throw Error(ErrorCode::kInvalidArgument, "the CSR's signature does not verify");
  }
  const std::string spc = csr_spc(request.get());
  X509NamePtr subject = csr_subject(request.get(), spc);

  const std::time_t now = std::time(nullptr);
  const std::time_t not_after = now + static_cast<std::time_t>(days) * kDay;
  if (days < 1 || ASN1_TIME_cmp_time_t(X509_get0_notAfter(ca_.get()), not_after) < 0) {
    throw Error(ErrorCode::kInvalidArgument, "--days " + std::to_string(days) +
                                                 " must be at least 1 and end before the "
                                                 "STI-CA certificate does (" +
                                                 stir::iso_time(X509_get0_notAfter(ca_.get())) +
                                                 ")");
  }

  // Exactly the ATIS-1000080 extensions, in this order, and no others.
  stir::X509Ptr leaf = new_certificate(subject.get(), X509_get_subject_name(ca_.get()), key,
                                       now - kBackdate, not_after);
  add_basic_constraints(leaf.get(), false, -1);
  add_key_usage(leaf.get(), {0});  // digitalSignature
  add_key_identifiers(leaf.get(), X509_get0_subject_key_id(ca_.get()));
  add_policy(leaf.get(), kShakenPolicyOid);
  add_crl_distribution_point(leaf.get(), state_.crl_url, X509_get_subject_name(root_.get()));
  add_tn_auth_list(leaf.get(), spc);
  const stir::EvpPkeyPtr ca_key = ca_public_key(kCaKeyLabel, false);
  sks::x509::sign_certificate(leaf.get(), *keys_.signing_key(kCaKeyLabel), ca_key.get());

  state_.issued.push_back({serial_hex(leaf.get()), one_line(subject.get()),
                           stir::iso_time(X509_get0_notAfter(leaf.get()))});
  save_state();
  std::vector<stir::X509Ptr> chain;
  chain.push_back(std::move(leaf));
  chain.emplace_back(X509_dup(ca_.get()));
  return stir::chain_to_pem(chain);
}

RevokeResult DevCa::revoke(const std::string& serial_hex_text) {
  require_init();
  RevokeResult result;
  result.serial = normalise_serial(serial_hex_text);
  for (const auto& entry : state_.revoked) {
    if (entry.serial == result.serial) {
      result.already_revoked = true;
      return result;
    }
  }
  bool by_root = result.serial == serial_hex(ca_.get());
  bool known = by_root;
  for (const auto& entry : state_.issued) known = known || entry.serial == result.serial;
  if (!known) {
    throw Error(ErrorCode::kNotFound,
                "serial " + result.serial + " was not issued by the test PKI in " + dir_);
  }
  state_.revoked.push_back({result.serial, by_root, static_cast<std::int64_t>(std::time(nullptr))});
  write_crl();
  return result;
}

std::string DevCa::reissue_crl() {
  require_init();
  return write_crl();
}

std::string DevCa::write_crl() {
  const std::time_t now = std::time(nullptr);
  X509CrlPtr crl(X509_CRL_new());
  if (!crl) crypto_failure("X509_CRL_new");
  check(X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2), "X509_CRL_set_version");
  check(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(root_.get())),
        "X509_CRL_set_issuer_name");
  AsnTimePtr this_update(ASN1_TIME_set(nullptr, now));
  AsnTimePtr next_update(ASN1_TIME_set(nullptr, now + kCrlDays * kDay));
  check(this_update && next_update && X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) &&
            X509_CRL_set1_nextUpdate(crl.get(), next_update.get()),
        "CRL dates");

  for (const auto& entry : state_.revoked) {
    X509RevokedPtr revoked(X509_REVOKED_new());
    AsnIntegerPtr serial = serial_integer(entry.serial);
    AsnTimePtr date(ASN1_TIME_set(nullptr, static_cast<std::time_t>(entry.time)));
    // Indirect CRL: every entry names the issuer of the revoked certificate.
    GeneralNamesPtr issuer(
        directory_names(X509_get_subject_name(entry.by_root ? root_.get() : ca_.get())));
    check(revoked && date && X509_REVOKED_set_serialNumber(revoked.get(), serial.get()) &&
              X509_REVOKED_set_revocationDate(revoked.get(), date.get()) &&
              X509_REVOKED_add1_ext_i2d(revoked.get(), NID_certificate_issuer, issuer.get(), 1,
                                        X509V3_ADD_DEFAULT),
          "CRL entry");
    check(X509_CRL_add0_revoked(crl.get(), revoked.get()), "X509_CRL_add0_revoked");
    revoked.release();  // owned by the CRL now
  }
  check(X509_CRL_sort(crl.get()), "X509_CRL_sort");

  AuthorityKeyIdPtr authority(AUTHORITY_KEYID_new());
  check(authority != nullptr &&
            (authority->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(root_.get()))) &&
            X509_CRL_add1_ext_i2d(crl.get(), NID_authority_key_identifier, authority.get(), 0,
                                  X509V3_ADD_DEFAULT),
        "CRL authorityKeyIdentifier");
  ++state_.crl_number;
  AsnIntegerPtr number(ASN1_INTEGER_new());
  check(number && ASN1_INTEGER_set_int64(number.get(), state_.crl_number) &&
            X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, X509V3_ADD_DEFAULT),
        "CRL number");
  IssuingDistPointPtr idp(ISSUING_DIST_POINT_new());
  if (!idp) crypto_failure("ISSUING_DIST_POINT_new");
  idp->distpoint = url_point_name(state_.crl_url);
  idp->indirectCRL = 0xFF;
  check(X509_CRL_add1_ext_i2d(crl.get(), NID_issuing_distribution_point, idp.get(), 1,
                              X509V3_ADD_DEFAULT),
        "CRL issuingDistributionPoint");

  const stir::EvpPkeyPtr root_key = ca_public_key(kRootKeyLabel, false);
  sks::x509::sign_crl(crl.get(), *keys_.signing_key(kRootKeyLabel), root_key.get());

  stir::BioPtr pem(BIO_new(BIO_s_mem()));
  check(pem && PEM_write_bio_X509_CRL(pem.get(), crl.get()), "PEM_write_bio_X509_CRL");
  char* data = nullptr;
  const long size = BIO_get_mem_data(pem.get(), &data);
  const std::string pem_text(data, static_cast<std::size_t>(size));
  unsigned char* der = nullptr;
  const int der_size = i2d_X509_CRL(crl.get(), &der);
  if (der_size <= 0) crypto_failure("i2d_X509_CRL");
  const std::string der_text(reinterpret_cast<char*>(der), static_cast<std::size_t>(der_size));
  OPENSSL_free(der);

  // State first: a crash between the writes re-issues with a higher number.
  save_state();
  stir::write_file_atomic(crl_der_path(), der_text, 0644);
  stir::write_file_atomic(crl_path(), pem_text, 0644);
  return pem_text;
}

}  // namespace dev_pki
