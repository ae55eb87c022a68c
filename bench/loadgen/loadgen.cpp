// stir_loadgen: HTTPS load over keep-alive connections that can present a
// client certificate, so mutual TLS is in the measured path (wrk cannot).
//
//   saturation (default): each connection sends its next request as soon as
//     the previous answer arrives; the rate is what the server sustains.
//   fixed rate (--rate R): open loop, R requests/s in total, each connection
//     on its own schedule; latency runs from the *intended* send time, so a
//     stalled server shows up in the percentiles instead of slowing the
//     generator down (no coordinated omission).
//
// Only answers to requests intended after the warm-up and completed before
// the end are counted. Exit status: 0 when every counted request got a 2xx
// answer (containing --expect-substring, if given) and at least one did;
// 1 otherwise; 64 for a bad command line; 74 when a file cannot be read.
#include <openssl/ssl.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "histogram.h"
#include "stir/exit_codes.h"
#include "stir/files.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using stir::bench::LatencyHistogram;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

struct Options {
  std::string url;
  std::string method = "GET";
  std::vector<std::string> headers;
  std::string body_file;
  std::string cert, key, cacert;
  std::string expect;
  int connections = 8;
  int threads = 1;
  double seconds = 10;
  double warmup = 1;
  double rate = 0;  // 0: saturation
  double timeout = 5;
  bool json = false;
  std::string sample;  // --sample FILE: some 2xx bodies, one per line
};

struct Target {
  std::string host, port, path;
};

// https://host[:port][/path]; anything else is a usage error.
Target parse_url(const std::string& url) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) throw CLI::ValidationError("url", "only https:// URLs");
  const std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  Target t{authority, "443", slash == std::string::npos ? "/" : rest.substr(slash)};
  if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
    t.host = authority.substr(0, colon);
    t.port = authority.substr(colon + 1);
  }
  if (t.host.empty() || t.port.empty()) throw CLI::ValidationError("url", "no host or port");
  return t;
}

// The run's fixed schedule, shared read-only by every connection.
struct Plan {
  Target target;
  tcp::resolver::results_type endpoints;
  http::request<http::string_body> request;
  std::string expect;
  Clock::time_point start, measure_from, end;
  Clock::duration interval{};  // per connection; zero in saturation mode
  Clock::duration timeout{};
  int connections = 0;
};

// One per thread; connections on that thread's io_context share it.
struct Stats {
  LatencyHistogram latency;
  std::uint64_t ok = 0, non_2xx = 0, errors = 0, unexpected_body = 0;
  // Every answer read, warm-up and late ones included: the divisor for the
  // server's CPU time over the whole run (bench/run.sh).
  std::uint64_t answered = 0;
  std::vector<std::string> sample;  // every kSampleEvery-th 2xx body, at most kSampleMax
};

constexpr std::uint64_t kSampleEvery = 997;
constexpr std::size_t kSampleMax = 8;

asio::awaitable<void> run_connection(const Plan& plan, ssl::context& tls, Stats& stats, int index) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const bool fixed_rate = plan.interval != Clock::duration::zero();
  // Connections start staggered over one interval so the total rate is even.
  Clock::time_point next = plan.start + plan.interval * index / plan.connections;
  auto measured = [&](Clock::time_point intended) { return intended >= plan.measure_from; };
  auto pause = [&](Clock::time_point until) -> asio::awaitable<void> {
    timer.expires_at(until);
    co_await timer.async_wait(kUseTuple);
  };

  while (Clock::now() < plan.end) {
    beast::ssl_stream<beast::tcp_stream> stream(executor, tls);
    boost::system::error_code not_ip;
    asio::ip::make_address(plan.target.host, not_ip);
    // SNI for names only (RFC 6066); IP literals are checked against IP SANs.
    if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), plan.target.host.c_str()))
      throw std::runtime_error("cannot set SNI");
    stream.set_verify_callback(ssl::host_name_verification(plan.target.host));
    const auto attempt = Clock::now();
    beast::get_lowest_layer(stream).expires_after(plan.timeout);
    auto [error, endpoint] =
        co_await beast::get_lowest_layer(stream).async_connect(plan.endpoints, kUseTuple);
    if (!error)
      std::tie(error) = co_await stream.async_handshake(ssl::stream_base::client, kUseTuple);
    if (error) {
      if (measured(attempt)) ++stats.errors;
      co_await pause(std::min(Clock::now() + std::chrono::milliseconds(10), plan.end));
      continue;
    }
    beast::flat_buffer buffer;
    for (bool alive = true; alive;) {
      Clock::time_point intended = Clock::now();
      if (fixed_rate) {
        if (next > intended) co_await pause(next);
        intended = next;
        next += plan.interval;
      }
      if (intended >= plan.end) break;
      beast::get_lowest_layer(stream).expires_after(plan.timeout);
      http::response<http::string_body> response;
      auto [error, written] = co_await http::async_write(stream, plan.request, kUseTuple);
      if (!error)
        std::tie(error, std::ignore) =
            co_await http::async_read(stream, buffer, response, kUseTuple);
      const auto done = Clock::now();
      if (!error) ++stats.answered;
      if (!measured(intended) || done > plan.end) {
        alive = !error && response.keep_alive();
        continue;
      }
      if (error) {
        ++stats.errors;
        break;
      }
      stats.latency.record(
          std::chrono::duration_cast<std::chrono::nanoseconds>(done - intended).count());
      if (response.result_int() / 100 != 2) {
        ++stats.non_2xx;
      } else if (!plan.expect.empty() && response.body().find(plan.expect) == std::string::npos) {
        ++stats.unexpected_body;
      } else {
        ++stats.ok;
        if (stats.ok % kSampleEvery == 1 && stats.sample.size() < kSampleMax)
          stats.sample.push_back(response.body());
      }
      alive = response.keep_alive();
    }
  }
}

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

}  // namespace

