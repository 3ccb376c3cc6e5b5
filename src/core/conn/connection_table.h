// The connections of one session, by connection id, with O(1) lookup.
//
// Ids 1..4095 (0 is the session itself). The session's initiator allocates
// odd ids and its responder even ones, so the two sides can open connections
// at the same moment without colliding. An id this side allocated rests for
// the quarantine time (TIME_WAIT, 60 s) after its connection is removed before
// it is handed out again, so a late packet of the old connection cannot reach
// a new one.
//
// Routing (reference "invalid state packet handling", CLOSED): a SYN for an
// unused id of the peer's parity opens a responder connection; a SYN for an id
// in TIME_WAIT replaces that connection; any other packet for an unknown id is
// answered with RST (STATE_INVALID), except an RST or ERROR, which is dropped.
//
// The path's RTT (as Linux's tcp_metrics): a new connection's SYN or SYN-ACK
// is retransmitted after SRTT + max(2 SRTT, 200 ms) of the session's latest
// measured connection instead of RFC 6298's 1 s, never more than that 1 s.
// Every connection of a session crosses the same path, so a SYN lost on a
// known 20 ms path costs 220 ms, not a second (the application's own SYN,
// held until ours is answered, would otherwise time out and retransmit too).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/common/time.h"
#include "core/conn/connection.h"

namespace buckwild::crypto {
class RandomSource;
}

namespace buckwild::conn {

class ConnectionTable {
 public:
  static constexpr std::size_t kSlots = std::size_t{wire::kMaxConnectionId} + 1;
  static constexpr std::size_t kMaxPendingResets = 16;

  // `session_initiator` picks the id parity; `config` is the template for
  // every connection (its id is replaced); `rng` makes their contributions.
  ConnectionTable(bool session_initiator, const ConnectionConfig& config, crypto::RandomSource& rng);

  // Opens a connection (SYN_SENT) with the next free id of our parity; its SYN
  // carries `target` if given. Fails with kMemoryExhausted when every such id
  // is in use or resting.
  Result<Connection*> open(TimePoint now, const std::optional<wire::StreamTarget>& target = std::nullopt);

  // Routes an authenticated packet; returns the connection it reached (new or
  // existing), or nullptr when it was dropped or answered with an RST.
  Connection* on_packet(const wire::Header& header, const wire::Body& body, TimePoint now);

  Connection* find(std::uint16_t id);
  const Connection* find(std::uint16_t id) const;
  // Destroys connection `id`; an id of our parity rests until now + quarantine.
  void remove(std::uint16_t id, TimePoint now);

  // A table-level reply (an RST for an unknown id), if one is pending; same
  // contract as Connection::poll_transmit.
  bool poll_transmit(wire::Header& header, MutableBytes body_out, std::size_t& body_len);

  // The largest segment payload connections opened from now on send
  // (ConnectionConfig::send_mss).
  void set_send_mss(std::size_t bytes) { config_.send_mss = bytes; }
  std::size_t send_mss() const { return config_.send_mss; }

  // The live connection ids, in opening order.
  const std::vector<std::uint16_t>& ids() const { return active_; }
  std::size_t size() const { return active_.size(); }
  // Bytes this table holds itself, excluding the connections.
  std::size_t overhead_bytes() const { return sizeof(*this) + active_.capacity() * sizeof(std::uint16_t); }

 private:
  bool ours(std::uint16_t id) const { return (id % 2 == 1) == initiator_; }
  Connection* insert(Result<Connection> c);
  // The template for a new connection `id`, its initial RTO from the path.
  ConnectionConfig config_for(std::uint16_t id);
  void remember_rtt(const Connection& c);

  bool initiator_;
  ConnectionConfig config_;
  crypto::RandomSource& rng_;
  Duration quarantine_;
  std::array<std::unique_ptr<Connection>, kSlots> slots_;
  std::array<TimePoint, kSlots> resting_until_{};
  std::vector<std::uint16_t> active_;
  std::uint16_t next_id_;
  Duration path_srtt_ = 0;  // 0: no connection has measured the path yet

  struct PendingReset {
    std::uint16_t id;
    std::uint32_t ack;
  };
  std::array<PendingReset, kMaxPendingResets> resets_{};
  std::size_t reset_count_ = 0;
};

}  // namespace buckwild::conn
