// End-to-end tests of the `sks` command line, run as a real process against a
// fresh SoftHSM2 token made by `sks init` in every test. They prove that:
//  - init is idempotent and the newcomer path (init, generate, list, public,
//    sign, verify) works with the documented output;
//  - the Identity headers it signs are accepted by independent peers
//    (secsipidx, and the openssl command line on a DER copy of the signature)
//    and carry byte-exact canonical JSON;
//  - `sks verify` reports the right SIP code for each kind of bad token;
//  - bad input, PIN and config errors exit with the exit_codes.h value, say
//    why on stderr, and change nothing;
//  - no private key material and no PIN ever leaves the token or PIN file.
// Nothing here uses the project's own verification code.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "process.h"
#include "test_files.h"

namespace stir::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Exit codes from sks/src/cli/exit_codes.h.
constexpr int kExitOk = 0;
constexpr int kExitInvalidToken = 1;
constexpr int kExitUsage = 64;
constexpr int kExitDataErr = 65;
constexpr int kExitNoInput = 66;
constexpr int kExitCantCreate = 73;
constexpr int kExitNoPerm = 77;
constexpr int kExitConfig = 78;

constexpr const char* kSecsipidx = "/usr/bin/secsipidx";
constexpr const char* kLabel = "L";
constexpr const char* kX5u = "https://cr.example.net/L.pem";
constexpr const char* kOrig = "12155550121";
constexpr const char* kDests = "12155550131,12155550132";
constexpr const char* kOrigid = "123e4567-e89b-12d3-a456-426655440000";
constexpr const char* kIdentityParams = ";info=<https://cr.example.net/L.pem>;alg=ES256;ppt=shaken";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// RFC 4648 section 5 without padding; nullopt on any other character or a
// length no encoder produces. Written here so no project code is trusted.
std::optional<std::string> base64url_decode(const std::string& text) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const std::size_t value = kAlphabet.find(c);
    if (value == std::string_view::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

// The three base64url segments of an Identity header value.
struct Segments {
  std::string header, payload, signature;
};

Segments split_identity(const std::string& identity) {
  const std::string jws = identity.substr(0, identity.find(';'));
  const std::size_t first = jws.find('.');
  const std::size_t second = jws.find('.', first + 1);
  if (first == std::string::npos || second == std::string::npos) {
    throw std::runtime_error("not a compact JWS: " + identity);
  }
  return {jws.substr(0, first), jws.substr(first + 1, second - first - 1), jws.substr(second + 1)};
}

// Changes one character in the middle of the signature segment to another
// base64url character, so the token still parses but its r||s differ.
std::string tamper_signature(const std::string& identity) {
  const Segments s = split_identity(identity);
  std::string tampered = identity;
  const std::size_t at = s.header.size() + 1 + s.payload.size() + 1 + 10;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  return tampered;
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error("'" + from + "' not in " + text);
  return text.replace(at, from.size(), to);
}

// Raw ES256 r||s (64 bytes) to the DER ECDSA-Sig-Value that openssl dgst reads.
std::string raw_signature_to_der(const std::string& raw) {
  if (raw.size() != 64) throw std::runtime_error("signature is not 64 bytes");
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    throw std::runtime_error("ECDSA_SIG_set0 failed");
  }
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0) throw std::runtime_error("i2d_ECDSA_SIG failed");
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

// The curve name OpenSSL gives the public key in a PEM text, or "" if none.
std::string pem_public_key_group(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), -1), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  char name[64] = {};
  if (!key || EVP_PKEY_get_group_name(key.get(), name, sizeof name, nullptr) != 1) return "";
  return name;
}

// Throws with the whole transcript when a set-up step did not succeed.
ProcessResult must(ProcessResult result, const std::string& what) {
  if (result.exit_code != 0) throw std::runtime_error(what + " failed: " + result.describe());
  return result;
}

