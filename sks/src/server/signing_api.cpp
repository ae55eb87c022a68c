#include "sks/server/signing_api.h"

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "stir/json_input.h"
#include "stir/passport.h"

namespace sks::server {

using stir::RequestError;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The media type of a header value, lower-cased, without parameters.
std::string media_type(std::string_view value) {
  return lower(trim(value.substr(0, value.find(';'))));
}

}  // namespace

bool accepts_json(std::string_view accept) {
  std::size_t start = 0;
  while (start <= accept.size()) {
    const std::size_t end = std::min(accept.find(',', start), accept.size());
    const std::string_view item = accept.substr(start, end - start);
    const std::string type = media_type(item);
    if (type == "application/json" || type == "application/*" || type == "*/*") {
      // q=0 means "not acceptable" (RFC 9110 section 12.4.2).
      const std::string params = lower(item.substr(std::min(item.find(';'), item.size())));
      const auto q = params.find("q=");
      if (q == std::string::npos) return true;
      const std::string value(trim(std::string_view(params).substr(q + 2)));
      if (value.empty() || std::strtod(value.c_str(), nullptr) > 0.0) return true;
    }
    start = end + 1;
  }
  return false;
}

void check_json_headers(bool has_content_length, const std::string* content_type,
                        const std::string* accept) {
  if (!has_content_length) throw RequestError::missing_content_length();
  if (content_type == nullptr || media_type(*content_type) != "application/json") {
    throw RequestError::unsupported_media_type("application/json");
  }
  if (accept != nullptr && !trim(*accept).empty() && !accepts_json(*accept)) {
    throw RequestError::not_acceptable(*accept);
  }
}

namespace {

using nlohmann::json;

// What the reader kept of one value a rule reads: its kind, and a string's
// or an integer's value.
struct Seen {
  enum class Kind : std::uint8_t { kAbsent, kNull, kString, kInteger, kObject, kArray, kOther };
  Kind kind = Kind::kAbsent;
  std::string text;         // kString
  std::int64_t number = 0;  // kInteger (a JSON integer above INT64_MAX wraps, as nlohmann's get<>)
  bool given() const { return kind != Kind::kAbsent && kind != Kind::kNull; }
};

// The signing request read straight from nlohmann's parser events, with no
// tree: a tree of a 100-byte body cost a std::map node and a string per
// member (issue 20). The JSON rules are stir::parse_json_input's (depth
// limit, no member repeated in one object, anywhere in the body); then
// finish() applies the ATIS rules in the order and with the words of the
// tree reader this replaced, whatever order the members came in
// (sign_request_fuzz checks every input against that reader).
//
// Each open object or array has a frame saying what it is: the body, the
// signingRequest object, its orig or dest object, dest's tn array, or
// anything else (read only for the JSON rules). A name a frame's rules
// read is a bit in the frame; any other name goes into a set made for the
// frame only when such a name comes.
class SigningRequestReader {
 public:
  explicit SigningRequestReader(std::size_t max_depth) { problem_.max_depth = max_depth; }

  const stir::JsonProblem& problem() const { return problem_; }

  bool null() { return scalar(Seen::Kind::kNull); }
  bool boolean(bool) { return scalar(Seen::Kind::kOther); }
  bool number_integer(json::number_integer_t v) {
    number_ = v;
    return scalar(Seen::Kind::kInteger);
  }
  bool number_unsigned(json::number_unsigned_t v) {
    number_ = static_cast<std::int64_t>(v);
    return scalar(Seen::Kind::kInteger);
  }
  bool number_float(json::number_float_t, const json::string_t&) {
    return scalar(Seen::Kind::kOther);
  }
  bool string(json::string_t& v) {
    string_ = &v;
    return scalar(Seen::Kind::kString);
  }
  bool binary(json::binary_t&) { return scalar(Seen::Kind::kOther); }
  bool start_object(std::size_t) { return open(false); }
  bool start_array(std::size_t) { return open(true); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& name) {
    Frame& frame = frames_.back();
    pending_ = member_of(frame.role, name);
    if (pending_ != Member::kOther) {
      const auto bit = static_cast<std::uint8_t>(1U << static_cast<unsigned>(pending_));
      if ((frame.seen & bit) != 0) return repeated(name);
      frame.seen |= bit;
      return true;
    }
    if (!frame.names) frame.names = std::make_unique<std::set<std::string, std::less<>>>();
    if (!frame.names->insert(name).second) return repeated(name);
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    if (problem_.problem == stir::JsonProblem::Problem::kNone) {
      problem_.problem = stir::JsonProblem::Problem::kSyntax;
    }
    return false;
  }

