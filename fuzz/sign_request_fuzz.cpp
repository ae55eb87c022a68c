// The signing API's request handler (sks::server::sign_request) over a key
// ring of software keys. The first input byte picks the client identity
// (none, a listed client, an unknown one); the rest is the request body.
// With the byte's high bit set, the rest is also the Accept header value
// (then the Content-Type value), and the error answered for it is rendered.
// Every token it signs must pass our own verifier with the ring's key: sks
// never hands out an Identity header that a strict verifier refuses. The
// audit log is on: every request, refused or signed, is formatted as the
// audit writer formats it (AuditLog::format), so a body that would crash
// the writer thread (deep nesting, odd types) crashes here. For a client
// with a profile, read_signing_request must give what the tree reader it
// replaced gives (signing_request_reference.h): the same claims, or the
// same refusal word for word.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "signing_request_reference.h"
#include "sks/server/api_error.h"
#include "sks/server/audit_log.h"
#include "sks/server/signing_api.h"
#include "software_signer.h"
#include "stir/verify.h"

namespace {

constexpr std::int64_t kNow = 1796251082;
constexpr std::int64_t kSkew = 60;

struct Ring {
  std::shared_ptr<const stir::testing::SoftwareSigner> signer =
      std::make_shared<stir::testing::SoftwareSigner>();
  std::shared_ptr<const sks::server::KeyRing> ring;

  Ring() {
    sks::Config config;
    sks::SigningProfile east;
    east.name = "east";
    east.key_label = "shaken-east";
    east.x5u = "https://cr.example.net/east.pem";
    east.origid = "de305d54-75b4-431b-adb2-eb6b9e546014";
    east.attest = {"A", "B"};
    east.clients = {"sbc1.example.net"};
    sks::SigningProfile open = east;
    open.name = "open";
    open.origid = "";
    open.attest = {"A", "B", "C"};
    open.clients = {};
    config.profiles = {east, open};
    config.server.default_profile = "open";
    ring = sks::server::KeyRing::build(config, [this](const sks::SigningProfile& p) {
      auto key = std::make_shared<sks::server::SigningKey>();
      key->label = p.key_label;
      key->x5u = p.x5u;
      key->signer = signer;
      return std::shared_ptr<const sks::server::SigningKey>(std::move(key));
    });
  }
};

const Ring& ring() {
  static const Ring instance;
  return instance;
}

// A read's outcome: the claims, or the refusal's rule, subject and reason.
struct Read {
  stir::ShakenClaims claims;
  int problem = -1;  // -1: read, no refusal
  std::string subject, why;

  bool operator==(const Read& o) const {
    const auto& a = claims;
    const auto& b = o.claims;
    return problem == o.problem && subject == o.subject && why == o.why && a.attest == b.attest &&
           a.orig_tn == b.orig_tn && a.orig_uri == b.orig_uri && a.dest_tn == b.dest_tn &&
           a.dest_uri == b.dest_uri && a.iat == b.iat && a.origid == b.origid;
  }
  std::string text() const {
    if (problem >= 0) return "refused " + std::to_string(problem) + " " + subject + ": " + why;
    std::string out = "attest=" + claims.attest + " orig=" + claims.orig_tn + " dest=";
    for (const auto& tn : claims.dest_tn) out += tn + ",";
    return out + " iat=" + std::to_string(claims.iat) + " origid=" + claims.origid;
  }
};

template <class F>
Read read_with(F&& read) {
  Read out;
  try {
    out.claims = read();
  } catch (const stir::RequestError& e) {
    out.problem = static_cast<int>(e.problem());
    out.subject = e.subject();
    out.why = e.why();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const std::vector<std::vector<std::string>> clients = {
      {}, {"sbc1.example.net"}, {"unknown.example.net", "sbc1.example.net"}, {"nobody"}};
  const auto& names = clients[data[0] % clients.size()];
  const std::string_view body = stir::fuzz::as_text(data + 1, size - 1);
  if ((data[0] & 0x80) != 0) {
    const std::string value(body), json_type("application/json");
    for (const auto& [content_type, accept] : {std::pair{&json_type, &value}, {&value, nullptr}}) {
      try {
        sks::server::check_json_headers(true, content_type, accept);
      } catch (const stir::Error& e) {
        (void)sks::server::api_answer(e);
      }
    }
  }
  if (const sks::server::Profile* profile = ring().ring->profile_for(names);
      profile != nullptr && !body.empty()) {
    const Read got =
        read_with([&] { return sks::server::read_signing_request(body, *profile, kNow, kSkew); });
    const Read want = read_with(
        [&] { return stir::fuzz::reference_signing_request(body, *profile, kNow, kSkew); });
    if (!(got == want)) {
      std::fprintf(stderr, "read:      %s\nreference: %s\n", got.text().c_str(),
                   want.text().c_str());
      stir::fuzz::property_failed("the signing request read otherwise than the tree reader");
    }
  }
  sks::server::AuditRecord record;
  sks::server::SigningResult result;
  try {
    result = sks::server::sign_request(body, names, *ring().ring, kNow, kSkew);
  } catch (const stir::RequestError& e) {
    const sks::server::ApiAnswer answer = sks::server::api_answer(e);
    record.status = answer.status;
    record.outcome = answer.message_id;
    record.request_body = std::string(body);
    (void)sks::server::AuditLog::format(record);
    return 0;
  }
  record.status = 200;
  record.outcome = "ok";
  record.claims = result.claims;
  record.signing_input = result.signing_input;
  (void)sks::server::AuditLog::format(record);
  const nlohmann::json response = nlohmann::json::parse(result.response_body);
  const std::string identity = response.at("signingResponse").at("identity");
  stir::VerifyOptions options;
  options.now = kNow;
  options.max_age_seconds = kSkew;
  options.max_future_seconds = kSkew;
  const stir::VerifyResult verdict = stir::verify_identity(identity, ring().signer->key(), options);
  if (!verdict.valid) {
    std::fprintf(stderr, "signed %s\nverifier: %d %s\n", identity.c_str(),
                 static_cast<int>(verdict.reason), verdict.detail.c_str());
    stir::fuzz::property_failed("sks signed a PASSporT its verifier refuses");
  }
  return 0;
}
