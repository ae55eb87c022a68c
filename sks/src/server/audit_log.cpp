#include "sks/server/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "sks/server/signing_api.h"
#include "stir/error.h"
#include "stir/hex.h"
#include "stir/json_input.h"
#include "stir/openssl.h"

namespace sks::server {

namespace {

using nlohmann::json;
using stir::Error;
using stir::ErrorCode;

// orig, dest, attest, origid and iat from a PASSporT payload or a
// signingRequest. Only scalar values are copied (strings, numbers,
// booleans), never a client's arrays or objects: a refused request's
// members may be of any type and shape, and the line must stay small and
// flat. dest.tn keeps its string entries, at most kMaxDestTns.
void copy_claims(const json& from, json& line) {
  if (!from.is_object()) return;
  const auto tn = [&from](const char* name) -> const json* {
    const auto it = from.find(name);
    if (it == from.end() || !it->is_object()) return nullptr;
    const auto value = it->find("tn");
    return value == it->end() ? nullptr : &*value;
  };
  if (const json* orig = tn("orig"); orig != nullptr && orig->is_primitive()) line["orig"] = *orig;
  if (const json* dest = tn("dest"); dest != nullptr && dest->is_array()) {
    json entries = json::array();
    for (const json& entry : *dest) {
      if (entries.size() == kMaxDestTns) break;
      if (entry.is_primitive()) entries.push_back(entry);
    }
    line["dest"] = std::move(entries);
  } else if (dest != nullptr && dest->is_primitive()) {
    line["dest"] = *dest;
  }
  for (const char* name : {"attest", "origid", "iat"}) {
    const auto it = from.find(name);
    if (it != from.end() && !it->is_null() && it->is_primitive()) line[name] = *it;
  }
}

// A body or payload as a tree only when it is harmless (stir/json_input.h).
json parse_limited(std::string_view text) {
  stir::JsonInput input = stir::parse_json_input(text);
  return input.problem == stir::JsonInput::Problem::kNone ? std::move(input.value) : json();
}

}  // namespace

std::string rfc3339_millis(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  const auto millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() %
      1000);
  // The date and time of day change once a second: formatted then, per
  // thread (gmtime_r and snprintf for every log line cost about 1 us each).
  thread_local std::time_t cached_seconds = -1;
  thread_local char cached[64] = {};
  if (seconds != cached_seconds) {
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_seconds = seconds;
  }
  std::string text(cached);
  const char fraction[] = {'.', static_cast<char>('0' + millis / 100),
                           static_cast<char>('0' + millis / 10 % 10),
                           static_cast<char>('0' + millis % 10), 'Z'};
  text.append(fraction, sizeof fraction);
  return text;
}

LineWriter::LineWriter(int fd, std::chrono::milliseconds interval, std::size_t max_bytes)
    : fd_(fd), interval_(interval), max_bytes_(max_bytes), writer_([this] { run(); }) {}

LineWriter::~LineWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void LineWriter::write(std::string_view line) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    if (pending_.size() + line.size() > max_bytes_) {
      ++dropped_;
      return;
    }
    first = pending_.empty();
    pending_.append(line);
  }
  if (first) wake_.notify_one();  // once per batch, not per line
}

void LineWriter::run() {
  std::string batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty() || dropped_ > 0; });
    if (pending_.empty() && dropped_ == 0) return;  // stopping, everything written
    // Let the batch fill for a moment; a stop writes it at once.
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    batch.swap(pending_);
    const std::uint64_t dropped = std::exchange(dropped_, 0);
    lock.unlock();
    if (dropped > 0) {
      batch += rfc3339_millis(std::chrono::system_clock::now()) +
               " log: " + std::to_string(dropped) + " lines dropped (the reader fell behind)\n";
    }
    for (std::size_t done = 0; done < batch.size();) {
      const ssize_t n = ::write(fd_, batch.data() + done, batch.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to report it: stderr itself failed
      done += static_cast<std::size_t>(n);
    }
    batch.clear();
    lock.lock();
  }
}

