// A key rotation under load, the one long test (label "load"): 30 s of
// signing requests from eight keep-alive mutual-TLS clients against
// `sks serve`, with `sks rotate run` activating a new key (and reloading
// the server) in the middle.
//
// What this file proves:
//  - not one request fails across the switch (every answer is 200);
//  - every token verifies with our STI-VS (stir::vs::Verifier), which
//    fetches the chain at the token's own x5u from the TN-CR over HTTPS:
//    a sample while the load runs, then every token, and last the tokens
//    signed in the two seconds before the switch with a fresh verifier (no
//    cache) while the old key drains, so its URL must still be served;
//  - after the switch the server signs with the new key only.
// The request rate is measured and printed (RecordProperty "requests_per_s"),
// not asserted: the machine is shared.
#include <atomic>
#include <mutex>
#include <thread>

#include "rotation_fixture.h"
#include "stack_verifier.h"

namespace stir::testing {
namespace {

constexpr auto kRunFor = std::chrono::seconds(30);
constexpr int kClients = 8;

struct Signed {
  std::string identity;
  std::string orig;
  std::int64_t iat = 0;
  Clock::time_point at;
};

class RotationLoadTest : public RotationStackTest {
 protected:
  vs::VerifierConfig verifier_config() const {
    return stack_verifier_config(dir.path(), tncr_port);
  }

  static std::string verify(vs::Verifier& verifier, const Signed& s) {
    vs::VerificationRequest request;
    request.identity = s.identity;
    request.from_tn = s.orig;
    request.to_tns = {"12155550131"};
    request.now = s.iat + 1;  // what is checked here is the key and x5u, not freshness
    const auto result = verifier.verify(request);
    return result.passed()
               ? ""
               : result.error_case_id() + " for " + info_of(s.identity) + ": " + result.detail;
  }
};

TEST_F(RotationLoadTest, ActivationUnderLoadFailsNoRequestAndEveryTokenVerifies) {
  ASSERT_EQ(rotate({"run"}).exit_code, 0);
  const std::string old_x5u = state_keys()[0]["x5u"];
  const int port = start_sks();
  ASSERT_GT(port, 0);

  std::mutex mutex;
  std::vector<Signed> tokens;
  std::atomic<int> failures{0};
  std::string first_failure;
  std::atomic<bool> stop{false};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = sks_client(port);
      client->set_keep_alive(true);
      for (long n = 0; !stop.load() && Clock::now() - start < kRunFor; ++n) {
        Signed s;
        s.orig = std::to_string(12150000000LL + c * 10000000LL + n % 10000000);
        s.iat = std::time(nullptr);
        const std::string body = json{{"signingRequest",
                                       {{"attest", "A"},
                                        {"dest", {{"tn", {"12155550131"}}}},
                                        {"iat", s.iat},
                                        {"orig", {{"tn", s.orig}}}}}}
                                     .dump();
        const auto response = client->Post("/stir/v1/signing", body, "application/json");
        if (!response || response->status != 200) {
          if (failures++ == 0) {
            std::lock_guard lock(mutex);
            first_failure = response ? std::to_string(response->status) + " " + response->body
                                     : httplib::to_string(response.error());
          }
          continue;
        }
        s.identity = json::parse(response->body)["signingResponse"]["identity"];
        s.at = Clock::now();
        std::lock_guard lock(mutex);
        tokens.push_back(std::move(s));
      }
    });
  }

  // While the load runs: a sample of fresh tokens verified as they come.
  vs::Verifier verifier(verifier_config());
  std::atomic<int> sampled{0};
  std::string sample_failure;
  std::thread sampler([&] {
    while (!stop.load() && Clock::now() - start < kRunFor) {
      Signed s;
      {
        std::lock_guard lock(mutex);
        if (!tokens.empty()) s = tokens.back();
      }
      if (s.identity.empty()) {
        std::this_thread::yield();
        continue;
      }
      const std::string problem = verify(verifier, s);
      if (!problem.empty() && sample_failure.empty()) sample_failure = problem;
      ++sampled;
    }
  });

  // The switch, half way: a new key is issued, published and activated.
  // The schedule of the run, not a wait for a condition.
  std::this_thread::sleep_until(start + kRunFor / 2);
  // No ASSERT while the clients run: they must be joined.
  const auto ran = rotate({"run"}, std::time(nullptr) + 336 * kDay);
  EXPECT_EQ(ran.exit_code, 0) << ran.describe();
  const json keys = state_keys();
  const std::string new_x5u = keys.size() > 1 ? keys[1]["x5u"].get<std::string>() : "";
  sks->signal(SIGHUP);  // a second reload changes nothing

  for (auto& t : clients) t.join();
  stop = true;
  sampler.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double rate = static_cast<double>(tokens.size()) / seconds;
  RecordProperty("requests_per_s", static_cast<int>(rate));
  std::printf("rotation under load: %zu tokens in %.1f s = %.0f requests/s over %d mTLS clients\n",
              tokens.size(), seconds, rate, kClients);

  EXPECT_EQ(failures.load(), 0) << first_failure;
  EXPECT_GT(sampled.load(), 0);
  EXPECT_EQ(sample_failure, "");
  std::size_t old_count = 0, new_count = 0;
  for (const auto& s : tokens) {
    const std::string x5u = info_of(s.identity);
    old_count += x5u == old_x5u;
    new_count += x5u == new_x5u;
  }
  EXPECT_EQ(old_count + new_count, tokens.size());
  EXPECT_GT(old_count, 0u);
  EXPECT_GT(new_count, 0u);
  // Every token, against the chain at its own x5u.
  std::string problem;
  for (const auto& s : tokens) {
    problem = verify(verifier, s);
    if (!problem.empty()) break;
  }
  EXPECT_EQ(problem, "");
  // The tokens signed just before the switch (the last two seconds of the
  // old key: `rotate run` reloads the server itself), with no cache: the
  // old key is draining and its URL still answers.
  Clock::time_point last_old = start;
  for (const auto& s : tokens) {
    if (info_of(s.identity) == old_x5u && s.at > last_old) last_old = s.at;
  }
  vs::Verifier fresh(verifier_config());
  std::size_t late = 0;
  for (const auto& s : tokens) {
    if (s.at > last_old - std::chrono::seconds(2) && info_of(s.identity) == old_x5u) {
      ++late;
      EXPECT_EQ(verify(fresh, s), "");
    }
  }
  EXPECT_GT(late, 0u);
  EXPECT_EQ(state_keys()[0]["state"], "draining");
}

}  // namespace
}  // namespace stir::testing