class CliTest : public ::testing::Test {
 protected:
  // Runs the built sks. SKS_CONFIG and SOFTHSM2_CONF are removed unless the
  // test sets them, so only the config a test names is used. Every result is
  // kept for the scans of the no-secrets test.
  ProcessResult sks(const std::vector<std::string>& args, const EnvChanges& env = {}) {
    EnvChanges changes{{"SKS_CONFIG", std::nullopt}, {"SOFTHSM2_CONF", std::nullopt}};
    for (const auto& [name, value] : env) changes[name] = value;
    std::vector<std::string> argv{STIR_SKS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult result = run(argv, changes);
    transcript_.push_back(result);
    return result;
  }

  // `sks init --dir D`; returns the config path it prints.
  std::string init() {
    const ProcessResult result = must(sks({"init", "--dir", dir_}), "sks init");
    config_ = result.out.substr(0, result.out.find('\n'));
    return config_;
  }

  // `sks ... --config CONFIG` with the config made by init().
  ProcessResult sks_with_config(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back(config_);
    return sks(args);
  }

  ProcessResult sign(const std::string& label, const std::string& attest,
                     const std::string& dests = kDests) {
    return sks_with_config({"sign", "--label", label, "--x5u", kX5u, "--orig", kOrig, "--dest",
                            dests, "--attest", attest, "--origid", kOrigid, "--iat",
                            std::to_string(iat_)});
  }

  // The usual start: a token with key L, its public key in pub.pem and one
  // Identity header (attest B, two dests) signed with it.
  void init_generate_sign() {
    init();
    must(sks_with_config({"keys", "generate", "--label", kLabel}), "keys generate");
    must(sks_with_config({"keys", "public", "--label", kLabel, "--out", pub_pem_}), "keys public");
    const ProcessResult signed_result = must(sign(kLabel, "B"), "sign");
    identity_ = signed_result.out.substr(0, signed_result.out.find('\n'));
  }

  std::string keys_list_json() {
    return must(sks_with_config({"keys", "list", "--json"}), "list").out;
  }

  ProcessResult verify(const std::string& identity, const std::string& public_key,
                       std::optional<std::int64_t> time) {
    std::vector<std::string> args{"verify", "--identity", identity, "--public-key", public_key};
    if (time) {
      args.push_back("--time");
      args.push_back(std::to_string(*time));
    }
    return sks(args);
  }

  ProcessResult secsipidx_check(const std::string& identity) {
    return run({kSecsipidx, "-c", "-fpubkey", pub_pem_, "-identity", identity, "-expire", "60"});
  }

  std::string path(const std::string& name) const { return temp_.path() + "/" + name; }

  TempDir temp_;
  const std::string dir_ = temp_.path() + "/d";
  const std::string pub_pem_ = temp_.path() + "/pub.pem";
  const std::int64_t iat_ = static_cast<std::int64_t>(std::time(nullptr));
  std::string config_;
  std::string identity_;
  std::vector<ProcessResult> transcript_;
};

// ---- 1. init is idempotent --------------------------------------------------

TEST_F(CliTest, InitTwiceChangesNothing) {
  const std::vector<std::string> files{"sks.toml", "user.pin", "so.pin", "softhsm2.conf"};
  const ProcessResult first = sks({"init", "--dir", dir_});
  ASSERT_EQ(first.exit_code, kExitOk) << first.describe();
  EXPECT_EQ(first.out, dir_ + "/sks.toml\n");
  std::vector<std::string> contents;
  std::vector<struct stat> stats;
  for (const auto& name : files) {
    contents.push_back(read_file(dir_ + "/" + name));
    stats.push_back(stat_file(dir_ + "/" + name));
  }
  const auto token_folders = [&] {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_ + "/tokens")) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  };
  const std::vector<std::string> tokens_before = token_folders();
  EXPECT_EQ(tokens_before.size(), 1u);

  const ProcessResult second = sks({"init", "--dir", dir_});
  ASSERT_EQ(second.exit_code, kExitOk) << second.describe();
  EXPECT_EQ(second.out, first.out);
  // The same token is found again, not a second one made.
  ASSERT_TRUE(first.err.starts_with("created token label=sks serial=")) << first.err;
  EXPECT_EQ(second.err, replace_once(first.err, "created", "found"));
  EXPECT_EQ(token_folders(), tokens_before);
  for (std::size_t i = 0; i < files.size(); ++i) {
    SCOPED_TRACE(files[i]);
    const struct stat now = stat_file(dir_ + "/" + files[i]);
    EXPECT_EQ(read_file(dir_ + "/" + files[i]), contents[i]);
    EXPECT_EQ(now.st_ino, stats[i].st_ino);
    EXPECT_EQ(now.st_mtim.tv_sec, stats[i].st_mtim.tv_sec);
    EXPECT_EQ(now.st_mtim.tv_nsec, stats[i].st_mtim.tv_nsec);
  }
  EXPECT_EQ(file_mode(dir_ + "/user.pin"), 0600u);
  EXPECT_EQ(file_mode(dir_ + "/so.pin"), 0600u);

  config_ = dir_ + "/sks.toml";
  const ProcessResult check = sks_with_config({"check-config", "--login"});
  ASSERT_EQ(check.exit_code, kExitOk) << check.describe();
  const std::size_t serial_at = first.err.find("serial=") + 7;
  const std::string serial = first.err.substr(serial_at, first.err.find('\n') - serial_at);
  int token_lines = 0;
  for (const auto& line : lines_of(check.out)) token_lines += line.starts_with("token ") ? 1 : 0;
  EXPECT_EQ(token_lines, 1) << check.out;
  EXPECT_TRUE(contains(check.out, "token sks (serial " + serial + ") logged in")) << check.out;
}