  // The claims, after a parse without a problem: read_claims's rules.
  void finish(const Profile& profile, std::int64_t now, std::int64_t max_skew,
              stir::ShakenClaims& claims) {
    if (!body_is_object_ || request_.kind == Seen::Kind::kAbsent) {
      throw RequestError::missing_parameter("signingRequest");
    }
    if (request_.kind != Seen::Kind::kObject) {
      throw RequestError::invalid_value("signingRequest", "must be an object");
    }

    if (!attest_.given()) throw RequestError::missing_parameter("attest");
    if (attest_.kind != Seen::Kind::kString ||
        (attest_.text != "A" && attest_.text != "B" && attest_.text != "C")) {
      throw RequestError::invalid_value("attest", "must be \"A\", \"B\" or \"C\"");
    }
    claims.attest = std::move(attest_.text);

    if (!orig_.given()) throw RequestError::missing_parameter("orig");
    if (orig_.kind != Seen::Kind::kObject || orig_tn_.kind != Seen::Kind::kString) {
      throw RequestError::invalid_value("orig", "must be {\"tn\":\"<canonical TN>\"}");
    }
    claims.orig_tn = std::move(orig_tn_.text);
    if (!stir::is_canonical_tn(claims.orig_tn)) {
      throw RequestError::invalid_value("orig",
                                        "orig.tn must be digits only, country code included");
    }

    if (!dest_.given()) throw RequestError::missing_parameter("dest");
    if (dest_.kind != Seen::Kind::kObject || dest_tn_.kind != Seen::Kind::kArray ||
        dest_tns_ == 0) {
      throw RequestError::invalid_value("dest", "must be {\"tn\":[\"<canonical TN>\", ...]}");
    }
    if (dest_tns_ > kMaxDestTns) {
      throw RequestError::invalid_value(
          "dest", "more than " + std::to_string(kMaxDestTns) + " dest.tn entries");
    }
    if (dest_tn_bad_) {
      throw RequestError::invalid_value("dest", "dest.tn entries must be digits only");
    }
    claims.dest_tn = std::move(dest_tn_values_);

    if (iat_.given()) {
      if (iat_.kind != Seen::Kind::kInteger) {
        throw RequestError::invalid_value("iat", "must be an integer NumericDate");
      }
      claims.iat = iat_.number;
      if (claims.iat > now + max_skew || claims.iat < now - max_skew) {
        throw RequestError::invalid_value(
            "iat", "more than " + std::to_string(max_skew) + " s from the server's clock");
      }
    } else {
      claims.iat = now;
    }

    if (origid_.given()) {
      if (origid_.kind != Seen::Kind::kString || !stir::is_uuid(origid_.text)) {
        throw RequestError::invalid_value("origid", "must be a UUID");
      }
      claims.origid = std::move(origid_.text);
    } else if (!profile.origid.empty()) {
      claims.origid = profile.origid;
    } else {
      throw RequestError::missing_parameter("origid");
    }
  }

