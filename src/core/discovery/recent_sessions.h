// The responder's memory of the sessions it established while their CONFIRM
// could still verify (docs/protocol.md §6.5), so that no CONFIRM makes two
// sessions: a second session from the same CONFIRM would have the same session
// key and start its packet numbers at 0 again, reusing AEAD nonces.
//
// The guarantee is by construction, whatever the rates: a CONFIRM verifies only
// within kCookieLifetime of its cookie secret's creation, every session stays
// here for kCookieLifetime after it was established, and a session that would
// not fit is refused (`remember` returns false) instead of pushing out one that
// could still be replayed. The capacity only decides how many sessions a minute
// can be established; it never decides whether a replay is caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

#include "core/common/time.h"

namespace buckwild::discovery {

class RecentSessions {
 public:
  // How long a session is remembered: the longest a cookie secret verifies.
  explicit RecentSessions(Duration lifetime, std::size_t capacity)
      : lifetime_(lifetime), capacity_(capacity) {}

  // New capacity from now on. Lowering it forgets nothing: sessions are refused
  // until enough entries have expired.
  void set_capacity(std::size_t capacity) { capacity_ = capacity; }
  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return by_id_.size(); }

  // True if `session_id` was established within `lifetime` before `now`.
  bool contains(std::uint64_t session_id, TimePoint now);

  // Records `session_id` as established at `now`. False, and nothing recorded,
  // when the memory is full of sessions still within their lifetime: the caller
  // must then refuse the session.
  bool remember(std::uint64_t session_id, TimePoint now);

 private:
  void expire(TimePoint now);

  struct Entry {
    std::uint64_t session_id;
    TimePoint at;
  };
  Duration lifetime_;
  std::size_t capacity_;
  std::deque<Entry> order_;  // oldest first
  std::unordered_map<std::uint64_t, TimePoint> by_id_;
};

}  // namespace buckwild::discovery