// ---- 2. the newcomer path -----------------------------------------------------

TEST_F(CliTest, NewcomerPathGeneratesListsExportsSignsAndVerifies) {
  init();
  const ProcessResult generated = sks_with_config({"keys", "generate", "--label", kLabel});
  ASSERT_EQ(generated.exit_code, kExitOk) << generated.describe();
  ASSERT_TRUE(generated.out.starts_with("generated L id=")) << generated.out;
  ASSERT_TRUE(ends_with(generated.out, " P-256\n")) << generated.out;
  const std::string id = generated.out.substr(15, generated.out.size() - 15 - 7);

  const ProcessResult listed = sks_with_config({"keys", "list", "--json"});
  ASSERT_EQ(listed.exit_code, kExitOk) << listed.describe();
  const json keys = json::parse(listed.out);
  ASSERT_TRUE(keys.is_array());
  ASSERT_EQ(keys.size(), 1u) << listed.out;
  EXPECT_EQ(keys[0]["label"], kLabel);
  EXPECT_EQ(keys[0]["id"], id);
  EXPECT_EQ(keys[0]["curve"], "P-256");
  EXPECT_EQ(keys[0]["sensitive"], true);
  EXPECT_EQ(keys[0]["extractable"], false);
  EXPECT_EQ(keys[0]["public_key"], true);

  const ProcessResult pub = sks_with_config({"keys", "public", "--label", kLabel});
  ASSERT_EQ(pub.exit_code, kExitOk) << pub.describe();
  EXPECT_TRUE(pub.out.starts_with("-----BEGIN PUBLIC KEY-----\n")) << pub.out;
  EXPECT_TRUE(ends_with(pub.out, "-----END PUBLIC KEY-----\n")) << pub.out;
  EXPECT_EQ(pem_public_key_group(pub.out), "prime256v1");
  write_file(pub_pem_, pub.out, 0644);

  const ProcessResult signed_result = sign(kLabel, "B");
  ASSERT_EQ(signed_result.exit_code, kExitOk) << signed_result.describe();
  const std::vector<std::string> lines = lines_of(signed_result.out);
  ASSERT_EQ(lines.size(), 1u) << signed_result.out;
  EXPECT_EQ(signed_result.out, lines[0] + "\n");
  EXPECT_TRUE(ends_with(lines[0], kIdentityParams)) << lines[0];

  const ProcessResult verified = verify(lines[0], pub_pem_, std::nullopt);
  ASSERT_EQ(verified.exit_code, kExitOk) << verified.describe();
  EXPECT_EQ(verified.out, "valid: attest=B orig=12155550121 dest=12155550131,12155550132 iat=" +
                              std::to_string(iat_) + " origid=" + kOrigid + " x5u=" + kX5u + "\n");
}

// ---- 3. interop with secsipidx ------------------------------------------------

TEST_F(CliTest, SecsipidxAcceptsTheTokenAndRejectsATamperedOne) {
  ASSERT_EQ(::access(kSecsipidx, X_OK), 0)
      << kSecsipidx << " is missing: install the Debian package secsipidx (see INTEROP.md)";
  init_generate_sign();
  const ProcessResult accepted = secsipidx_check(identity_);
  EXPECT_EQ(accepted.exit_code, 0) << accepted.describe();
  EXPECT_EQ(accepted.out, "ok\n") << accepted.describe();

  const ProcessResult rejected = secsipidx_check(tamper_signature(identity_));
  EXPECT_NE(rejected.exit_code, 0) << rejected.describe();
  EXPECT_NE(rejected.out, "ok\n") << rejected.describe();
}