 private:
  // What an open object or array is.
  enum class Role : std::uint8_t { kBody, kRequest, kOrig, kDest, kDestTn, kOther };
  // The members the rules read, each within its own role's object.
  enum class Member : std::uint8_t {
    kSigningRequest,  // in the body
    kAttest,          // in signingRequest
    kOrig,
    kDest,
    kIat,
    kOrigid,
    kTn,  // in orig or dest
    kOther,
  };
  struct Frame {
    Role role;
    bool array;
    std::uint8_t seen = 0;  // the Members named in this object so far, as bits
    std::unique_ptr<std::set<std::string, std::less<>>> names;  // the other names
  };

  static Member member_of(Role role, std::string_view name) {
    switch (role) {
      case Role::kBody:
        return name == "signingRequest" ? Member::kSigningRequest : Member::kOther;
      case Role::kRequest:
        if (name == "attest") return Member::kAttest;
        if (name == "orig") return Member::kOrig;
        if (name == "dest") return Member::kDest;
        if (name == "iat") return Member::kIat;
        if (name == "origid") return Member::kOrigid;
        return Member::kOther;
      case Role::kOrig:
      case Role::kDest:
        return name == "tn" ? Member::kTn : Member::kOther;
      default:
        return Member::kOther;
    }
  }

  // Where the value of the member named last in the innermost object goes
  // (nullptr: a value no rule reads).
  Seen* slot() {
    const Role role = frames_.back().role;
    switch (pending_) {
      case Member::kSigningRequest:
        return &request_;
      case Member::kAttest:
        return &attest_;
      case Member::kOrig:
        return &orig_;
      case Member::kDest:
        return &dest_;
      case Member::kIat:
        return &iat_;
      case Member::kOrigid:
        return &origid_;
      case Member::kTn:
        return role == Role::kOrig ? &orig_tn_ : &dest_tn_;
      default:
        return nullptr;
    }
  }

  // An element of dest.tn: counted, and kept while every one is a canonical TN.
  void dest_tn_element(Seen::Kind kind) {
    ++dest_tns_;
    if (kind != Seen::Kind::kString || !stir::is_canonical_tn(*string_)) {
      dest_tn_bad_ = true;
    } else if (!dest_tn_bad_ && dest_tn_values_.size() < kMaxDestTns) {
      dest_tn_values_.push_back(std::move(*string_));
    }
  }

  bool scalar(Seen::Kind kind) {
    if (frames_.empty()) return true;  // a body that is one scalar: no signingRequest
    const Frame& parent = frames_.back();
    if (parent.array) {
      if (parent.role == Role::kDestTn) dest_tn_element(kind);
      return true;
    }
    if (Seen* seen = slot()) {
      seen->kind = kind;
      if (kind == Seen::Kind::kString) seen->text = std::move(*string_);
      if (kind == Seen::Kind::kInteger) seen->number = number_;
    }
    return true;
  }

  bool open(bool array) {
    // The outermost object or array is depth 1 (stir::parse_json_input).
    if (frames_.size() >= problem_.max_depth) {
      problem_.problem = stir::JsonProblem::Problem::kTooDeep;
      return false;
    }
    Role role = Role::kOther;
    if (frames_.empty()) {
      body_is_object_ = !array;
      if (!array) role = Role::kBody;
    } else if (frames_.back().array) {
      if (frames_.back().role == Role::kDestTn) dest_tn_element(Seen::Kind::kOther);
    } else if (Seen* seen = slot()) {
      seen->kind = array ? Seen::Kind::kArray : Seen::Kind::kObject;
      role = role_of(pending_, frames_.back().role, array);
    }
    frames_.push_back(Frame{role, array, 0, nullptr});
    return true;
  }

  // The role of an object or array that is the value of `member`.
  static Role role_of(Member member, Role parent, bool array) {
    if (array) return member == Member::kTn && parent == Role::kDest ? Role::kDestTn : Role::kOther;
    switch (member) {
      case Member::kSigningRequest:
        return Role::kRequest;
      case Member::kOrig:
        return Role::kOrig;
      case Member::kDest:
        return Role::kDest;
      default:
        return Role::kOther;
    }
  }

