#include "core/conn/sender.h"

#include <algorithm>
#include <cassert>

namespace buckwild::conn {
namespace {

// Segments tracked at once: enough for a full buffer of full-sized segments
// twice over, so small segments cannot exhaust it before the buffer does.
std::size_t max_segments(const SenderConfig& c) {
  return std::max<std::size_t>(64, 2 * c.buffer / std::max<std::size_t>(c.mss, 1));
}

// The scoreboard only speeds up repeated SACK blocks; 64 ranges cover the 32
// blocks of an ACK plus the header bitmap's runs.
constexpr std::size_t kScoreboardRanges = 64;

}  // namespace

Sender::Sender(const SenderConfig& config)
    : config_(config),
      cc_(make_congestion_controller(config.algorithm, config.mss)),
      rtt_(config.rto),
      queue_(max_segments(config)),
      scoreboard_(kScoreboardRanges),
      stream_(config.buffer, config.memory) {
  assert(config.mss > 0 && config.mss <= wire::kMaxBodySize);
}

std::size_t Sender::send_limit() const {
  const std::uint64_t floor = std::min(config_.initial_buffer, config_.buffer);
  // Twice the congestion window for what is in flight and what goes next,
  // plus what waits behind holes (SACKed, or lost and not yet resent): on a
  // lossy path that part lasts a round trip or more per hole, and counting it
  // against the 2 x cwnd would leave the sender with nothing new to send, so
  // BBR would measure a rate the send buffer set, not the path.
  const std::uint64_t held = outstanding_ - in_flight_;
  const std::uint64_t want = std::max(floor, 2 * cc_->congestion_window() + held);
  return static_cast<std::size_t>(std::min<std::uint64_t>(want, config_.buffer));
}

std::size_t Sender::capacity() const {
  if (fin_queued_) return 0;
  const std::size_t limit = send_limit();
  const std::size_t held = stream_.size();
  return held >= limit ? 0 : std::min(stream_.free(), limit - held);
}

std::size_t Sender::write(Bytes data) {
  return stream_.push(data.first(std::min(data.size(), capacity())));
}

void Sender::start(Seq isn, std::uint64_t peer_window) {
  queue_.reset(isn);
  retransmit_hint_ = isn;
  peer_window_ = peer_window;
  started_ = true;
}

CongestionStats Sender::cc_stats() const {
  CongestionStats s;
  s.mss = config_.mss;
  s.bytes_in_flight = in_flight_;
  s.smoothed_rtt = rtt_.smoothed();
  s.min_rtt = rtt_.min_rtt();
  s.latest_rtt = rtt_.latest();
  s.delivered = delivery_.delivered();
  s.app_limited = delivery_.app_limited();
  s.cwnd_limited = cwnd_limited_;
  return s;
}

// ---- acknowledgments -----------------------------------------------------------

AckOutcome Sender::on_ack(const AckInfo& ack, TimePoint now) {
  AckOutcome out;
  if (!started_) return out;
  const Seq front = queue_.front_seq();
  const Seq end = queue_.end_seq();
  if (seq_lt(ack.ack, front) || seq_gt(ack.ack, end)) return out;
  out.acceptable = true;

  // RFC 793's SND.WL1/WL2 rule: take the window only from a packet at least as
  // new as the one that set it.
  const std::uint64_t old_window = peer_window_;
  if (!window_ordered_ || seq_gt(ack.packet_sequence, wl_seq_) ||
      (ack.packet_sequence == wl_seq_ && seq_ge(ack.ack, wl_ack_))) {
    peer_window_ = ack.window;
    wl_seq_ = ack.packet_sequence;
    wl_ack_ = ack.ack;
    window_ordered_ = true;
  }

  const std::uint64_t prior_in_flight = in_flight_;
  const std::uint64_t delivered_before = delivery_.delivered();
  const bool fin_was_acked = fin_acked();
  TimePoint newest_sent = kNever;
  bool undo_due = false;
  Duration rtt_sample = 0;
  TimePoint sample_sent = 0;
  bool any_new = false;
  auto on_delivered = [&](Seq s, const Segment& seg) {
    any_new = true;
    if (newest_sent == kNever || seg.last_sent > newest_sent) newest_sent = seg.last_sent;
    // Karn's rule: only segments sent once give an RTT sample.
    if (seg.transmissions == 1 && seg.last_sent >= sample_sent) {
      sample_sent = seg.last_sent;
      rtt_sample = now - seg.last_sent;
    }
    if (rack_.on_delivered(s, seg, now, rtt_.min_rtt()) && episode_retransmitted_ > 0) {
      if (++episode_spurious_ == episode_retransmitted_) undo_due = true;
    }
  };

  // Cumulative part.
  while (seq_lt(queue_.front_seq(), ack.ack)) {
    const Seq s = queue_.front_seq();
    Segment& seg = queue_.at(s);
    if (seg.in_flight) {
      queue_.list_remove(s);
      in_flight_ -= seg.length;
    }
    if (seg.lost) --lost_count_;
    if (seg.sacked) {
      --sacked_count_;
    } else {
      on_delivered(s, seg);
      deliver(s, seg, now);
    }
    outstanding_ -= seg.length;
    queue_.pop_front();
  }
  scoreboard_.remove_below(queue_.front_seq());
  if (seq_lt(retransmit_hint_, queue_.front_seq())) retransmit_hint_ = queue_.front_seq();
  release_acked_bytes();

  // Selective part: the header bitmap, then the body's blocks. Only ranges
  // above the cumulative ack and below what was sent mean anything.
  auto sack = [&](Seq start, Seq stop) {
    start = seq_max(start, seq_max(queue_.front_seq(), ack.ack + 1));
    stop = seq_min(stop, queue_.end_seq());
    if (!seq_lt(start, stop)) return;
    auto newly = [&](Seq a, Seq b) {
      for (Seq s = a; s != b; ++s) {
        Segment& seg = queue_.at(s);
        if (seg.sacked) continue;
        on_delivered(s, seg);
        mark_sacked_range(s, s + 1, now);
      }
    };
    if (!scoreboard_.add(start, stop, newly)) newly(start, stop);
  };
  std::uint32_t bits = ack.bitmap;
  for (std::uint32_t i = 0; bits != 0 && i < 32;) {
    if ((bits & 1u) == 0) {
      bits >>= 1;
      ++i;
      continue;
    }
    std::uint32_t run = 0;
    while (run + i < 32 && (bits & 1u) != 0) {
      bits >>= 1;
      ++run;
    }
    const Seq start = ack.ack + 1 + i;
    sack(start, start + run);
    i += run;
  }
  for (const wire::SackBlock& b : ack.blocks) sack(b.start, b.end);

  if (any_new) {
    out.delivered_new = true;
    consecutive_timeouts_ = 0;
    // Progress: pending TLP/RTO probes are moot, and a new TLP may follow.
    tlp_allowed_ = true;
    probes_due_ = 0;
    if (rtt_sample > 0) rtt_.on_sample(rtt_sample);
    AckEvent ev;
    ev.acked_bytes = delivery_.delivered() - delivered_before;
    ev.prior_in_flight = prior_in_flight;
    ev.largest_acked_sent_time = newest_sent;
    ev.rtt_sample = rtt_sample;
    ev.rate = delivery_.take_sample();
    if (undo_due) {
      cc_->on_spurious_loss(cc_stats(), now);
      episode_retransmitted_ = 0;
    }
    detect_losses(now);
    report_losses(now);
    cc_->on_ack(cc_stats(), now, ev);
    cwnd_limited_ = false;
    stats_.bytes_delivered = delivery_.delivered();
    // RFC 6298 §5.3: restart the timer when new data is acknowledged.
    rto_deadline_ = now + rtt_.backed_off_rto();
  }
  // §5.2: stop it when nothing is outstanding.
  if (queue_.empty()) rto_deadline_ = kNever;
  arm_tail_loss_probe(now);

  // Zero-window probing: any answer proves the peer alive; an opened window
  // sends what the probe carried without waiting for the backed-off timer.
  if (probing_) {
    consecutive_timeouts_ = 0;
    if (peer_window_ >= outstanding_ && peer_window_ > old_window) {
      probing_ = false;
      rtt_.reset_backoff();
      while (!queue_.list_empty()) mark_lost(queue_.list_front());
      clear_pending_loss();
      if (!queue_.empty()) rto_deadline_ = now + rtt_.backed_off_rto();
    }
  }
  if (peer_window_ > 0) persist_deadline_ = kNever;

  out.fin_acked = !fin_was_acked && fin_acked();
  return out;
}

// Segment `s` left the network by ACK or SACK: count it as delivered.
void Sender::deliver(Seq, Segment& segment, TimePoint now) {
  delivery_.on_delivered(segment.delivery, segment.last_sent, segment.length, now);
}

void Sender::mark_sacked_range(Seq start, Seq end, TimePoint now) {
  for (Seq s = start; s != end; ++s) {
    Segment& seg = queue_.at(s);
    if (seg.sacked) continue;
    seg.sacked = true;
    ++sacked_count_;
    if (seg.in_flight) {
      queue_.list_remove(s);
      in_flight_ -= seg.length;
    }
    if (seg.lost) {
      seg.lost = false;
      --lost_count_;
    }
    deliver(s, seg, now);
  }
}

void Sender::mark_lost(Seq s) {
  Segment& seg = queue_.at(s);
  queue_.list_remove(s);
  in_flight_ -= seg.length;
  seg.lost = true;
  ++lost_count_;
  if (seq_lt(s, retransmit_hint_)) retransmit_hint_ = s;
  pending_loss_.lost_bytes += seg.length;
  pending_loss_.largest_lost_sent_time =
      loss_pending_ ? std::max(pending_loss_.largest_lost_sent_time, seg.last_sent) : seg.last_sent;
  loss_pending_ = true;
}

void Sender::clear_pending_loss() {
  pending_loss_ = LossEvent{};
  loss_pending_ = false;
}

void Sender::detect_losses(TimePoint now) {
  const bool recovering = in_loss_recovery_ && seq_lt(queue_.front_seq(), recovery_point_);
  const Duration reo_wnd =
      rack_.reordering_window(rtt_.min_rtt(), rtt_.smoothed(), recovering, sacked_count_);
  loss_deadline_ = rack_.detect(queue_, now, reo_wnd, [this](Seq s) { mark_lost(s); });
}

void Sender::report_losses(TimePoint now) {
  if (!loss_pending_) return;
  // RFC 6675 §5 step (4.3): entering loss recovery, the first lost segment is
  // retransmitted at once, whatever the pipe; further ones follow as cwnd
  // allows. One recovery episode lasts until everything sent before it is acked.
  if (!in_loss_recovery_ || seq_ge(queue_.front_seq(), recovery_point_)) {
    in_loss_recovery_ = true;
    recovery_point_ = queue_.end_seq();
    probes_due_ = std::max(probes_due_, 1u);
    episode_retransmitted_ = 0;
    episode_spurious_ = 0;
  }
  // A lost FIN carries no bytes but is still a loss signal.
  if (pending_loss_.lost_bytes == 0) pending_loss_.lost_bytes = 1;
  cc_->on_loss(cc_stats(), now, pending_loss_);
  clear_pending_loss();
}

void Sender::release_acked_bytes() {
  const std::uint64_t new_base = queue_.empty() ? sent_end_ : queue_.at(queue_.front_seq()).offset;
  assert(new_base >= stream_base_);
  stream_.pop(static_cast<std::size_t>(new_base - stream_base_));
  stream_base_ = new_base;
}

// ---- transmission ----------------------------------------------------------------

// RFC 9002 §7: send while bytes in flight are below cwnd (the last segment
// may overshoot it), at the pacing rate.
bool Sender::congestion_allows(TimePoint now, std::size_t bytes) {
  if (in_flight_ >= cc_->congestion_window() || !pacing_allows(now, bytes)) {
    cwnd_limited_ = true;
    return false;
  }
  return true;
}

bool Sender::pacing_allows(TimePoint now, std::size_t bytes) {
  pacer_.update(now, cc_->pacing_rate(cc_stats()), config_.mss);
  if (pacer_.can_send(bytes)) {
    pacing_deadline_ = kNever;
    return true;
  }
  pacing_deadline_ = pacer_.next_send_time(now, bytes);
  return false;
}

void Sender::record_send(Seq s, Segment& seg, TimePoint now, bool retransmission) {
  seg.delivery = delivery_.on_send(now, queue_.list_empty());
  seg.last_sent = now;
  if (seg.transmissions < 255) ++seg.transmissions;
  queue_.list_append(s);
  in_flight_ += seg.length;
  pacer_.on_sent(seg.length);
  cc_->on_packet_sent(cc_stats(), now, seg.length, retransmission);
  ++stats_.segments_sent;
  if (retransmission) ++stats_.retransmissions;
  // RFC 6298 §5.1.
  if (rto_deadline_ == kNever) rto_deadline_ = now + rtt_.backed_off_rto();
  arm_tail_loss_probe(now);
}

// RFC 8985 §7.2: (re)start the probe timer while data is in flight, unless a
// probe already went out unanswered, RACK's timer is pending, or the RTO
// would fire first.
void Sender::arm_tail_loss_probe(TimePoint now) {
  tlp_deadline_ = kNever;
  if (!tlp_allowed_ || probing_ || consecutive_timeouts_ > 0 || queue_.list_empty() ||
      !rtt_.has_sample() || loss_deadline_ != kNever) {
    return;
  }
  Duration pto = 2 * rtt_.smoothed();
  if (in_flight_ <= config_.mss) pto += config_.peer_ack_delay;
  const TimePoint at = now + pto;
  if (at < rto_deadline_) tlp_deadline_ = at;
}

std::optional<Transmission> Sender::next_transmission(TimePoint now) {
  if (!started_) return std::nullopt;
  if (probes_due_ > 0) {
    if (auto t = next_probe(now)) return t;
  }
  if (auto t = next_retransmission(now, false)) return t;
  return next_new_segment(now, false);
}

// A TLP or RTO probe: a lost segment, else new data, else the last
// outstanding segment again.
std::optional<Transmission> Sender::next_probe(TimePoint now) {
  --probes_due_;
  if (auto t = next_retransmission(now, true)) return t;
  if (auto t = next_new_segment(now, true)) return t;
  for (Seq s = queue_.end_seq(); s != queue_.front_seq();) {
    --s;
    if (!queue_.at(s).sacked) return resend_outstanding(now, s);
  }
  return std::nullopt;
}

// Sends segment `s` again while it stays in flight (a probe duplicate): only
// its send time moves, so RACK measures from the latest copy.
std::optional<Transmission> Sender::resend_outstanding(TimePoint now, Seq s) {
  Segment& seg = queue_.at(s);
  if (seg.lost) return std::nullopt;
  if (seg.in_flight) {
    queue_.list_remove(s);
    in_flight_ -= seg.length;
  }
  record_send(s, seg, now, true);
  return Transmission{s, seg.offset, seg.length, seg.fin, true};
}

std::optional<Transmission> Sender::next_retransmission(TimePoint now, bool probe) {
  if (lost_count_ == 0) return std::nullopt;
  Seq s = seq_max(retransmit_hint_, queue_.front_seq());
  while (s != queue_.end_seq() && !queue_.at(s).lost) ++s;
  assert(s != queue_.end_seq());
  retransmit_hint_ = s;
  Segment& seg = queue_.at(s);
  if (!probe && !congestion_allows(now, seg.length)) return std::nullopt;
  seg.lost = false;
  --lost_count_;
  // Count the episode's first retransmissions, to tell if all were spurious.
  if (seg.transmissions == 1 && in_loss_recovery_) ++episode_retransmitted_;
  record_send(s, seg, now, true);
  return Transmission{s, seg.offset, seg.length, seg.fin, true};
}

std::optional<Transmission> Sender::next_new_segment(TimePoint now, bool probe) {
  const std::uint64_t waiting = unsent();
  const bool fin_next = waiting == 0 && fin_queued_ && !fin_sent_;
  if (waiting == 0 && !fin_next) {
    if (!probe) note_app_limited();
    return std::nullopt;
  }
  if (queue_.full()) return std::nullopt;
  const auto length = static_cast<std::uint16_t>(std::min<std::uint64_t>(waiting, config_.mss));
  // Nagle (RFC 896), when enabled: one small segment in flight at a time.
  if (config_.nagle && length < config_.mss && !fin_queued_ && !queue_.empty()) return std::nullopt;
  // Flow control: un-acked payload bytes stay within the peer's window.
  if (outstanding_ + length > peer_window_ && !probe_allowed_) {
    if (queue_.empty() && persist_deadline_ == kNever) {
      persist_deadline_ = now + rtt_.backed_off_rto();
    }
    if (!probe) note_app_limited();
    return std::nullopt;
  }
  if (!probe && !congestion_allows(now, length)) return std::nullopt;

  if (outstanding_ + length > peer_window_) probing_ = true;
  probe_allowed_ = false;
  Segment seg;
  seg.offset = sent_end_;
  seg.length = length;
  seg.fin = fin_next;
  const Seq s = queue_.push(seg);
  Segment& stored = queue_.at(s);
  sent_end_ += length;
  outstanding_ += length;
  if (fin_next) {
    fin_sent_ = true;
    fin_seq_ = s;
  }
  record_send(s, stored, now, false);
  return Transmission{s, stored.offset, stored.length, stored.fin, false};
}

// The sender could not fill cwnd for want of data or of peer window
// (draft-cheng-iccrg-delivery-rate-estimation §3.4): only when cwnd has room
// and no retransmission is waiting is the flight application-limited.
void Sender::note_app_limited() {
  if (in_flight_ < cc_->congestion_window() && lost_count_ == 0) delivery_.on_app_limited(in_flight_);
}

void Sender::copy_payload(const Transmission& t, MutableBytes out) const {
  assert(out.size() >= t.length);
  assert(t.offset >= stream_base_);
  stream_.copy_out(static_cast<std::size_t>(t.offset - stream_base_), out.first(t.length));
}

// ---- timers ------------------------------------------------------------------------

TimePoint Sender::next_expiry() const {
  return std::min({rto_deadline_, loss_deadline_, persist_deadline_, pacing_deadline_, tlp_deadline_});
}

Sender::TimerOutcome Sender::on_expiry(TimePoint now) {
  if (now >= pacing_deadline_) pacing_deadline_ = kNever;  // poll_transmit retries
  if (now >= loss_deadline_) {
    detect_losses(now);
    report_losses(now);
    arm_tail_loss_probe(now);
  }
  if (now >= tlp_deadline_) {
    // RFC 8985 §7.3: one probe, then wait for an ACK or the RTO.
    tlp_deadline_ = kNever;
    tlp_allowed_ = false;
    probes_due_ = 1;
    ++stats_.tail_loss_probes;
  }
  if (now >= persist_deadline_) {
    // RFC 1122 §4.2.2.17: probe the zero window, backing off like the RTO.
    persist_deadline_ = kNever;
    probe_allowed_ = true;
    rtt_.on_timeout();
  }
  if (now >= rto_deadline_) {
    if (consecutive_timeouts_ >= config_.max_retransmissions) return TimerOutcome::kFailed;
    on_retransmission_timeout(now);
  }
  return TimerOutcome::kNone;
}

void Sender::on_retransmission_timeout(TimePoint now) {
  ++consecutive_timeouts_;
  ++stats_.timeouts;
  stats_.max_consecutive_timeouts =
      std::max<std::uint64_t>(stats_.max_consecutive_timeouts, consecutive_timeouts_);
  if (queue_.empty()) {
    rto_deadline_ = kNever;
    return;
  }
  // A probe that went unanswered is not a congestion signal.
  if (!probing_) cc_->on_retransmission_timeout(cc_stats(), now);
  episode_retransmitted_ = 0;  // a timeout is never undone
  // RFC 6675 §5.1 / RFC 5681 §3.1: everything in flight is presumed lost; the
  // retransmissions then go out as the (collapsed) window allows.
  while (!queue_.list_empty()) mark_lost(queue_.list_front());
  clear_pending_loss();
  rtt_.on_timeout();
  rto_deadline_ = now + rtt_.backed_off_rto();
  loss_deadline_ = kNever;
  tlp_deadline_ = kNever;
  probes_due_ = 2;
}

bool Sender::on_path_restored(TimePoint now) {
  // Only a timer that timeouts have backed off waits needlessly long; a
  // zero-window probe keeps its own (persist) schedule.
  if (queue_.empty() || probing_ || rtt_.backoff() == 0) return false;
  rtt_.reset_backoff();
  while (!queue_.list_empty()) mark_lost(queue_.list_front());
  clear_pending_loss();
  rto_deadline_ = now + rtt_.backed_off_rto();
  loss_deadline_ = kNever;
  tlp_deadline_ = kNever;
  probes_due_ = 2;
  return true;
}

// ---- inspection ----------------------------------------------------------------------

std::size_t Sender::allocated() const {
  return stream_.allocated() + queue_.allocated() + scoreboard_.allocated();
}

bool Sender::check_invariants() const {
  std::uint64_t in_flight = 0;
  std::uint64_t outstanding = 0;
  std::size_t lost = 0;
  std::size_t sacked = 0;
  std::size_t listed = 0;
  std::uint64_t offset = stream_base_;
  for (Seq s = queue_.front_seq(); s != queue_.end_seq(); ++s) {
    const Segment& seg = queue_.at(s);
    if (seg.offset != offset) return false;
    offset += seg.length;
    outstanding += seg.length;
    if (seg.in_flight) {
      in_flight += seg.length;
      ++listed;
      if (seg.sacked || seg.lost) return false;
    }
    if (seg.sacked) ++sacked;
    if (seg.lost) {
      ++lost;
      if (seg.sacked) return false;
      if (seq_lt(s, retransmit_hint_)) return false;
    }
    if (seg.fin && (s != fin_seq_ || seg.length != 0)) return false;
    if (seg.length > config_.mss) return false;
  }
  if (offset != sent_end_) return false;
  if (sent_end_ > stream_base_ + stream_.size()) return false;
  if (in_flight != in_flight_ || outstanding != outstanding_ || lost != lost_count_ ||
      sacked != sacked_count_) {
    return false;
  }
  if (listed != queue_.list_size()) return false;
  if (stream_.size() > stream_.capacity()) return false;
  if (!queue_.empty() && rto_deadline_ == kNever) return false;
  return true;
}

}  // namespace buckwild::conn