TEST_F(CliTest, SecsipidxAcceptsEveryAttestationWithSeveralDests) {
  ASSERT_EQ(::access(kSecsipidx, X_OK), 0)
      << kSecsipidx << " is missing: install the Debian package secsipidx (see INTEROP.md)";
  init_generate_sign();
  for (const char* attest : {"A", "B", "C"}) {
    SCOPED_TRACE(std::string("attest ") + attest);
    const ProcessResult signed_result =
        sign(kLabel, attest, "12155550131,12155550132,442079460000");
    ASSERT_EQ(signed_result.exit_code, kExitOk) << signed_result.describe();
    const std::string identity = signed_result.out.substr(0, signed_result.out.find('\n'));
    const json payload = json::parse(*base64url_decode(split_identity(identity).payload));
    EXPECT_EQ(payload["attest"], attest);
    EXPECT_EQ(payload["dest"]["tn"].size(), 3u);
    const ProcessResult checked = secsipidx_check(identity);
    EXPECT_EQ(checked.exit_code, 0) << checked.describe();
    EXPECT_EQ(checked.out, "ok\n") << checked.describe();
  }
}

// ---- 4. independent OpenSSL check ---------------------------------------------

TEST_F(CliTest, OpensslCommandVerifiesTheSignatureAsDer) {
  init_generate_sign();
  const Segments segments = split_identity(identity_);
  const std::optional<std::string> raw = base64url_decode(segments.signature);
  ASSERT_TRUE(raw.has_value()) << segments.signature;
  ASSERT_EQ(raw->size(), 64u) << "ES256 signatures are raw r||s";
  write_file(path("sig.der"), raw_signature_to_der(*raw));
  write_file(path("data.txt"), segments.header + "." + segments.payload);

  const ProcessResult good = run({"openssl", "dgst", "-sha256", "-verify", pub_pem_, "-signature",
                                  path("sig.der"), path("data.txt")});
  EXPECT_EQ(good.exit_code, 0) << good.describe();
  EXPECT_EQ(good.out, "Verified OK\n") << good.describe();

  write_file(path("data.txt"), segments.header + "." + segments.payload + "x");
  const ProcessResult bad = run({"openssl", "dgst", "-sha256", "-verify", pub_pem_, "-signature",
                                 path("sig.der"), path("data.txt")});
  EXPECT_NE(bad.exit_code, 0) << bad.describe();
  EXPECT_TRUE(contains(bad.out + bad.err, "Verification failure")) << bad.describe();
}