int main(int argc, char** argv) {
  stir::ignore_broken_pipes();  // see stir/exit_codes.h
  Options o;
  CLI::App app{"HTTPS load generator with keep-alive and client certificates"};
  app.add_option("url", o.url, "https://host:port/path")->required();
  app.add_option("-X,--method", o.method, "HTTP method");
  app.add_option("-H,--header", o.headers, "request header 'Name: value' (repeatable)");
  app.add_option("--body-file", o.body_file, "request body, read once")->check(CLI::ExistingFile);
  app.add_option("--cert", o.cert, "client certificate chain (PEM), for mutual TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--key", o.key, "client private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--cacert", o.cacert, "CA file to verify the server (default: system roots)")
      ->check(CLI::ExistingFile);
  app.add_option("-c,--connections", o.connections, "keep-alive connections")
      ->check(CLI::Range(1, 10000));
  app.add_option("-t,--threads", o.threads, "threads, one io_context each")
      ->check(CLI::Range(1, 256));
  app.add_option("-d,--seconds", o.seconds, "measured duration")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "seconds of load before measuring")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-R,--rate", o.rate, "fixed total rate in requests/s (default: saturation)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout", o.timeout, "seconds per connect, handshake or request")
      ->check(CLI::PositiveNumber);
  app.add_option("--expect-substring", o.expect, "a 2xx body must contain this");
  app.add_flag("--json", o.json, "print the result as JSON");
  app.add_option(
      "--sample", o.sample,
      "write some 2xx bodies (1 in 997 per thread, at most 8 each) to FILE, one per line");
  Target target;
  try {
    app.parse(argc, argv);
    target = parse_url(o.url);
    if (o.cert.empty() != o.key.empty())
      throw CLI::ValidationError("--cert/--key", "give both or neither");
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 64;
  }

  Plan plan;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  ssl::context tls(ssl::context::tls_client);
  try {
    tls.set_verify_mode(ssl::verify_peer);
    if (o.cacert.empty()) {
      tls.set_default_verify_paths();
    } else {
      tls.load_verify_file(o.cacert);
    }
    if (!o.cert.empty()) {
      tls.use_certificate_chain_file(o.cert);
      tls.use_private_key_file(o.key, ssl::context::pem);
    }
    plan.target = target;
    plan.request.method_string(o.method);
    plan.request.target(target.path);
    plan.request.version(11);
    plan.request.set(http::field::host, target.host);
    plan.request.set(http::field::user_agent, "stir_loadgen");
    for (const auto& header : o.headers) {
      const auto colon = header.find(':');
      if (colon == std::string::npos) throw std::runtime_error("header without ':': " + header);
      const auto value = header.find_first_not_of(' ', colon + 1);
      plan.request.set(header.substr(0, colon),
                       value == std::string::npos ? "" : header.substr(value));
    }
    if (!o.body_file.empty()) plan.request.body() = stir::read_file(o.body_file);
    plan.request.prepare_payload();
    plan.expect = o.expect;
    plan.connections = o.connections;
    plan.timeout =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout));
    if (o.rate > 0)
      plan.interval = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(o.connections / o.rate));
    for (int t = 0; t < o.threads; ++t) contexts.push_back(std::make_unique<asio::io_context>(1));
    plan.endpoints = tcp::resolver(*contexts[0]).resolve(target.host, target.port);
  } catch (const std::exception& e) {
    std::cerr << "stir_loadgen: " << e.what() << "\n";
    return 74;
  }

  using Seconds = std::chrono::duration<double>;
  plan.start = Clock::now();
  plan.measure_from = plan.start + std::chrono::duration_cast<Clock::duration>(Seconds(o.warmup));
  plan.end = plan.measure_from + std::chrono::duration_cast<Clock::duration>(Seconds(o.seconds));
  std::vector<Stats> stats(o.threads);
  std::string failure;
  for (int i = 0; i < o.connections; ++i) {
    const int t = i % o.threads;
    asio::co_spawn(*contexts[t], run_connection(plan, tls, stats[t], i),
                   [&failure](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& error) {
                       failure = error.what();
                     }
                   });
  }
  std::vector<std::thread> workers;
  for (int t = 1; t < o.threads; ++t) workers.emplace_back([&, t] { contexts[t]->run(); });
  contexts[0]->run();
  for (auto& worker : workers) worker.join();
  if (!failure.empty()) {
    std::cerr << "stir_loadgen: " << failure << "\n";
    return 70;
  }

  Stats total;
  for (const auto& s : stats) {
    total.latency.merge(s.latency);
    total.ok += s.ok;
    total.non_2xx += s.non_2xx;
    total.errors += s.errors;
    total.unexpected_body += s.unexpected_body;
    total.answered += s.answered;
    total.sample.insert(total.sample.end(), s.sample.begin(), s.sample.end());
  }
  if (!o.sample.empty()) {
    std::ofstream out(o.sample, std::ios::binary);
    for (const auto& body : total.sample) {
      if (body.find('\n') == std::string::npos) out << body << "\n";
    }
  }
  const auto& h = total.latency;
  const double rate = static_cast<double>(h.count()) / o.seconds;
  const bool mutual = !o.cert.empty();
  if (o.json) {
    const nlohmann::json report = {{"url", o.url},
                                   {"mode", o.rate > 0 ? "fixed-rate" : "saturation"},
                                   {"target_rate_per_s", o.rate},
                                   {"connections", o.connections},
                                   {"threads", o.threads},
                                   {"mutual_tls", mutual},
                                   {"seconds", o.seconds},
                                   {"requests", h.count()},
                                   {"answered", total.answered},
                                   {"rate_per_s", rate},
                                   {"ok", total.ok},
                                   {"non_2xx", total.non_2xx},
                                   {"errors", total.errors},
                                   {"unexpected_body", total.unexpected_body},
                                   {"latency_ms",
                                    {{"p50", ms(h.percentile(50))},
                                     {"p90", ms(h.percentile(90))},
                                     {"p99", ms(h.percentile(99))},
                                     {"p99_9", ms(h.percentile(99.9))},
                                     {"max", ms(h.max())}}}};
    std::cout << report.dump(2) << "\n";
  } else {
    std::printf("%s %s, %d connections, %d thread(s), %s\n", o.method.c_str(), o.url.c_str(),
                o.connections, o.threads, mutual ? "mutual TLS" : "no client certificate");
    if (o.rate > 0) {
      std::printf("fixed rate %.0f/s; latency from the intended send time\n", o.rate);
    } else {
      std::printf("saturation\n");
    }
    std::printf("%10s %10s %8s %8s %10s %9s %9s %9s %9s %9s\n", "requests", "req/s", "non-2xx",
                "errors", "bad body", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
    std::printf("%10llu %10.0f %8llu %8llu %10llu %9.3f %9.3f %9.3f %9.3f %9.3f\n",
                static_cast<unsigned long long>(h.count()), rate,
                static_cast<unsigned long long>(total.non_2xx),
                static_cast<unsigned long long>(total.errors),
                static_cast<unsigned long long>(total.unexpected_body), ms(h.percentile(50)),
                ms(h.percentile(90)), ms(h.percentile(99)), ms(h.percentile(99.9)), ms(h.max()));
  }
  const bool clean =
      total.ok > 0 && total.non_2xx == 0 && total.errors == 0 && total.unexpected_body == 0;
  return clean ? 0 : 1;
}
