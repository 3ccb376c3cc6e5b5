// Packetization-layer path MTU discovery for one session (RFC 8899 style,
// docs/protocol.md §11.10), without I/O or clock reads: the owner sends the
// probes this asks for (PMTU_PROBE), feeds back the peer's PMTU_ACKs and
// local send failures, and sizes its datagrams by current().
//
// Sizes are datagram sizes: the UDP payload, our header and tag included.
//
//   kBase      probe the base size; its ACK also tells the peer's largest
//              receivable datagram, which with ours bounds the search
//   kSearch    binary search between the largest size confirmed and the
//              smallest that failed: the bound itself first, then halves
//   kComplete  use the size found; confirm it every kConfirmInterval (a
//              confirmation that fails kMaxProbes times is a black hole:
//              back to the base size and search again), and search upward
//              again every kRaiseInterval when the size is below the bound
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/common/time.h"

namespace buckwild::session {

class PmtuSearch {
 public:
  enum class State : std::uint8_t { kBase, kSearch, kComplete };

  // RFC 8899 §5.1.2 MAX_PROBES: a size fails after this many unanswered probes.
  static constexpr int kMaxProbes = 3;
  // RFC 8899 §5.1.1 PMTU_RAISE_TIMER.
  static constexpr Duration kRaiseInterval = seconds(600);
  // How often the size in use is confirmed (black-hole detection).
  static constexpr Duration kConfirmInterval = seconds(30);
  // The wait after the base size failed kMaxProbes times before trying again.
  static constexpr Duration kBaseRetryInterval = seconds(10);
  // The search stops when the confirmed and the failed size are this close.
  static constexpr std::size_t kGranularity = 8;

  // `base` is a size every path carries (it must be <= local_max);
  // `local_max` the largest datagram this host can send or receive.
  PmtuSearch(std::size_t base, std::size_t local_max, TimePoint now);

  struct Probe {
    std::uint32_t id = 0;
    std::size_t size = 0;  // the whole datagram, padding included
  };

  // The datagram size to use now: the largest confirmed (the base before any).
  std::size_t current() const { return confirmed_; }
  State state() const { return state_; }
  // The search's upper bound: min(local_max, the peer's) once the peer's is
  // known, else local_max.
  std::size_t bound() const { return bound_; }
  // The peer's largest receivable datagram, once it told us.
  std::optional<std::size_t> peer_max() const { return peer_max_; }

  // When poll() has something to do.
  TimePoint next_expiry(Duration probe_timeout) const;
  // Counts an unanswered probe as lost after `probe_timeout`, and returns the
  // probe to send now, if one is due. The caller sends it (or reports
  // on_send_failed) before polling again.
  std::optional<Probe> poll(TimePoint now, Duration probe_timeout);
  // The peer's PMTU_ACK for probe `id` of `size` bytes; `peer_max` its largest
  // receivable datagram. Returns true when current() changed. ACKs of any but
  // the outstanding probe are ignored.
  bool on_ack(std::uint32_t id, std::size_t size, std::size_t peer_max, TimePoint now);
  // The peer told us its largest receivable datagram in a probe of its own.
  void on_peer_max(std::size_t peer_max);
  // The outstanding probe could not be sent at all (EMSGSIZE: larger than a
  // local interface allows): that size fails at once. Returns true when
  // current() changed.
  bool on_send_failed(std::uint32_t id, TimePoint now);

 private:
  void fail_size(std::size_t size, TimePoint now);
  void succeed(std::size_t size, TimePoint now);
  void start_search(TimePoint now);
  void complete(TimePoint now);
  std::size_t next_candidate() const;

  std::size_t base_;
  std::size_t local_max_;
  std::size_t bound_;
  std::optional<std::size_t> peer_max_;
  State state_ = State::kBase;
  std::size_t confirmed_;   // largest size known to pass
  std::size_t failed_;      // smallest size known to fail (bound_ + 1 when none)
  std::uint32_t next_id_ = 1;
  std::optional<Probe> outstanding_;
  TimePoint sent_at_ = kNever;
  int attempts_ = 0;        // probes sent for the outstanding size
  TimePoint next_probe_;    // when the next probe (a new size, or a confirmation) is due
  TimePoint raise_at_ = kNever;
};

}  // namespace buckwild::session
