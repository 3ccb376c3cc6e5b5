// The audit trail's writer for everything that is not one line per cause
// (docs/architecture.md "The audit log"). Rare events (a session established
// or ended, a reload, a stop) are written at once. Events an attacker can
// cause by the million (refused discovery, rejected or spoofed packets, the
// eBPF filter's drops) are counted per (event, source, reason) and written as
// one record per key and interval, with the count: at most `max_keys` records
// per interval (the rest are summed into one record without a source), so a
// flood costs the disk a bounded number of lines whatever its rate.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "core/common/ip_address.h"
#include "core/common/time.h"
#include "daemon/log/audit_log.h"
#include "daemon/log/rate_limited_log.h"
#include "daemon/os/event_loop.h"

namespace buckwild::daemon {

struct SecurityAuditLimits {
  Duration interval = seconds(10);  // how often counted events are written
  std::size_t max_keys = 256;       // distinct (event, source, reason) per interval
};

struct SecurityAuditStats {
  std::uint64_t records = 0;       // lines written
  std::uint64_t write_errors = 0;  // lines that could not be written
  std::uint64_t counted = 0;       // occurrences folded into interval records
  std::uint64_t overflowed = 0;    // ... of keys beyond max_keys (summed without a source)
};

class SecurityAudit {
 public:
  // `log` is the audit log in use now (a reload may switch it; null or
  // returning null: none, and nothing is recorded or counted). The flush
  // timer runs on `loop`.
  SecurityAudit(EventLoop& loop, std::function<AuditLog*()> log, SecurityAuditLimits limits = {});
  // A worker's (daemon/workers/workers.h): what it would write goes to
  // `forward` (which hands it to the main thread's audit, write_line), and
  // `enabled` says whether the daemon has an audit log now.
  using Forward = std::function<void(std::string event, nlohmann::json fields)>;
  SecurityAudit(EventLoop& loop, Forward forward, std::function<bool()> enabled,
                SecurityAuditLimits limits = {});
  ~SecurityAudit();
  SecurityAudit(const SecurityAudit&) = delete;
  SecurityAudit& operator=(const SecurityAudit&) = delete;

  // Writes {"time", "event", "severity", ...fields} now. `fields` is an object.
  void record(std::string_view event, std::string_view severity, nlohmann::json fields);

  // Counts `n` occurrences of `event` from `source` (nullopt: no address) for
  // `reason`, which must be one of a fixed set of words (never text a sender
  // chooses: it is part of the key); written at the end of the interval as
  //   {"event", "severity": "warning", "source_address", "details": {"reason",
  //    "count", "interval_s"}}.
  void count(std::string_view event, const std::optional<IpAddress>& source, std::string_view reason,
             std::uint64_t n = 1);

  // Writes what has been counted so far (the timer does this every interval;
  // the daemon also does it as it stops).
  void flush();

  bool enabled() const;
  // Writes one line a worker's audit forwarded.
  void write_line(std::string_view event, nlohmann::json fields) { write(event, std::move(fields)); }
  const SecurityAuditStats& stats() const { return stats_; }

 private:
  // Counting runs once per dropped datagram during a flood, so it allocates
  // nothing for a key it has seen: events and reasons are interned words
  // (found by string_view), sources kept as addresses, and text is made only
  // when the interval is written.
  using Word = const std::string*;
  using Key = std::tuple<Word, std::optional<IpAddress>, Word>;  // event, source, reason
  Word intern(std::string_view word);
  void write(std::string_view event, nlohmann::json fields);
  void arm();

  Forward forward_;
  std::function<bool()> forward_enabled_;
  EventLoop& loop_;
  std::function<AuditLog*()> log_;
  SecurityAuditLimits limits_;
  std::set<std::string, std::less<>> words_;  // bounded: kMaxWords, then "other"
  std::map<Key, std::uint64_t> counts_;
  std::map<std::pair<Word, Word>, std::uint64_t> overflow_;  // event, reason
  TimerId timer_ = kNoTimer;
  RateLimitedLog warn_log_;
  SecurityAuditStats stats_;
};

}  // namespace buckwild::daemon
