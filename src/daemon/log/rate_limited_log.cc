#include "daemon/log/rate_limited_log.h"

#include <vector>

namespace buckwild::daemon {
namespace {

constexpr std::string_view kOverflowKey = "(other)";

}  // namespace

RateLimitedLog::RateLimitedLog(std::size_t burst, Duration interval, std::size_t max_keys,
                               std::shared_ptr<spdlog::logger> logger)
    : burst_(burst),
      interval_(interval > 0 ? interval : 1),
      max_keys_(max_keys),
      logger_(std::move(logger)) {}

void RateLimitedLog::report(std::string_view key, const KeyState& state) {
  if (state.suppressed == 0) return;
  target().log(state.level, "{}: suppressed {} similar messages in the last {} s", key,
               state.suppressed, static_cast<double>(interval_) / 1e6);
}

bool RateLimitedLog::admit(TimePoint now, std::string_view key, spdlog::level::level_enum level) {
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    if (keys_.size() >= max_keys_) flush(now);
    if (keys_.size() >= max_keys_) {
      key = kOverflowKey;
      it = keys_.find(key);
    }
  }
  if (it == keys_.end()) {
    it = keys_.emplace(std::string(key), KeyState{now, 0, 0, level}).first;
  } else if (now - it->second.window_start >= interval_) {
    report(it->first, it->second);
    it->second = KeyState{now, 0, 0, level};
  }
  KeyState& s = it->second;
  ++s.count;
  if (s.count > burst_) {
    ++s.suppressed;
    s.level = std::max(s.level, level);
    return false;
  }
  return true;
}

void RateLimitedLog::flush(TimePoint now) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (now - it->second.window_start < interval_) {
      ++it;
      continue;
    }
    report(it->first, it->second);
    it = keys_.erase(it);
  }
}

}  // namespace buckwild::daemon
