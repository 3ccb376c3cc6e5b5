// Rate-limited logging for the packet path: a flood of bad datagrams must not
// become a flood of log lines (or of disk writes).
#pragma once

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/common/time.h"

namespace buckwild::daemon {

// Allows at most `burst` messages per key in each interval; the rest are
// counted, and once the interval is over one line reports them:
//   "udp.auth_failed: suppressed 1234 similar messages in the last 10 s".
// Keys name a kind of event ("udp.auth_failed"), not a source: the table is
// bounded by `max_keys`, and messages for keys beyond it share one budget
// under the key "(other)". Time is passed in, like everything on the data path.
class RateLimitedLog {
 public:
  // `logger` null: spdlog's default logger at the time of each message.
  RateLimitedLog(std::size_t burst, Duration interval, std::size_t max_keys = 256,
                 std::shared_ptr<spdlog::logger> logger = nullptr);

  template <typename... Args>
  void log(TimePoint now, std::string_view key, spdlog::level::level_enum level,
           spdlog::format_string_t<Args...> fmt, Args&&... args) {
    spdlog::logger& out = target();
    if (!out.should_log(level)) return;
    if (admit(now, key, level)) out.log(level, fmt, std::forward<Args>(args)...);
  }

  // Reports the suppressed count of every key whose interval has ended by
  // `now`, and forgets those keys (their next message starts a new interval).
  // Call it from a periodic timer so a burst's summary appears even if the
  // flood stopped.
  void flush(TimePoint now);

  std::size_t tracked_keys() const { return keys_.size(); }

 private:
  struct KeyState {
    TimePoint window_start;
    std::size_t count;       // messages in the current interval, logged or not
    std::size_t suppressed;  // of those, not logged
    spdlog::level::level_enum level;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  spdlog::logger& target() const { return logger_ ? *logger_ : *spdlog::default_logger_raw(); }
  // True when the message may be logged. Starts a new interval (reporting the
  // previous one's suppressed count) when the current one has ended.
  bool admit(TimePoint now, std::string_view key, spdlog::level::level_enum level);
  void report(std::string_view key, const KeyState& state);

  std::size_t burst_;
  Duration interval_;
  std::size_t max_keys_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unordered_map<std::string, KeyState, Hash, std::equal_to<>> keys_;
};

}  // namespace buckwild::daemon
