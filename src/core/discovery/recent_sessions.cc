#include "core/discovery/recent_sessions.h"

namespace buckwild::discovery {

void RecentSessions::expire(TimePoint now) {
  while (!order_.empty() && now - order_.front().at > lifetime_) {
    auto it = by_id_.find(order_.front().session_id);
    // A later entry for the same id (never made: remember() refuses known ids)
    // would have a later time; only the entry this one recorded goes.
    if (it != by_id_.end() && it->second == order_.front().at) by_id_.erase(it);
    order_.pop_front();
  }
}

bool RecentSessions::contains(std::uint64_t session_id, TimePoint now) {
  expire(now);
  return by_id_.contains(session_id);
}

bool RecentSessions::remember(std::uint64_t session_id, TimePoint now) {
  expire(now);
  if (by_id_.contains(session_id)) return true;
  // Full of sessions whose CONFIRM may still verify: forgetting one would let
  // its CONFIRM make a second session with the same keys.
  if (by_id_.size() >= capacity_) return false;
  order_.push_back(Entry{session_id, now});
  by_id_.emplace(session_id, now);
  return true;
}

}  // namespace buckwild::discovery