  bool close() {
    frames_.pop_back();
    return true;
  }

  bool repeated(const std::string& name) {
    problem_.problem = stir::JsonProblem::Problem::kDuplicate;
    problem_.member = name;
    return false;
  }

  stir::JsonProblem problem_;
  std::vector<Frame> frames_;         // the objects and arrays not yet closed
  Member pending_ = Member::kOther;   // the member named last
  json::string_t* string_ = nullptr;  // the string event's value, while it is handled
  std::int64_t number_ = 0;           // the integer event's value, while it is handled

  bool body_is_object_ = false;
  Seen request_, attest_, orig_, orig_tn_, dest_, dest_tn_, iat_, origid_;
  std::size_t dest_tns_ = 0;  // dest.tn's elements, whatever they are
  bool dest_tn_bad_ = false;  // one of them is not a canonical TN
  std::vector<std::string> dest_tn_values_;
};

}  // namespace

stir::ShakenClaims read_signing_request(std::string_view body, const Profile& profile,
                                        std::int64_t now, std::int64_t max_iat_skew_s) {
  SigningRequestReader reader(stir::kMaxJsonDepth);
  const bool parsed = json::sax_parse(body, &reader, json::input_format_t::json,
                                      /*strict=*/true, /*ignore_comments=*/false);
  stir::JsonProblem problem = reader.problem();
  if (!parsed && problem.problem == stir::JsonProblem::Problem::kNone) {
    problem.problem = stir::JsonProblem::Problem::kSyntax;
  }
  if (problem.problem == stir::JsonProblem::Problem::kDuplicate) {
    throw RequestError::invalid_value(problem.member, "member appears more than once");
  }
  if (problem.problem != stir::JsonProblem::Problem::kNone) {
    throw RequestError::parse_failure(problem.why());
  }
  stir::ShakenClaims claims;
  reader.finish(profile, now, max_iat_skew_s, claims);
  return claims;
}

SigningResult sign_request(std::string_view body, const std::vector<std::string>& client_names,
                           const KeyRing& ring, std::int64_t now, std::int64_t max_iat_skew_s) {
  SigningResult result;
  // Authorisation before anything else: an unknown client learns nothing.
  result.profile = ring.profile_for(client_names);
  if (result.profile == nullptr) {
    throw RequestError::forbidden(client_names.empty() ? std::string("no client identity")
                                                       : "client '" + client_names.front() +
                                                             "' has no signing profile");
  }
  if (body.empty()) throw RequestError::missing_body();
  stir::ShakenClaims claims = read_signing_request(body, *result.profile, now, max_iat_skew_s);
  if (!result.profile->attest.contains(claims.attest)) {
    throw RequestError::forbidden("attestation level '" + claims.attest +
                                  "' is not permitted for profile '" + result.profile->name + "'");
  }
  if (!result.profile->key) {  // its key was compromised; no new one is active yet
    throw RequestError(RequestError::Problem::kUnavailable, result.profile->name, "no active key");
  }
  const SigningKey& key = *result.profile->key;
  stir::PassportHeader header;
  header.x5u = key.x5u;
  const std::string jws = stir::sign_passport(header, claims, *key.signer);
  // The one answer shape around the escaped identity: the same bytes as
  // dumping the whole object, without building its tree for every request.
  const std::string identity = stir::compose_identity_header(jws, key.x5u);
  result.response_body.reserve(identity.size() + 48);
  result.response_body = R"({"signingResponse":{"identity":)";
  stir::append_canonical_json_string(result.response_body, identity);
  result.response_body += "}}";
  // What the audit record needs, as signed (no parsing it back).
  result.signing_input.assign(jws, 0, jws.rfind('.'));
  result.claims = std::move(claims);
  return result;
}

}  // namespace sks::server
