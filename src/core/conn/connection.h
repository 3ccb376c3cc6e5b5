// A Buckwild connection: one application byte stream each way, carried as
// independent datagrams, with the reliability, ordering, flow control and
// congestion control of TCP done here (docs/protocol.md §5.13).
//
// No I/O, no clock, no threads. The owner (the session) drives it:
//   - on_packet(header, body, now) for every authenticated packet whose
//     connection id is this connection's;
//   - poll_transmit(now, ...) until it returns false, after every on_packet,
//     on_expiry, send, recv, shutdown_write or reset; each call yields at most
//     one packet (header fields of the connection filled, body encoded), which
//     the session seals, numbers, timestamps and sends on the connection's port;
//   - on_expiry(now) once now >= next_expiry();
//   - poll_event() for what the application must hear about.
//
// States (RFC 793 names): SYN_SENT, SYN_RECEIVED, ESTABLISHED, then by half-
// close FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT (we closed first) or CLOSE_WAIT
// -> LAST_ACK (peer closed first), CLOSING when both FINs cross, and CLOSED.
// Every transition happens in set_state().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/common/time.h"
#include "core/conn/handshake.h"
#include "core/conn/receiver.h"
#include "core/conn/sender.h"
#include "core/wire/codec.h"
#include "core/wire/messages.h"

namespace buckwild::crypto {
class RandomSource;
}

namespace buckwild::conn {

enum class State : std::uint8_t {
  kSynSent,
  kSynReceived,
  kEstablished,
  kFinWait1,
  kFinWait2,
  kCloseWait,
  kClosing,
  kLastAck,
  kTimeWait,
  kClosed,
};
std::string_view state_name(State s);

enum class EventKind : std::uint8_t {
  kEstablished,    // the handshake completed; data flows both ways
  kPeerFinished,   // the peer's FIN arrived in order: after readable() bytes, end of stream
  kReset,          // the peer reset the connection; `reason` is its RST reason
  kFailed,         // we gave up: kTimeout (retransmission limit) or a handshake check failed
  kClosed,         // the connection is over and may be destroyed; always the last event
};

struct Event {
  EventKind kind = EventKind::kClosed;
  ErrorCode reason = ErrorCode::kSuccess;
  friend bool operator==(const Event&, const Event&) = default;
};

struct ConnectionConfig {
  std::uint16_t id = 1;                          // 1..4095
  std::size_t mss = 1360;                        // segment payload bytes: path MTU - IP/UDP - 60
  // Windows that fit the path (sender.h, receiver.h): the send stream grows
  // with cwnd and the receive window with what the application reads per
  // round trip, from the initial sizes up to these maxima.
  std::size_t send_buffer = 32 * 1024 * 1024;     // the most the application may queue
  std::size_t receive_buffer = 32 * 1024 * 1024;  // the largest receive window
  std::size_t initial_send_buffer = 256 * 1024;
  std::size_t initial_receive_window = 256 * 1024;
  // The largest segment payload to send, when below mss (0: mss): the
  // session's path MTU less our overhead (§11.10). mss stays the largest the
  // receiver takes, which the peer's segments never exceed.
  std::size_t send_mss = 0;
  // All connections' buffers together (memory_budget.h); unbounded if null.
  MemoryBudget* memory = nullptr;
  Duration ack_delay = milliseconds(wire::kAckDelayMs);
  Duration time_wait = milliseconds(wire::kTimeWaitMs);
  // A connection whose buffers held nothing for this long gives their storage
  // back (it grows again on demand); its windows keep their tuned sizes.
  Duration idle_release = seconds(1);
  RtoConfig rto;
  CongestionAlgorithm congestion = CongestionAlgorithm::kNewReno;
  bool nagle = false;
  unsigned max_retransmissions = wire::kMaxRetransmissions;
  // The open (SYN_SENT or SYN_RECEIVED) fails after this long even if the
  // retransmission limit is not reached (reference CONNECTION_TIMEOUT_MS).
  Duration connect_timeout = seconds(30);
  std::int32_t time_offset_ms = 0;  // carried in SYN/SYN-ACK for the session's use
  // Stream mode: the application connection this one carries, sent in the SYN
  // (and its retransmissions) of an active open; ignored by accept().
  std::optional<wire::StreamTarget> target;
};

struct ConnectionStats {
  std::uint64_t packets_sent = 0;
  std::uint64_t packets_received = 0;
  std::uint64_t packets_ignored = 0;  // wrong state, wrong body, unacceptable ack
  SenderStats sender;
  ReceiverStats receiver;
};

// Heap and object bytes held by one connection.
struct MemoryUsage {
  std::size_t object = 0;   // sizeof(Connection)
  std::size_t buffers = 0;  // stream rings, reorder slots, segment ring, range sets
  std::size_t total() const { return object + buffers; }
};

// The largest body poll_transmit() writes: an ACK with an opening and 32 SACK
// blocks, or a full segment. body_out must hold max(mss, this).
inline constexpr std::size_t kMaxControlBody = 64 + 4 + 8 * wire::kMaxSackBlocks;

class Connection {
 public:
  // Active open: a connection in SYN_SENT whose first poll_transmit() yields
  // the SYN. Fails (kInvalidParameter) for an id outside 1..4095, an MSS outside
  // 1..kMaxBodySize or a zero buffer, or if the commitment cannot be computed.
  static Result<Connection> connect(const ConnectionConfig& config, crypto::RandomSource& rng,
                                    TimePoint now);
  // Passive open from a received SYN: a connection in SYN_RECEIVED whose first
  // poll_transmit() yields the SYN-ACK. Same failures as connect().
  static Result<Connection> accept(const ConnectionConfig& config, crypto::RandomSource& rng,
                                   const wire::SynBody& syn, TimePoint now);

