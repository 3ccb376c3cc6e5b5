// The sending half of a connection: the send stream, segmentation, the
// retransmission queue, loss recovery, the RTO and persist timers, congestion
// control and pacing.
//
// Sequence numbers count segments. Bytes handed in by write() wait in the send
// stream until next_transmission() cuts them into segments of at most MSS bytes;
// from then on a segment's boundaries never change, and a retransmission resends
// the same sequence number with the same bytes. The FIN is one more segment,
// with no payload, after the last byte.
//
// What may leave, in order of preference (next_transmission):
//   1. the lowest segment declared lost, if cwnd allows;
//   2. a new segment, if cwnd allows and the un-acked payload bytes stay within
//      the peer's advertised window (a zero-window probe may exceed it);
// both subject to pacing. Loss is declared by RACK (rack.h) on every ACK and on
// its timer, and by the RTO, which declares everything in flight lost.
//
// Probes, which bypass cwnd and pacing:
//   - tail loss probe (RFC 8985 §7): when no ACK arrived for PTO = 2 x SRTT
//     (+ the peer's ACK delay when one segment is in flight), one segment: new
//     data if the window allows, else the last segment again; its ACK lets
//     RACK repair a lost tail without waiting for the RTO;
//   - on each retransmission timeout, two segments (RFC 9002 §6.2.4 allows
//     two probe datagrams): the two lowest lost ones, or one and new data, or
//     the only outstanding segment twice. Two chances per timeout keep a
//     lossy but live path from reaching the retransmission limit.
//
// Send buffer (Linux's tcp_sndbuf_expand): the application may queue up to
// twice the congestion window (at least `initial_buffer`, at most `buffer`),
// so the stream always holds what cwnd lets leave in the next round trip and
// as much again for the application to refill meanwhile; with BBR, whose
// cwnd is two bandwidth-delay products, that is four. What waits behind holes
// (SACKed, or lost and not yet resent) comes on top: under loss it stays for a
// round trip or more per hole and would otherwise crowd out new data. Storage
// grows as bytes are queued, charged to the memory budget.
//
// Failure: after `max_retransmissions` consecutive timeouts with no new data
// delivered in between (or, while probing a zero window, with no ACK at all),
// on_expiry() reports kFailed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "core/common/bytes.h"
#include "core/common/time.h"
#include "core/conn/byte_ring.h"
#include "core/conn/congestion_control.h"
#include "core/conn/delivery_rate.h"
#include "core/conn/pacer.h"
#include "core/conn/rack.h"
#include "core/conn/range_set.h"
#include "core/conn/retransmission_queue.h"
#include "core/conn/rto.h"
#include "core/wire/messages.h"

namespace buckwild::conn {

struct SenderConfig {
  std::size_t mss = 1360;                     // payload bytes per segment, 1..kMaxBodySize
  std::size_t buffer = 32 * 1024 * 1024;      // the largest send stream, bytes
  std::size_t initial_buffer = 256 * 1024;    // the send stream before cwnd grows past half of it
  MemoryBudget* memory = nullptr;             // charged for the stream's storage, if set
  RtoConfig rto;
  CongestionAlgorithm algorithm = CongestionAlgorithm::kNewReno;
  bool nagle = false;                         // hold small segments while data is in flight
  unsigned max_retransmissions = wire::kMaxRetransmissions;
  Duration peer_ack_delay = milliseconds(wire::kAckDelayMs);  // for the probe timeout
};

// The acknowledgment information of one received packet.
struct AckInfo {
  Seq ack = 0;                              // next segment the peer expects
  std::uint32_t bitmap = 0;                 // bit i: segment ack + 1 + i received
  std::span<const wire::SackBlock> blocks;  // further received ranges
  Seq packet_sequence = 0;                  // the packet's sequence field (window ordering)
  std::uint64_t window = 0;                 // the peer's receive window, bytes
};

struct AckOutcome {
  bool acceptable = false;     // ack within [front, end] of what was sent
  bool delivered_new = false;  // some segment was newly acked or SACKed
  bool fin_acked = false;      // this ACK newly acknowledged our FIN
};

// One segment chosen to leave now.
struct Transmission {
  Seq seq = 0;
  std::uint64_t offset = 0;  // stream offset of its payload
  std::uint16_t length = 0;  // payload bytes (0 for the FIN)
  bool fin = false;
  bool retransmission = false;
};

struct SenderStats {
  std::uint64_t segments_sent = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t tail_loss_probes = 0;
  std::uint64_t max_consecutive_timeouts = 0;  // the longest run without progress
  std::uint64_t bytes_delivered = 0;
};

class Sender {
 public:
  explicit Sender(const SenderConfig& config);

