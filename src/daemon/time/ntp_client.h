// The NTP client (issue #18; docs/architecture.md "Time"): NTPv4 client mode
// to every configured server, on the event loop, never blocking it. Each
// response is checked (ntp::check_response: our random origin nonce, mode,
// stratum, leap, round trip, root distance; Kiss-o'-Death honoured), the best
// of each server's recent samples kept (ntp::ClockFilter), and the servers
// that agree selected (ntp::select_sources) only when they are a majority of
// the configured servers, so one lying or spoofed server cannot move our
// time, even when it is the last one answering. The selected offset feeds the daemon's
// own clock (DisciplinedClock): slewed when small, stepped when large. The
// system clock is never touched.
//
// Polling: four requests 2 s apart at start (and when a server comes back),
// then every 8 s, doubling after every four good answers up to 1024 s. One
// request per server at a time, at most one per 2 s. A missed answer is tried
// again after 8 s; three in a row make the server unreachable, and it is then
// polled every 64 s, doubling to 1024 s. RATE doubles the interval (at least
// 64 s); DENY or RSTR stop polling that server until the daemon restarts.
//
// Drift detection: the system clock diverging from our time by more than
// ntp.drift_threshold_ms, or the NTP estimate jumping by more, is a warning
// and an audit event (`clock_drift`); nothing else changes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/crypto/random.h"
#include "core/ntp/clock_filter.h"
#include "daemon/config/config.h"
#include "daemon/log/security_audit.h"
#include "daemon/os/event_loop.h"
#include "daemon/time/disciplined_clock.h"
#include "daemon/tunnel/hop_ports.h"

namespace buckwild::daemon {

inline constexpr Duration kNtpBurstInterval = seconds(2);
inline constexpr int kNtpBurst = 4;
inline constexpr Duration kNtpMinPoll = seconds(8);
inline constexpr Duration kNtpUnreachablePoll = seconds(64);
inline constexpr Duration kNtpMaxPoll = seconds(1024);
inline constexpr int kNtpMissesUnreachable = 3;
inline constexpr Duration kNtpDriftCheck = seconds(5);

struct NtpClientDeps {
  EventLoop& loop;
  DisciplinedClock& clock;
  SocketFactory bind_socket;
  crypto::RandomSource& rng;
  SecurityAudit* audit = nullptr;
};

// The status document's `time` block when NTP is disabled: the same keys,
// the system clock as the source.
nlohmann::json system_time_status();

class NtpClient {
 public:
  NtpClient(const NtpConfig& config, NtpClientDeps deps);
  ~NtpClient();
  NtpClient(const NtpClient&) = delete;
  NtpClient& operator=(const NtpClient&) = delete;

  // Resolves the servers (literal addresses at once, names on a worker
  // thread) and starts polling.
  void start();

  // Called when our time is stepped (not slewed) by `delta_us`, after the
  // step: the tunnel moves its sessions' peer clock offsets by as much.
  void set_on_step(std::function<void(std::int64_t delta_us)> f) { on_step_ = std::move(f); }

  // A majority of servers has been selected at least once.
  bool synchronized() const { return clock_.discipline().synchronized(); }
  // Servers are selected now (false in holdover).
  bool selecting() const { return selecting_; }

  // The status document's `time` block (docs/control.md).
  nlohmann::json status() const;

 private:
  struct Source;
  struct Resolution;

  void begin_resolve(Source& s);
  void check_resolve(Source& s);
  bool open_socket(Source& s);
  // `s` failed (`what`, s.last_error): unresolved, resolved again in a minute.
  void retry_later(Source& s, const char* what);
  void schedule(Source& s, Duration delay);
  void poll(Source& s);
  void on_readable(Source& s);
  void on_timeout(Source& s);
  void finish_poll(Source& s, bool answered);
  void select(TimePoint now);
  void check_drift();
  void audit_drift(std::string_view reason, nlohmann::json details);

  NtpConfig config_;
  EventLoop& loop_;
  DisciplinedClock& clock_;
  SocketFactory bind_socket_;
  crypto::RandomSource& rng_;
  SecurityAudit* audit_;
  std::function<void(std::int64_t)> on_step_;
  std::vector<std::unique_ptr<Source>> sources_;
  TimerId drift_timer_ = kNoTimer;
  bool selecting_ = false;
  bool drift_warned_ = false;
  TimePoint last_sync_ = kNever;
  TimePoint last_sample_used_ = kNever;  // the newest sample the last correction used
  std::int64_t last_offset_us_ = 0;  // the last error fed to the discipline
  std::uint64_t steps_ = 0;
  std::uint64_t drift_events_ = 0;
  std::string selection_summary_;  // to log only changes
};

}  // namespace buckwild::daemon