TEST_F(CliTest, HeaderAndPayloadAreCanonicalJson) {
  init_generate_sign();
  const Segments segments = split_identity(identity_);
  EXPECT_EQ(base64url_decode(segments.header),
            std::string(R"({"alg":"ES256","ppt":"shaken","typ":"passport",)"
                        R"("x5u":"https://cr.example.net/L.pem"})"));
  EXPECT_EQ(base64url_decode(segments.payload),
            R"({"attest":"B","dest":{"tn":["12155550131","12155550132"]},"iat":)" +
                std::to_string(iat_) +
                R"(,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"})");
}

// ---- 5. sks verify failures ---------------------------------------------------

TEST_F(CliTest, VerifyReportsATamperedSignatureAs438) {
  init_generate_sign();
  const ProcessResult result = verify(tamper_signature(identity_), pub_pem_, iat_);
  EXPECT_EQ(result.exit_code, kExitInvalidToken) << result.describe();
  EXPECT_EQ(result.out, "invalid: 438 Invalid Identity Header: signature does not verify\n");
}

TEST_F(CliTest, VerifyReportsOldAndFutureIatAs403) {
  init_generate_sign();
  const ProcessResult fresh = verify(identity_, pub_pem_, iat_ + 60);
  EXPECT_EQ(fresh.exit_code, kExitOk) << fresh.describe();

  const ProcessResult old = verify(identity_, pub_pem_, iat_ + 120);
  EXPECT_EQ(old.exit_code, kExitInvalidToken) << old.describe();
  EXPECT_TRUE(old.out.starts_with("invalid: 403 Stale Date: ")) << old.out;
  EXPECT_TRUE(contains(old.out, "120 s older")) << old.out;

  const ProcessResult future = verify(identity_, pub_pem_, iat_ - 120);
  EXPECT_EQ(future.exit_code, kExitInvalidToken) << future.describe();
  EXPECT_TRUE(future.out.starts_with("invalid: 403 Stale Date: ")) << future.out;
  EXPECT_TRUE(contains(future.out, "120 s ahead")) << future.out;
}

TEST_F(CliTest, VerifyReportsAnotherKeysPublicKeyAs438) {
  init_generate_sign();
  must(sks_with_config({"keys", "generate", "--label", "other"}), "keys generate other");
  must(sks_with_config({"keys", "public", "--label", "other", "--out", path("other.pem")}),
       "keys public other");
  const ProcessResult result = verify(identity_, path("other.pem"), iat_);
  EXPECT_EQ(result.exit_code, kExitInvalidToken) << result.describe();
  EXPECT_TRUE(result.out.starts_with("invalid: 438 ")) << result.out;
}

TEST_F(CliTest, VerifyReportsBadIdentityParameters) {
  init_generate_sign();
  const ProcessResult ppt =
      verify(replace_once(identity_, ";ppt=shaken", ";ppt=shake"), pub_pem_, iat_);
  EXPECT_EQ(ppt.exit_code, kExitInvalidToken) << ppt.describe();
  EXPECT_TRUE(ppt.out.starts_with("invalid: 438 ")) << ppt.out;

  const ProcessResult alg =
      verify(replace_once(identity_, ";alg=ES256", ";alg=ES25"), pub_pem_, iat_);
  EXPECT_EQ(alg.exit_code, kExitInvalidToken) << alg.describe();
  EXPECT_TRUE(alg.out.starts_with("invalid: 437 ")) << alg.out;

  const ProcessResult info = verify(replace_once(identity_, "info=<https://cr.example.net/L.pem>",
                                                 "info=<https://x.example/L.pem>"),
                                    pub_pem_, iat_);
  EXPECT_EQ(info.exit_code, kExitInvalidToken) << info.describe();
  EXPECT_TRUE(info.out.starts_with("invalid: 436 ")) << info.out;
}

TEST_F(CliTest, VerifyWithCertificateAcceptsTheLibstirshakenVector) {
  const std::string dir = std::string(STIR_TESTVECTORS_DIR) + "/libstirshaken";
  const std::vector<std::string> tokens = lines_of(read_file(dir + "/tokens.txt"));
  ASSERT_EQ(tokens.size(), 3u);
  // The info parameter must equal the header's x5u, so read it from the token.
  const json header = json::parse(*base64url_decode(split_identity(tokens[0]).header));
  ASSERT_EQ(header["x5u"], "https://shaken.signalwire.cloud/sp.pem");
  const std::string params = ";info=<https://shaken.signalwire.cloud/sp.pem>;alg=ES256;ppt=shaken";

  // Its TNs are digits only, so canonical: the token is valid at its iat.
  const ProcessResult valid = sks({"verify", "--identity", tokens[0] + params, "--cert",
                                   dir + "/sp.pem", "--time", "1616442523"});
  EXPECT_EQ(valid.exit_code, kExitOk) << valid.describe();
  EXPECT_EQ(valid.out,
            "valid: attest=B orig=01256500600 dest=01256700800 iat=1616442523 "
            "origid=e32f4189-cb86-460f-bb92-bd3acb89f29c "
            "x5u=https://shaken.signalwire.cloud/sp.pem\n");

  // Line 3 is well signed but its TNs are "Bob" and "Alice".
  const ProcessResult names = sks({"verify", "--identity", tokens[2] + params, "--cert",
                                   dir + "/sp.pem", "--time", "1615936245"});
  EXPECT_EQ(names.exit_code, kExitInvalidToken) << names.describe();
  EXPECT_EQ(names.out, "invalid: 438 Invalid Identity Header: orig.tn is not a canonical TN\n");
}

// ---- 6. bad input changes nothing -----------------------------------------------

TEST_F(CliTest, BadSignInputIsRefusedAndChangesNothing) {
  init_generate_sign();
  const std::string before = keys_list_json();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string stderr_part;
  };
  const std::vector<std::string> base{"sign", "--config", config_, "--x5u", kX5u};
  const std::vector<Case> cases{
      {{"--label", kLabel, "--orig", kOrig, "--dest", kDests, "--attest", "D"},
       kExitUsage,
       "--attest"},
      {{"--label", kLabel, "--orig", "+12155550121", "--dest", kDests, "--attest", "B"},
       kExitDataErr,
       "orig"},
      {{"--label", kLabel, "--orig", kOrig, "--dest", "1-215", "--attest", "B"},
       kExitDataErr,
       "dest"},
      {{"--label", kLabel, "--orig", kOrig, "--dest", kDests, "--attest", "B", "--origid",
        "not-a-uuid"},
       kExitDataErr,
       "origid"},
      {{"--label", "missing", "--orig", kOrig, "--dest", kDests, "--attest", "B"},
       kExitNoInput,
       "no key labelled 'missing'"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    const ProcessResult result = sks(args);
    SCOPED_TRACE(result.describe());
    EXPECT_EQ(result.exit_code, c.exit_code);
    EXPECT_EQ(result.out, "");
    EXPECT_TRUE(contains(result.err, c.stderr_part));
  }
  EXPECT_EQ(keys_list_json(), before);
}

TEST_F(CliTest, GenerateRefusesAnExistingLabelAndKeepsTheKey) {
  init_generate_sign();
  const std::string before = keys_list_json();
  const ProcessResult again = sks_with_config({"keys", "generate", "--label", kLabel});
  EXPECT_EQ(again.exit_code, kExitCantCreate) << again.describe();
  EXPECT_TRUE(contains(again.err, "already exists")) << again.err;
  EXPECT_EQ(keys_list_json(), before);
  // The key that signed before still verifies what it signs.
  const ProcessResult signed_result = must(sign(kLabel, "A"), "sign");
  EXPECT_EQ(verify(lines_of(signed_result.out)[0], pub_pem_, iat_).exit_code, kExitOk);

  const ProcessResult bad = sks_with_config({"keys", "generate", "--label", "bad label"});
  EXPECT_EQ(bad.exit_code, kExitDataErr) << bad.describe();
  EXPECT_TRUE(contains(bad.err, "'bad label'")) << bad.err;
  EXPECT_EQ(keys_list_json(), before);
}

TEST_F(CliTest, DestroyNeedsYesThenRemovesTheKey) {
  init_generate_sign();
  const std::string before = keys_list_json();
  const ProcessResult unconfirmed = sks_with_config({"keys", "destroy", "--label", kLabel});
  EXPECT_EQ(unconfirmed.exit_code, kExitDataErr) << unconfirmed.describe();
  EXPECT_TRUE(contains(unconfirmed.err, "--yes")) << unconfirmed.err;
  EXPECT_EQ(keys_list_json(), before);

  const ProcessResult destroyed = sks_with_config({"keys", "destroy", "--label", kLabel, "--yes"});
  EXPECT_EQ(destroyed.exit_code, kExitOk) << destroyed.describe();
  EXPECT_EQ(destroyed.out, "destroyed L\n");
  EXPECT_EQ(keys_list_json(), "[]\n");

  const ProcessResult again = sks_with_config({"keys", "destroy", "--label", kLabel, "--yes"});
  EXPECT_EQ(again.exit_code, kExitNoInput) << again.describe();
  EXPECT_TRUE(contains(again.err, "no key labelled 'L'")) << again.err;
  EXPECT_EQ(sign(kLabel, "B").exit_code, kExitNoInput);
}

TEST_F(CliTest, UsageErrorsExit64) {
  init_generate_sign();
  const ProcessResult neither = sks({"verify", "--identity", identity_});
  EXPECT_EQ(neither.exit_code, kExitUsage) << neither.describe();
  EXPECT_TRUE(contains(neither.err, "--public-key")) << neither.err;

  const ProcessResult both =
      sks({"verify", "--identity", identity_, "--public-key", pub_pem_, "--cert", pub_pem_});
  EXPECT_EQ(both.exit_code, kExitUsage) << both.describe();
  EXPECT_TRUE(contains(both.err, "--cert")) << both.err;

  const ProcessResult unknown = sks({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, kExitUsage) << unknown.describe();
  EXPECT_NE(unknown.err, "");

  const ProcessResult unknown_keys = sks_with_config({"keys", "rotate"});
  EXPECT_EQ(unknown_keys.exit_code, kExitUsage) << unknown_keys.describe();
  EXPECT_NE(unknown_keys.err, "");
}

TEST_F(CliTest, EverySubcommandHasHelp) {
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> commands{
      {{"init"}, {"--dir", "--label", "--module"}},
      {{"check-config"}, {"--config", "--login"}},
      {{"keys", "generate"}, {"--config", "--label", "--if-missing", "--json"}},
      {{"keys", "list"}, {"--config", "--json"}},
      {{"keys", "public"}, {"--config", "--label", "--out"}},
      {{"keys", "destroy"}, {"--config", "--label", "--yes"}},
      {{"sign"},
       {"--config", "--label", "--x5u", "--orig", "--dest", "--attest", "--origid", "--iat"}},
      {{"verify"}, {"--identity", "--public-key", "--cert", "--time", "--max-age"}},
  };
  for (const auto& [command, options] : commands) {
    std::vector<std::string> args = command;
    args.push_back("--help");
    const ProcessResult result = sks(args);
    SCOPED_TRACE(result.describe());
    EXPECT_EQ(result.exit_code, kExitOk);
    for (const auto& option : options) EXPECT_TRUE(contains(result.out, option)) << option;
  }
}

// ---- 7. PIN and config errors ---------------------------------------------------

TEST_F(CliTest, PinFileReadableByOthersIsRefused) {
  init_generate_sign();
  const std::string pin = lines_of(read_file(dir_ + "/user.pin"))[0];
  fs::permissions(dir_ + "/user.pin", fs::perms(0644));
  const std::vector<std::vector<std::string>> commands{
      {"keys", "list"},
      {"keys", "generate", "--label", "K"},
      {"keys", "public", "--label", kLabel},
      {"sign", "--label", kLabel, "--x5u", kX5u, "--orig", kOrig, "--dest", kDests, "--attest",
       "B"},
      {"check-config", "--login"},
  };
  for (const auto& command : commands) {
    const ProcessResult result = sks_with_config(command);
    SCOPED_TRACE(result.describe());
    EXPECT_EQ(result.exit_code, kExitNoPerm);
    EXPECT_EQ(result.out, "");
    EXPECT_TRUE(contains(result.err, "chmod 600"));
    EXPECT_TRUE(contains(result.err, dir_ + "/user.pin"));
    EXPECT_FALSE(contains(result.err, pin));
  }
  fs::permissions(dir_ + "/user.pin", fs::perms(0600));
  EXPECT_EQ(keys_list_json().find("\"label\":\"K\""), std::string::npos);
}

TEST_F(CliTest, WrongPinIsRefusedAndDoesNotLockTheToken) {
  init_generate_sign();
  const std::string before = keys_list_json();
  const std::string pin = lines_of(read_file(dir_ + "/user.pin"))[0];
  const std::string wrong_pin = "wrong-pin-0000";
  write_file(path("wrong.pin"), wrong_pin + "\n", 0600);
  std::string config;
  for (const auto& line : lines_of(read_file(config_))) {
    config += (line.starts_with("pin_file") ? "pin_file = \"wrong.pin\"" : line) + "\n";
  }
  // A relative pin_file is found next to the config file.
  write_file(path("wrong.toml"), config, 0600);

  for (int attempt = 0; attempt < 3; ++attempt) {
    const ProcessResult result = sks({"keys", "list", "--config", path("wrong.toml")});
    SCOPED_TRACE(result.describe());
    EXPECT_EQ(result.exit_code, kExitNoPerm);
    EXPECT_TRUE(contains(result.err, "CKR_PIN_INCORRECT"));
    EXPECT_FALSE(contains(result.err, wrong_pin));
    EXPECT_FALSE(contains(result.err, pin));
  }
  EXPECT_EQ(keys_list_json(), before);
  EXPECT_EQ(must(sign(kLabel, "C"), "sign after wrong PINs").exit_code, kExitOk);
}

// SoftHSM2 rewrites its token file at every login, and a command that read
// it in that moment failed now and then (CKR_GENERAL_ERROR, "no initialised
// token", CKR_USER_PIN_NOT_INITIALIZED): seen in CI when two instances ran
// `sks keys install-cert` at once. Three commands at a time, 40 each, all
// succeed with the same answer.
TEST_F(CliTest, CommandsRunAtOnceOnOneTokenAllSucceed) {
  init_generate_sign();
  const std::string expected = keys_list_json();
  std::atomic<int> failures{0};
  std::mutex mutex;
  std::string first_failure;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int n = 0; n < 40; ++n) {
        const ProcessResult result =
            run({STIR_SKS_BINARY, "keys", "list", "--json", "--config", config_},
                {{"SKS_CONFIG", std::nullopt}, {"SOFTHSM2_CONF", std::nullopt}});
        if (result.exit_code == kExitOk && result.out == expected) continue;
        failures.fetch_add(1);
        std::lock_guard lock(mutex);
        if (first_failure.empty()) first_failure = result.describe();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
}

TEST_F(CliTest, ConfigErrorsExit78AndNameTheFile) {
  init();
  std::vector<std::string> lines = lines_of(read_file(config_));
  std::size_t token_line = 0;
  while (token_line < lines.size() && lines[token_line] != "[token]") ++token_line;
  ASSERT_LT(token_line, lines.size());
  lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(token_line) + 1, "colour = \"blue\"");
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  write_file(path("unknown.toml"), text, 0600);

  const ProcessResult unknown = sks({"check-config", "--config", path("unknown.toml")});
  EXPECT_EQ(unknown.exit_code, kExitConfig) << unknown.describe();
  EXPECT_TRUE(
      contains(unknown.err, path("unknown.toml") + ":" + std::to_string(token_line + 2) + ":"))
      << unknown.err;
  EXPECT_TRUE(contains(unknown.err, "colour")) << unknown.err;

  for (const auto& command :
       std::vector<std::vector<std::string>>{{"check-config"}, {"keys", "list"}}) {
    std::vector<std::string> args = command;
    args.insert(args.end(), {"--config", path("missing.toml")});
    const ProcessResult missing = sks(args);
    SCOPED_TRACE(missing.describe());
    EXPECT_EQ(missing.exit_code, kExitConfig);
    EXPECT_TRUE(contains(missing.err, path("missing.toml")));
  }
}

TEST_F(CliTest, SksConfigEnvironmentIsHonoured) {
  init_generate_sign();
  const std::string expected = keys_list_json();
  const ProcessResult from_env = sks({"keys", "list", "--json"}, {{"SKS_CONFIG", config_}});
  EXPECT_EQ(from_env.exit_code, kExitOk) << from_env.describe();
  EXPECT_EQ(from_env.out, expected);

  const ProcessResult check = sks({"check-config"}, {{"SKS_CONFIG", config_}});
  EXPECT_EQ(check.exit_code, kExitOk) << check.describe();
  EXPECT_TRUE(check.out.starts_with("config " + config_ + " is valid")) << check.out;

  const ProcessResult missing = sks({"keys", "list"}, {{"SKS_CONFIG", path("missing.toml")}});
  EXPECT_EQ(missing.exit_code, kExitConfig) << missing.describe();
  EXPECT_TRUE(contains(missing.err, path("missing.toml"))) << missing.err;

  // --config wins over the environment.
  const ProcessResult flag =
      sks({"keys", "list", "--json", "--config", config_}, {{"SKS_CONFIG", path("missing.toml")}});
  EXPECT_EQ(flag.exit_code, kExitOk) << flag.describe();
  EXPECT_EQ(flag.out, expected);
}

// ---- 8. no secrets leave the token ----------------------------------------------

TEST_F(CliTest, NoPrivateKeyMaterialOrPinOutsideTheTokenAndPinFile) {
  init_generate_sign();
  must(sks_with_config({"keys", "list"}), "keys list");
  must(sks_with_config({"keys", "public", "--label", kLabel}), "keys public");
  must(sks_with_config({"check-config", "--login"}), "check-config");
  must(verify(identity_, pub_pem_, iat_), "verify");
  const std::string pin = lines_of(read_file(dir_ + "/user.pin"))[0];
  const std::string so_pin = lines_of(read_file(dir_ + "/so.pin"))[0];
  ASSERT_EQ(pin.size(), 32u);

  std::size_t files = 0;
  for (auto it = fs::recursive_directory_iterator(temp_.path());
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->path() == dir_ + "/tokens") {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    ++files;
    const std::string name = it->path().string();
    const std::string content = read_file(name);
    EXPECT_FALSE(contains(content, "PRIVATE KEY")) << name;
    if (name != dir_ + "/user.pin") {
      EXPECT_FALSE(contains(content, pin)) << name;
    }
    if (name != dir_ + "/so.pin") {
      EXPECT_FALSE(contains(content, so_pin)) << name;
    }
  }
  EXPECT_GE(files, 5u);  // sks.toml, both PINs, softhsm2.conf, pub.pem

  ASSERT_GE(transcript_.size(), 8u);
  for (const ProcessResult& result : transcript_) {
    SCOPED_TRACE(result.describe());
    EXPECT_FALSE(contains(result.out + result.err, "PRIVATE KEY"));
    EXPECT_FALSE(contains(result.out + result.err, pin));
    EXPECT_FALSE(contains(result.out + result.err, so_pin));
  }
}

}  // namespace
}  // namespace stir::testing