  // ---- application side ----
  // Bytes write() would accept now: free stream space up to send_limit(), 0
  // once close()d.
  std::size_t capacity() const;
  // The most the send stream may hold now: 2 x cwnd, plus what waits behind
  // holes (SACKed, or lost and not yet resent), within [initial_buffer, buffer].
  std::size_t send_limit() const;
  // Copies as much of `data` as capacity() allows; returns the bytes taken.
  std::size_t write(Bytes data);
  // Queues the FIN after everything written so far; write() takes nothing after.
  void close() { fin_queued_ = true; }
  bool close_requested() const { return fin_queued_; }
  bool fin_sent() const { return fin_sent_; }
  bool fin_acked() const { return fin_sent_ && seq_gt(queue_.front_seq(), fin_seq_); }
  // Bytes in the stream: sent and un-acked plus not yet sent.
  std::size_t buffered() const { return stream_.size(); }
  // Bytes written but not yet cut into segments.
  std::uint64_t unsent_bytes() const { return unsent(); }

  // ---- connection side ----
  // Begins numbering at `isn` with the peer's initial window (bytes).
  void start(Seq isn, std::uint64_t peer_window);
  bool started() const { return started_; }
  // Next sequence number to send and the oldest un-acked one.
  Seq next_seq() const { return queue_.end_seq(); }
  Seq first_unacked() const { return queue_.front_seq(); }

  // Processes the acknowledgment part of a received packet. Unacceptable ACKs
  // (acking what was never sent, or older than the front) change nothing.
  AckOutcome on_ack(const AckInfo& ack, TimePoint now);
  // The handshake measured an RTT.
  void on_rtt_sample(Duration rtt) { rtt_.on_sample(rtt); }
  // The path to the peer is back after an outage (the session heard from a
  // peer it had given up on, docs/protocol.md §11.4): if retransmission
  // timeouts have backed the timer off, the backoff is cleared and what is
  // in flight is resent now (up to two segments, as on a timeout) instead of
  // at the backed-off deadline, which may be a minute away. The timeouts
  // already counted towards the limit stay counted until data is delivered.
  // Returns whether anything is due to be resent.
  bool on_path_restored(TimePoint now);

  // The segment to send now, if any; records it as sent.
  std::optional<Transmission> next_transmission(TimePoint now);
  // Copies the payload of `t` into out (out.size() >= t.length).
  void copy_payload(const Transmission& t, MutableBytes out) const;

  // ---- timers ----
  TimePoint next_expiry() const;
  enum class TimerOutcome { kNone, kFailed };
  // Handles the loss, retransmission, persist and pacing timers due at `now`.
  TimerOutcome on_expiry(TimePoint now);

  // ---- inspection ----
  const RttEstimator& rtt() const { return rtt_; }
  const CongestionController& congestion() const { return *cc_; }
  std::uint64_t bytes_in_flight() const { return in_flight_; }
  // Bytes per second the congestion controller paces at now.
  std::uint64_t pacing_rate() const { return cc_->pacing_rate(cc_stats()); }
  std::uint64_t peer_window() const { return peer_window_; }
  const SenderStats& stats() const { return stats_; }
  // Bytes of heap storage held (stream, segment ring, scoreboard).
  std::size_t allocated() const;
  // Stream storage is allocated while the stream holds nothing.
  bool idle_storage() const { return stream_.empty() && stream_.allocated() > 0; }
  // Frees the stream storage while it holds nothing (a closed connection's
  // buffers must not wait out TIME_WAIT).
  void release_idle_buffers() { stream_.release_if_empty(); }
  // Recomputes every counter from the queue; false if any disagrees.
  bool check_invariants() const;