  Connection(Connection&&) = default;
  Connection& operator=(Connection&&) = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // ---- the session side ----
  // Consumes one authenticated packet addressed to this connection. Packets
  // that do not fit the state are ignored or answered as §5.13.12 says.
  void on_packet(const wire::Header& header, const wire::Body& body, TimePoint now);
  // Writes the next packet to send, if any: `header` gets version, type, flags,
  // connection id, window, sequence, ack and SACK bitmap (session id, packet
  // number, timestamp and payload length are the session's); the body is
  // encoded into body_out (size >= max(mss, kMaxControlBody), asserted) and its
  // length stored in body_len. Returns false when nothing is due now.
  bool poll_transmit(TimePoint now, wire::Header& header, MutableBytes body_out,
                     std::size_t& body_len);
  // The earliest time at which on_expiry() has work; kNever if none.
  TimePoint next_expiry() const;
  // Runs the timers due at `now`.
  void on_expiry(TimePoint now);
  // The session heard from its peer again after an outage: data whose
  // retransmission timer was backed off is resent at once (Sender::
  // on_path_restored). Returns whether anything is due (poll_transmit).
  bool on_path_restored(TimePoint now);
  // The next event, oldest first.
  std::optional<Event> poll_event();

  // ---- the application side ----
  // Bytes send() would accept now (0 before the stream exists, after
  // shutdown_write, or once closed). Backpressure: hand in no more than this.
  std::size_t send_capacity() const;
  // Queues as much of `data` as send_capacity() allows; returns the bytes taken.
  // May be called in SYN_SENT/SYN_RECEIVED: the data leaves once established.
  std::size_t send(Bytes data);
  // In-order bytes ready for recv().
  std::size_t readable() const { return receiver_.readable(); }
  // Copies up to out.size() bytes out and returns how many. Not calling recv()
  // is how the application stops reading: the buffer fills, the advertised
  // window falls to zero, and the peer stops sending (and probes).
  std::size_t recv(MutableBytes out);
  // True once the peer's FIN arrived and every byte before it was received:
  // when readable() is also 0, the stream has ended.
  bool peer_finished() const { return receiver_.fin_received(); }
  // Half-close: sends a FIN after everything queued. The peer may keep sending.
  void shutdown_write();
  // Aborts: sends RST with `reason` and closes at once (buffered data is lost).
  void reset(ErrorCode reason);

