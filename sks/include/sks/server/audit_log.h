// The audit log: one JSON line per signing request, signed or refused,
// written by a thread of its own so that no request ever waits for a disk.
//
// A request hands over an AuditRecord (a few strings, moved) to a bounded
// queue and goes on; when the queue is full the record is dropped and
// counted (sks_audit_records_total{result="dropped"}), never waited for.
// The request thread hands over the claims as it signed them and the JWS
// signing input (BASE64URL(header) "." BASE64URL(payload)); the writer
// hashes that (SHA-256), reads a refusal's claims from the request body
// as sent, formats and appends the line:
//
//   {"attest":"A","client":"sbc1.example.net","dest":["12155550131"],
//    "iat":1795720950,"key":"shaken-2026-11","orig":"12155550121",
//    "origid":"de305d54-...","outcome":"ok","profile":"subscribers-east",
//    "request_id":"...","signing_input_sha256":"9f2c...","status":200,
//    "time":"2026-12-02T01:55:00.123Z","x5u":"https://cr.example.net/..."}
//
// Refusals have the same members with their status and outcome (POL4003,
// POL4029, SVC4005, ...) and no signing_input_sha256; members the request
// did not carry are absent. Only scalar claim values are copied (dest.tn:
// its scalar entries, at most kMaxDestTns), and a body is read only when
// stir::parse_json_input accepts it (depth 32, no repeated member): a
// client's arrays and objects never reach the line, so no body can make
// the writer recurse.
//
// Rotation by size: a line that would take the file past max_file_bytes
// first moves FILE.(N-1) to FILE.N, ..., FILE to FILE.1 (FILE.N is
// replaced, so at most keep_files old files remain) and starts a new FILE.
// Files are created 0600.
//
// Ownership: owns the writer thread and the open file. Threads: submit()
// and counters() are safe from any thread; the destructor writes what is
// queued, then joins the writer (it waits for a writer blocked in the file
// system). Errors: the constructor throws stir::Error (kNotFound,
// kPermission) when the file's folder is missing or not writable; write
// failures later are counted (result="failed") and reported on stderr.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "sks/config.h"
#include "stir/passport.h"

namespace sks::server {

// `time` as RFC 3339 UTC with milliseconds ("2026-12-02T05:30:24.123Z"): the
// audit log's "time" and the access and error log lines.
std::string rfc3339_millis(std::chrono::system_clock::time_point time);

// Lines for a file descriptor (the access log on stderr), written in
// batches by a thread of its own: one write() per batch of up to
// `interval`, never one per line, and no request waits for the descriptor.
// A line that would take the buffer past `max_bytes` (the reader stopped
// reading) is dropped and counted; the next batch says how many.
// Threads: write() from any thread. The destructor writes what is
// buffered, then joins the writer.
class LineWriter {
 public:
  explicit LineWriter(int fd, std::chrono::milliseconds interval = std::chrono::milliseconds(20),
                      std::size_t max_bytes = 1024 * 1024);
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Appends `line` (with its newline) to the next batch.
  void write(std::string_view line);

 private:
  void run();

  const int fd_;
  const std::chrono::milliseconds interval_;
  const std::size_t max_bytes_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;
  std::uint64_t dropped_ = 0;
  bool stopping_ = false;
  std::thread writer_;
};

struct AuditRecord {
  std::chrono::system_clock::time_point time;
  std::string request_id;
  std::string client;   // the client identity (first certificate name), "" without one
  std::string profile;  // "" when no profile was found
  std::string key;      // key label that signed (or would have)
  std::string x5u;
  int status = 0;       // HTTP status of the response
  std::string outcome;  // "ok" or the messageId
  // Signed: the claims as signed and the JWS signing input.
  std::optional<stir::ShakenClaims> claims;
  std::string signing_input;
  std::string request_body;  // refused: the body as received
};

class AuditLog {
 public:
  struct Counters {
    std::uint64_t written = 0;
    std::uint64_t dropped = 0;  // queue full: the writer fell behind
    std::uint64_t failed = 0;   // lines the file system refused
    std::uint64_t rotations = 0;
    std::uint64_t queued = 0;  // now
  };

  explicit AuditLog(const AuditConfig& config);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues the record, or drops and counts it when the queue is full.
  void submit(AuditRecord record);
  Counters counters() const;
  // sks_audit_records_total{result}, sks_audit_rotations_total,
  // sks_audit_queue_length; Prometheus text.
  std::string render_metrics() const;

  // The JSON line (without newline) the writer appends for `record`.
  static std::string format(const AuditRecord& record);

 private:
  void run();
  bool open_file();
  void append(const std::string& lines);
  void rotate();

  static constexpr std::chrono::milliseconds kBatchInterval{20};
  AuditConfig config_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<AuditRecord> queue_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> written_{0}, dropped_{0}, failed_{0}, rotations_{0};
  int fd_ = -1;                   // writer thread only
  std::uint64_t file_bytes_ = 0;  // writer thread only
  std::thread writer_;
};

}  // namespace sks::server