 private:
  CongestionStats cc_stats() const;
  std::uint64_t unsent() const { return stream_base_ + stream_.size() - sent_end_; }
  std::optional<Transmission> next_retransmission(TimePoint now, bool probe);
  std::optional<Transmission> next_new_segment(TimePoint now, bool probe);
  std::optional<Transmission> next_probe(TimePoint now);
  std::optional<Transmission> resend_outstanding(TimePoint now, Seq s);
  void arm_tail_loss_probe(TimePoint now);
  bool congestion_allows(TimePoint now, std::size_t bytes);
  bool pacing_allows(TimePoint now, std::size_t bytes);
  void note_app_limited();
  void record_send(Seq s, Segment& segment, TimePoint now, bool retransmission);

  void deliver(Seq s, Segment& segment, TimePoint now);
  void mark_sacked_range(Seq start, Seq end, TimePoint now);
  void mark_lost(Seq s);
  void clear_pending_loss();
  void detect_losses(TimePoint now);
  void report_losses(TimePoint now);
  void on_retransmission_timeout(TimePoint now);
  void release_acked_bytes();

  SenderConfig config_;
  std::unique_ptr<CongestionController> cc_;
  RttEstimator rtt_;
  Pacer pacer_;
  DeliveryRateEstimator delivery_;
  RackDetector rack_;
  RetransmissionQueue queue_;
  RangeSet scoreboard_;  // SACKed ranges above the front

  ByteRing stream_;
  std::uint64_t stream_base_ = 0;  // stream offset of stream_'s first byte
  std::uint64_t sent_end_ = 0;     // stream offset up to which bytes are segmented

  bool started_ = false;
  bool fin_queued_ = false;
  bool fin_sent_ = false;
  Seq fin_seq_ = 0;

  std::uint64_t peer_window_ = 0;
  bool window_ordered_ = false;  // wl_seq_/wl_ack_ valid
  Seq wl_seq_ = 0;
  Seq wl_ack_ = 0;

  std::uint64_t in_flight_ = 0;    // bytes of segments on the in-flight list
  std::uint64_t outstanding_ = 0;  // bytes of all segments in the queue
  std::size_t lost_count_ = 0;     // segments declared lost, not yet resent
  std::size_t sacked_count_ = 0;   // segments SACKed above the front
  Seq retransmit_hint_ = 0;        // no lost segment below this

  LossEvent pending_loss_;
  bool loss_pending_ = false;
  unsigned consecutive_timeouts_ = 0;
  bool probing_ = false;         // the outstanding data is a zero-window probe
  bool probe_allowed_ = false;   // the persist timer fired: one segment may exceed the window
  unsigned probes_due_ = 0;      // probe segments to send now, ignoring cwnd and pacing
  bool in_loss_recovery_ = false;
  Seq recovery_point_ = 0;       // RFC 6582 "recover": end of the episode
  unsigned episode_retransmitted_ = 0;  // segments first retransmitted in the episode
  unsigned episode_spurious_ = 0;       // of those, proven spurious
  bool tlp_allowed_ = true;      // no tail loss probe since the last ACK of new data
  bool cwnd_limited_ = false;    // cwnd or pacing held data back since the last ACK

  TimePoint rto_deadline_ = kNever;
  TimePoint loss_deadline_ = kNever;
  TimePoint persist_deadline_ = kNever;
  TimePoint pacing_deadline_ = kNever;
  TimePoint tlp_deadline_ = kNever;

  SenderStats stats_;
};

}  // namespace buckwild::conn
