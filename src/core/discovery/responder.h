// The responder's side of discovery (docs/protocol.md §6.3, §6.5).
//
// Stateless until a valid CONFIRM: everything a RESPONSE contains is derived
// from the DISCOVERY, the sender's address and a cookie secret that rotates
// every 30 s, so a CONFIRM can be checked without remembering anything. Silent
// towards anyone who does not prove knowledge of one of our PSKs: every drop is
// only counted. Work is bounded per source and in total, and a stranger's
// flood cannot use up what a configured peer needs (§6.5): the PSKs of
// listed peers are checked first, each with a budget of its own, and a
// CONFIRM must echo a cookie we sent to its source before anything else.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/endpoint.h"
#include "core/common/error.h"
#include "core/common/time.h"
#include "core/common/token_bucket.h"
#include "core/crypto/random.h"
#include "core/crypto/secret_bytes.h"
#include "core/discovery/answered_cookies.h"
#include "core/discovery/established.h"
#include "core/discovery/features.h"
#include "core/discovery/psk_set.h"
#include "core/discovery/recent_sessions.h"
#include "core/discovery/source_limiter.h"
#include "core/discovery/transcript.h"

namespace buckwild::discovery {

inline constexpr Duration kCookieRotation = seconds(30);
// A cookie secret verifies CONFIRMs for this long after it was made, however
// late its rotations run; the responder remembers each session as long.
inline constexpr Duration kCookieLifetime = 2 * kCookieRotation;

struct ResponderLimits {
  double per_source_rate = 20;  // discovery messages per second per source address
  double per_source_burst = 40;
  double work_per_second = 200;  // DISCOVERY + CONFIRM messages processed per second, all sources
  std::size_t source_slots = 4096;
  // The most sessions remembered against replay (docs/protocol.md §6.5). The
  // memory holds what the CONFIRM budget can establish in kCookieLifetime
  // (work_per_second · 60 s + burst), up to this; a CONFIRM beyond it is
  // refused as `overloaded`, never let through unremembered.
  std::size_t max_recent_sessions = 65536;
  // The (source, cookie) pairs of RESPONSEs remembered for CONFIRM's first
  // check (AnsweredCookies); memory is fixed at construction.
  std::size_t answered_slots = 32768;
  // Tag computations per second (burst a tenth) for the reserved PSKs'
  // check, which runs before the budgets above: it bounds what a flood of
  // fresh, well-formed DISCOVERYs costs beyond them.
  double reserved_checks_per_second = 100000;
};

// Why messages were dropped (and how many answered), for logs and status.
struct ResponderCounters {
  std::uint64_t responses = 0;
  std::uint64_t sessions = 0;
  std::uint64_t malformed = 0;
  std::uint64_t stale = 0;         // timestamp outside ±30 s
  std::uint64_t rate_limited = 0;  // per-source bucket empty
  std::uint64_t overloaded = 0;    // global work budget empty, or the replay memory full
  std::uint64_t no_shared_psk = 0;
  std::uint64_t no_common_features = 0;
  std::uint64_t bad_cookie = 0;
  std::uint64_t bad_proof = 0;     // proof, commitment, session id or DH failed
  std::uint64_t replayed = 0;      // CONFIRM of a session established moments ago
};

class Responder {
 public:
  // `psks` must outlive the Responder; `rng` seeds the cookie secrets.
  Responder(const PskSet& psks, ResponderPolicy policy, ResponderLimits limits,
            crypto::RandomSource& rng, TimePoint now);

  // New rate limits from `now` on (source_slots stays as constructed). The
  // PSK set may also change under the responder (it holds a reference): a
  // cookie minted for a PSK that is gone no longer finds its key.
  void set_limits(const ResponderLimits& limits, TimePoint now);

  // The PSKs (indices into the set) of the peers we list: a DISCOVERY is
  // matched against these first, and one that proves one of them is
  // answered within that PSK's own bucket (per_source_rate, per_source_burst)
  // instead of its source's and the shared work budget, which junk from
  // strangers (spoofing any address) can drain. The rest are matched only
  // within those budgets. Replaces the previous set; indices past the PSK
  // set are ignored.
  void set_reserved(const std::vector<std::size_t>& psk_indices, TimePoint now);

  // A DISCOVERY from `from`. Returns the DISCOVERY_RESPONSE to send back to
  // `from`, or nothing (the reason is counted; nothing is ever sent to a
  // sender that did not prove a shared PSK).
  std::optional<std::vector<std::uint8_t>> consume_discovery(Bytes datagram, const Endpoint& from,
                                                             std::int64_t now_unix_ms, TimePoint now);

  // A DISCOVERY_CONFIRM from `from`, which arrived at our Unix time
  // `arrived_unix_ms` (the kernel's receive stamp: a CONFIRM read late would
  // otherwise look delayed on the way and skew the clock offset, measured
  // from its arrival). Returns the established session, or the
  // reason it was refused (also counted). A CONFIRM for a session established
  // in the last 60 s (a replay, or the initiator retransmitting because our
  // SEQUENCE_NEG was lost) is refused with kReplayAttack and `replayed_session`
  // set to its id, so the caller can re-send that session's confirmation. No
  // CONFIRM ever establishes two sessions: when the replay memory is full the
  // CONFIRM is refused with kMemoryExhausted (counted as overloaded).
  Result<Established> consume_confirm(Bytes datagram, const Endpoint& from,
                                      std::int64_t arrived_unix_ms, TimePoint now);

  // The cookie secrets rotate on time even when no discovery traffic arrives,
  // so the responder's ephemeral keys (derived from them) are gone within 60 s:
  // call on_expiry() at next_expiry() (or later; a late call rotates late).
  TimePoint next_expiry() const;
  void on_expiry(TimePoint now);

  const ResponderCounters& counters() const { return counters_; }
  // The session id of the last CONFIRM refused with kReplayAttack.
  std::uint64_t replayed_session() const { return replayed_session_; }

 private:
  struct Derived;
  void rotate(TimePoint now);
  bool admit(const Endpoint& from, TimePoint now);
  // The first reserved PSK whose tag for `h1` is among `slots`, and that
  // tag; every reserved tag is computed, match or not.
  std::optional<std::pair<std::size_t, Tag>> match_reserved(const crypto::Digest& h1,
                                                            const std::array<Tag, wire::kDiscoverySlots>& slots) const;
  Derived derive(const crypto::SecretBytes& secret, const Endpoint& from, std::uint32_t ts_i,
                 const crypto::Digest& h1, const Tag& matched) const;

  const PskSet& psks_;
  ResponderPolicy policy_;
  crypto::RandomSource& rng_;
  SourceLimiter sources_;
  TokenBucket work_;
  TokenBucket confirm_work_;
  TokenBucket reserved_checks_;
  struct Reserved {
    std::size_t psk_index;
    TokenBucket bucket;
  };
  std::vector<Reserved> reserved_;  // in the PSK set's order of preference
  double per_psk_rate_;
  double per_psk_burst_;
  AnsweredCookies answered_;
  std::array<crypto::SecretBytes, 2> secrets_;  // [0] current, [1] previous
  std::array<TimePoint, 2> secret_made_;         // when each was made
  TimePoint rotated_at_;
  ResponderCounters counters_;
  RecentSessions recent_;
  std::uint64_t replayed_session_ = 0;
};

}  // namespace buckwild::discovery
