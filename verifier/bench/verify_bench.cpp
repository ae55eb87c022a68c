// Benchmark (a program, not a test): in-process verification throughput of
// Verifier::verify with a warm certificate cache, against OpenSSL's raw
// P-256 verify rate measured in the same run, one thread each.
//
// The certificate is put in the cache the way a restarted service finds it:
// through the persisted cache folder (no network in the measured loop).
// Usage: stir_verify_bench [seconds per round and side, default 2]
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stir/base64url.h"
#include "stir/exit_codes.h"
#include "stir/files.h"
#include "stir/hex.h"
#include "stir/openssl.h"
#include "stir/passport.h"
#include "stir/verifier/verifier.h"
#include "test_pki.h"

namespace {

using Clock = std::chrono::steady_clock;

class KeySigner : public stir::DigestSigner {
 public:
  explicit KeySigner(EVP_PKEY* key) : key_(key) {}
  stir::Es256Signature sign_digest(const stir::Sha256Digest& digest) const override {
    stir::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key_, nullptr));
    std::size_t len = 0;
    EVP_PKEY_sign_init(ctx.get());
    EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size());
    std::vector<std::uint8_t> der(len);
    EVP_PKEY_sign(ctx.get(), der.data(), &len, digest.data(), digest.size());
    der.resize(len);
    return stir::ecdsa_der_to_raw(der);
  }

 private:
  EVP_PKEY* key_;
};

// Runs `op` for `seconds`; returns operations per second.
template <typename Op>
double rate(double seconds, Op op) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  std::uint64_t n = 0;
  auto now = Clock::now();
  const auto start = now;
  while (now < end) {
    for (int i = 0; i < 64; ++i) op();
    n += 64;
    now = Clock::now();
  }
  return static_cast<double>(n) / std::chrono::duration<double>(now - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  stir::ignore_broken_pipes();  // see stir/exit_codes.h
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const stir::testing::ShakenPki pki = stir::testing::make_shaken_pki("1234");
  const auto dir = std::filesystem::temp_directory_path() / "stir-vs-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string anchors = (dir / "root.pem").string();
  stir::write_file_atomic(anchors, pki.root.certificate_pem(), 0644);

  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  const std::string x5u = "https://cr.example.net/sp-bench.pem";
  // The persisted form of a cached x5u (see cert_cache.h).
  const std::string base = (dir / "cache" / stir::hex(stir::sha256(x5u))).string();
  stir::ensure_directory((dir / "cache").string(), 0700);
  stir::write_file_atomic(base + ".pem", pki.chain_pem(), 0644);
  stir::write_file_atomic(
      base + ".json",
      nlohmann::json{{"url", x5u}, {"fetched_at", now}, {"expires_at", now + 86400}}.dump(), 0644);

  stir::vs::VerifierConfig config;
  config.trust_anchor_files = {anchors};
  config.cache_dir = (dir / "cache").string();
  stir::vs::Verifier verifier(config);

  stir::ShakenClaims claims;
  claims.attest = "A";
  claims.orig_tn = "12155550121";
  claims.dest_tn = {"12155550131"};
  claims.iat = now;
  claims.origid = "123e4567-e89b-12d3-a456-426655440000";
  stir::PassportHeader header;
  header.x5u = x5u;
  const KeySigner signer(pki.leaf.key.get());
  const std::string jws = stir::sign_passport(header, claims, signer);
  stir::vs::VerificationRequest request;
  request.identity = stir::compose_identity_header(jws, x5u);
  request.from_tn = claims.orig_tn;
  request.to_tns = claims.dest_tn;
  request.now = now;
  const stir::vs::VerificationResult first = verifier.verify(request);
  if (!first.passed()) {
    std::fprintf(stderr, "warm-up verification failed: %s (%s)\n", first.reasondesc.c_str(),
                 first.detail.c_str());
    return 1;
  }

  // Raw OpenSSL: the same signature over the same digest, DER, one context
  // initialised once (the cheapest way OpenSSL verifies).
  const std::string signed_part = jws.substr(0, jws.rfind('.'));
  const auto sig = stir::base64url_decode(jws.substr(jws.rfind('.') + 1));
  stir::Es256Signature raw{};
  std::copy(sig->begin(), sig->end(), raw.begin());
  const std::vector<std::uint8_t> der = stir::ecdsa_raw_to_der(raw);
  const stir::Sha256Digest digest = stir::sha256(signed_part);
  EVP_PKEY* public_key = X509_get0_pubkey(pki.leaf.certificate.get());
  stir::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(public_key, nullptr));
  EVP_PKEY_verify_init(ctx.get());
  bool raw_ok = true;
  auto raw_verify = [&] {
    raw_ok &= EVP_PKEY_verify(ctx.get(), der.data(), der.size(), digest.data(), digest.size()) == 1;
  };
  bool vs_ok = true;
  auto vs_verify = [&] { vs_ok &= verifier.verify(request).passed(); };

  // Alternating rounds, so both see the same machine conditions; the ratio
  // reported is the median of the per-round ratios (robust to a noisy
  // neighbour), the rates the best of each.
  constexpr int kRounds = 5;
  double raw_best = 0, vs_best = 0;
  std::vector<double> ratios;
  for (int round = 0; round < kRounds; ++round) {
    const double raw_rate = rate(seconds, raw_verify);
    const double vs_rate = rate(seconds, vs_verify);
    raw_best = std::max(raw_best, raw_rate);
    vs_best = std::max(vs_best, vs_rate);
    ratios.push_back(vs_rate / raw_rate);
  }
  std::sort(ratios.begin(), ratios.end());
  const double ratio = ratios[ratios.size() / 2];
  if (!raw_ok || !vs_ok) {
    std::fprintf(stderr, "a verification failed during the run\n");
    return 1;
  }
  const stir::vs::MetricsSnapshot m = verifier.metrics();
  std::printf("raw OpenSSL P-256 verify (1 thread):        %10.0f /s\n", raw_best);
  std::printf("Verifier::verify, warm cache (1 thread):    %10.0f /s\n", vs_best);
  std::printf("ratio verifier / raw (median of %d rounds):  %10.3f (target >= 0.70)\n", kRounds,
              ratio);
  std::printf("cache hits %llu, misses %llu, fetches %llu, chain verdicts reused %llu\n",
              static_cast<unsigned long long>(m.cert_cache_hits),
              static_cast<unsigned long long>(m.cert_cache_misses),
              static_cast<unsigned long long>(m.fetches),
              static_cast<unsigned long long>(m.chain_verdict_hits));
  std::filesystem::remove_all(dir);
  return ratio >= 0.70 ? 0 : 2;
}