std::string AuditLog::format(const AuditRecord& record) {
  json line = {{"time", rfc3339_millis(record.time)},
               {"request_id", record.request_id},
               {"status", record.status},
               {"outcome", record.outcome}};
  for (const auto& [name, value] :
       {std::pair{"client", &record.client}, std::pair{"profile", &record.profile},
        std::pair{"key", &record.key}, std::pair{"x5u", &record.x5u}}) {
    if (!value->empty()) line[name] = *value;
  }
  if (record.claims) {
    // The members copy_claims() takes from a signed payload, as signed.
    const stir::ShakenClaims& claims = *record.claims;
    line["signing_input_sha256"] = stir::hex(stir::sha256(record.signing_input));
    if (!claims.orig_tn.empty()) line["orig"] = claims.orig_tn;
    if (!claims.dest_tn.empty()) {
      const auto end = claims.dest_tn.begin() +
                       static_cast<std::ptrdiff_t>(std::min(claims.dest_tn.size(), kMaxDestTns));
      line["dest"] = std::vector<std::string>(claims.dest_tn.begin(), end);
    }
    line["attest"] = claims.attest;
    if (!claims.origid.empty()) line["origid"] = claims.origid;
    line["iat"] = claims.iat;
  } else if (!record.request_body.empty()) {
    const json body = parse_limited(record.request_body);
    if (body.is_object() && body.contains("signingRequest")) {
      copy_claims(body["signingRequest"], line);
    }
  }
  // Request bytes need not be UTF-8: U+FFFD in their place.
  return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

AuditLog::AuditLog(const AuditConfig& config) : config_(config) {
  const std::filesystem::path folder = std::filesystem::absolute(config_.file).parent_path();
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Error(ErrorCode::kNotFound, "audit.file " + config_.file + ": the folder " +
                                          folder.string() + " does not exist");
  }
  if (::access(folder.c_str(), W_OK | X_OK) != 0) {
    throw Error(ErrorCode::kPermission, "audit.file " + config_.file + ": the folder " +
                                            folder.string() + " is not writable by this user");
  }
  writer_ = std::thread([this] { run(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::submit(AuditRecord record) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= config_.queue_depth) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    first = queue_.empty() || queue_.size() + 1 == config_.queue_depth / 2;
    queue_.push_back(std::move(record));
  }
  if (first) wake_.notify_one();  // once per batch (or half a queue), not per record
}

AuditLog::Counters AuditLog::counters() const {
  Counters c;
  c.written = written_.load();
  c.dropped = dropped_.load();
  c.failed = failed_.load();
  c.rotations = rotations_.load();
  std::lock_guard lock(mutex_);
  c.queued = queue_.size();
  return c;
}

std::string AuditLog::render_metrics() const {
  const Counters c = counters();
  return "# HELP sks_audit_records_total Audit log records by result (dropped: the writer fell "
         "behind).\n"
         "# TYPE sks_audit_records_total counter\n"
         "sks_audit_records_total{result=\"written\"} " +
         std::to_string(c.written) + "\nsks_audit_records_total{result=\"dropped\"} " +
         std::to_string(c.dropped) + "\nsks_audit_records_total{result=\"failed\"} " +
         std::to_string(c.failed) +
         "\n# HELP sks_audit_rotations_total Audit log files rotated by size.\n"
         "# TYPE sks_audit_rotations_total counter\nsks_audit_rotations_total " +
         std::to_string(c.rotations) +
         "\n# HELP sks_audit_queue_length Audit records waiting for the writer.\n"
         "# TYPE sks_audit_queue_length gauge\nsks_audit_queue_length " +
         std::to_string(c.queued) + "\n";
}

// Opens (or creates, 0600) the file for appending; a FIFO or a hung file
// system blocks here, on the writer thread only.
bool AuditLog::open_file() {
  fd_ = ::open(config_.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    std::fprintf(stderr, "audit log: cannot open %s: %s\n", config_.file.c_str(),
                 std::strerror(errno));
    return false;
  }
  struct stat st {};
  file_bytes_ = ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  return true;
}

void AuditLog::rotate() {
  ::close(fd_);
  fd_ = -1;
  const std::string& base = config_.file;
  for (int i = config_.keep_files - 1; i >= 1; --i) {
    std::rename((base + "." + std::to_string(i)).c_str(),
                (base + "." + std::to_string(i + 1)).c_str());  // missing ones: ENOENT, fine
  }
  if (std::rename(base.c_str(), (base + ".1").c_str()) != 0) {
    std::fprintf(stderr, "audit log: cannot rotate %s: %s\n", base.c_str(), std::strerror(errno));
  }
  rotations_.fetch_add(1, std::memory_order_relaxed);
  open_file();
}

// Writes whole lines; a line the file system refuses is counted, not retried.
void AuditLog::append(const std::string& lines) {
  const auto count = static_cast<std::uint64_t>(std::count(lines.begin(), lines.end(), '\n'));
  if (fd_ < 0 && !open_file()) {
    failed_.fetch_add(count, std::memory_order_relaxed);
    return;
  }
  std::size_t done = 0;
  while (done < lines.size()) {
    const ssize_t n = ::write(fd_, lines.data() + done, lines.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "audit log: cannot write %s: %s\n", config_.file.c_str(),
                   std::strerror(errno));
      failed_.fetch_add(count, std::memory_order_relaxed);
      return;
    }
    done += static_cast<std::size_t>(n);
  }
  file_bytes_ += lines.size();
  written_.fetch_add(count, std::memory_order_relaxed);
}

void AuditLog::run() {
  open_file();
  std::deque<AuditRecord> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is written
      // Let the batch fill for a moment (one write per batch); a stop
      // writes it at once. A full queue drops, so the wait stays short.
      wake_.wait_for(lock, kBatchInterval,
                     [this] { return stopping_ || queue_.size() >= config_.queue_depth / 2; });
      batch.swap(queue_);
    }
    std::string lines;
    for (const AuditRecord& record : batch) {
      const std::string line = format(record) + "\n";
      const auto max = static_cast<std::uint64_t>(config_.max_file_bytes);
      if (fd_ >= 0 && file_bytes_ + lines.size() + line.size() > max &&
          file_bytes_ + lines.size() > 0) {
        append(lines);
        lines.clear();
        rotate();
      }
      lines += line;
    }
    append(lines);
    batch.clear();
  }
}

}  // namespace sks::server