  // ---- inspection ----
  std::uint16_t id() const { return config_.id; }
  State state() const { return state_; }
  // It closed because its TIME_WAIT ran out: nothing of it has been sent for
  // a whole TIME_WAIT, so its id needs no further rest (ConnectionTable).
  bool time_wait_served() const { return time_wait_served_; }
  const ConnectionStats& stats() const;
  const Sender& sender() const { return sender_; }
  const Receiver& receiver() const { return receiver_; }
  std::uint64_t congestion_window() const { return sender_.congestion().congestion_window(); }
  const wire::ConnectionParams& peer_params() const { return peer_params_; }
  // The commitment from the peer's SYN or SYN-ACK (zero before one arrived).
  const crypto::Commitment& peer_commitment() const { return handshake_.peer_commitment(); }
  MemoryUsage memory() const;
  // Checks the connection's internal consistency (O(flight)); false on any
  // violation. For tests and fuzzing.
  bool check_invariants() const;

 private:
  enum class Reply : std::uint8_t { kNone, kRst, kError };

  Connection(const ConnectionConfig& config, Handshake handshake, State initial, TimePoint now);

  // Input, by state.
  void on_packet_syn_sent(const wire::Header& h, const wire::Body& body, TimePoint now);
  void on_packet_syn_received(const wire::Header& h, const wire::Body& body, TimePoint now);
  void on_packet_synchronized(const wire::Header& h, const wire::Body& body, TimePoint now);
  void on_acknowledgment(const wire::Header& h, const wire::Body& body, TimePoint now);
  void on_rst(const wire::Body& body);
  void complete_handshake(TimePoint now);
  void after_input(TimePoint now);

  // Output.
  void write_syn(wire::Header& h, MutableBytes out, std::size_t& len);
  void write_syn_ack(wire::Header& h, MutableBytes out, std::size_t& len);
  void write_ack(wire::Header& h, MutableBytes out, std::size_t& len, bool with_opening);
  void write_segment(const Transmission& t, wire::Header& h, MutableBytes out, std::size_t& len);
  void write_window_update(wire::Header& h, MutableBytes out, std::size_t& len);
  void write_reply(wire::Header& h, MutableBytes out, std::size_t& len);
  void fill_ack_fields(wire::Header& h);
  wire::ConnectionParams local_params() const;

  // Transitions, events, timers.
  void set_state(State next, TimePoint now);
  // Frees buffer storage that holds nothing (in TIME_WAIT and CLOSED, and
  // after idle_release without traffic).
  void release_idle_buffers();
  // Arms or disarms the idle-release timer from what the buffers hold.
  void watch_idle(TimePoint now);
  bool buffers_idle() const;
  void push_event(EventKind kind, ErrorCode reason = ErrorCode::kSuccess);
  void give_up(ErrorCode reason, bool send_rst, TimePoint now);
  void queue_reply(Reply kind, ErrorCode code, std::uint32_t details);
  bool opening() const;
  void arm_handshake_timer(TimePoint now);
  void on_handshake_timer(TimePoint now);

  ConnectionConfig config_;
  Handshake handshake_;
  Sender sender_;
  Receiver receiver_;
  State state_;

  wire::ConnectionParams peer_params_{};
  std::uint8_t local_wscale_ = 0;
  TimePoint created_ = 0;

  // Handshake bookkeeping.
  bool syn_due_ = false;
  bool syn_ack_due_ = false;
  bool opening_due_ = false;        // send our opening in an ACK with the SYN flag
  bool opening_confirmed_ = false;  // the peer has shown it has our opening
  TimePoint handshake_first_sent_ = kNever;
  TimePoint syn_ack_last_sent_ = kNever;
  bool handshake_resent_ = false;
  unsigned handshake_attempts_ = 0;
  TimePoint handshake_deadline_ = kNever;

  TimePoint time_wait_deadline_ = kNever;
  bool time_wait_served_ = false;
  bool peer_fin_reported_ = false;

  // Idle release: traffic since the timer was armed (bytes read plus bytes
  // delivered) disarms it.
  TimePoint idle_deadline_ = kNever;
  std::uint64_t idle_mark_ = 0;

  Reply reply_ = Reply::kNone;
  ErrorCode reply_code_ = ErrorCode::kSuccess;
  std::uint32_t reply_details_ = 0;

  static constexpr std::size_t kEventCapacity = 8;
  std::array<Event, kEventCapacity> events_{};
  std::size_t event_head_ = 0;
  std::size_t event_count_ = 0;
  bool closed_reported_ = false;

  mutable ConnectionStats stats_;
};

}  // namespace buckwild::conn
