// Application traffic for simulated connections: deterministic byte streams
// that the receiving side can verify without storing them, and a bulk
// sender/receiver application.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/time.h"
#include "core/conn/connection.h"

namespace buckwild::sim {

// Byte i of the stream with seed s is byte (i mod 8) of mix64(s ^ (i / 8)).
void fill_pattern(std::uint64_t seed, std::uint64_t offset, MutableBytes out);

// What an application does with one connection.
class App {
 public:
  virtual ~App() = default;
  // Called whenever the host services its connections.
  virtual void on_service(conn::Connection& c, TimePoint now) = 0;
  virtual void on_event(conn::Connection& c, const conn::Event& e, TimePoint now) = 0;
};

struct BulkAppConfig {
  std::uint64_t send_bytes = 0;       // pattern bytes to send
  std::uint64_t send_seed = 1;
  std::uint64_t expect_bytes = 0;     // pattern bytes expected from the peer
  std::uint64_t expect_seed = 2;
  bool shutdown_after_send = true;    // FIN once everything was handed in
  bool reading = true;                // false: never call recv()
  std::size_t chunk = 64 * 1024;      // bytes per send()/recv() call
};

// Sends a pattern stream, reads and verifies the peer's, records events.
class BulkApp final : public App {
 public:
  explicit BulkApp(const BulkAppConfig& config);

  void on_service(conn::Connection& c, TimePoint now) override;
  void on_event(conn::Connection& c, const conn::Event& e, TimePoint now) override;

  void set_reading(bool reading) { config_.reading = reading; }

  std::uint64_t sent() const { return sent_; }
  std::uint64_t received() const { return received_; }
  // The first offset at which received bytes differed from the pattern, or
  // UINT64_MAX if none did.
  std::uint64_t first_mismatch() const { return first_mismatch_; }
  bool received_all() const { return received_ == config_.expect_bytes && first_mismatch_ == kNoMismatch; }
  bool saw(conn::EventKind kind) const;
  ErrorCode reason(conn::EventKind kind) const;
  bool eof() const { return eof_; }
  bool closed() const { return saw(conn::EventKind::kClosed); }
  TimePoint established_at() const { return established_at_; }
  TimePoint finished_at() const { return finished_at_; }  // all expected bytes read
  const std::vector<conn::Event>& events() const { return events_; }
  // The connection's statistics as last seen (kept after it is destroyed).
  const conn::ConnectionStats& last_stats() const { return stats_; }
  // Throughput samples: (time, cumulative bytes received).
  std::uint64_t received_at_or_before(TimePoint t) const;

  static constexpr std::uint64_t kNoMismatch = ~std::uint64_t{0};

 private:
  BulkAppConfig config_;
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint8_t> expected_;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t first_mismatch_ = kNoMismatch;
  bool shut_ = false;
  bool eof_ = false;
  TimePoint established_at_ = kNever;
  TimePoint finished_at_ = kNever;
  std::vector<conn::Event> events_;
  conn::ConnectionStats stats_;
  std::vector<std::pair<TimePoint, std::uint64_t>> progress_;
  TimePoint last_progress_sample_ = 0;
};

}  // namespace buckwild::sim
