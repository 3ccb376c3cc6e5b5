#include "core/conn/receiver.h"

#include <algorithm>
#include <cassert>

#include "core/wire/messages.h"

namespace buckwild::conn {
namespace {

std::size_t reorder_slots(const ReceiverConfig& c) {
  return std::max<std::size_t>(2, c.buffer / std::max<std::size_t>(c.mss, 1));
}

}  // namespace

Receiver::Receiver(const ReceiverConfig& config)
    : config_(config),
      stream_(config.buffer, config.memory),
      reorder_(reorder_slots(config), config.mss, config.memory),
      tracker_(config.max_ranges),
      space_(std::max<std::size_t>(1, std::min(config.initial_window, config.buffer))) {}

std::uint8_t Receiver::scale_for(std::size_t buffer) {
  std::uint8_t s = 0;
  while (s < wire::kMaxWindowScale && (buffer >> s) > 0xFFFF) ++s;
  return s;
}

void Receiver::start(Seq isn, std::uint8_t wscale) {
  tracker_.start(isn);
  wscale_ = wscale;
  started_ = true;
}

// ---- arrivals ------------------------------------------------------------------------

Receiver::Arrival Receiver::on_data(Seq seq, Bytes payload, TimePoint now) {
  assert(!payload.empty());
  if (!started_) return Arrival::kDropped;
  const Seq next = tracker_.ack();
  // Below the ack point, or already held: a duplicate; the sender may have
  // missed our ACK, so repeat it at once.
  if (seq_lt(seq, next) || tracker_.holds(seq)) {
    ++stats_.duplicates;
    ack_now_ = true;
    return Arrival::kDuplicate;
  }
  // Nothing after the FIN exists.
  if (fin_seq_ && seq_ge(seq, *fin_seq_)) {
    ++stats_.dropped;
    ack_now_ = true;
    return Arrival::kDropped;
  }
  if (seq == next && reorder_.front().empty()) {
    if (stream_.free() < payload.size()) {
      ++stats_.dropped;
      ack_now_ = true;
      return Arrival::kDropped;
    }
    const bool filled_gap = !tracker_.empty();
    stream_.push(payload);
    received_total_ += payload.size();
    reorder_.advance();
    tracker_.advance();
    ++stats_.segments_in_order;
    drain();
    measure_rtt(now);
    if (filled_gap) {
      ack_now_ = true;
    } else {
      note_in_order(now);
    }
    return Arrival::kInOrder;
  }

  // Out of order (or the next expected one while the stream is full): keep it
  // if the memory bound allows, and tell the sender at once either way.
  ack_now_ = true;
  const auto distance = static_cast<std::size_t>(seq - next);
  if (reorder_.has(distance)) {
    ++stats_.duplicates;
    return Arrival::kDuplicate;
  }
  const std::size_t reserved = (reorder_.count() + 1) * config_.mss;
  if (distance >= reorder_.slots() || payload.size() > reorder_.slot_size() ||
      stream_.size() + reserved > config_.buffer) {
    ++stats_.dropped;
    return Arrival::kDropped;
  }
  // Stored first (the memory budget may refuse it), then acknowledged as
  // held: a segment the tracker reports must be one we have.
  if (reorder_.store(distance, payload) != ReorderBuffer::Store::kStored) {
    ++stats_.dropped;
    return Arrival::kDropped;
  }
  if (seq != next && !tracker_.add(seq)) {
    reorder_.erase(distance);
    ++stats_.dropped;
    return Arrival::kDropped;
  }
  ++stats_.segments_out_of_order;
  return Arrival::kOutOfOrder;
}

Receiver::Arrival Receiver::on_fin(Seq seq, TimePoint) {
  if (!started_) return Arrival::kDropped;
  ack_now_ = true;
  const Seq next = tracker_.ack();
  if (fin_seq_) return seq == *fin_seq_ ? Arrival::kDuplicate : Arrival::kDropped;
  if (seq_lt(seq, next)) return Arrival::kDropped;  // data was received past it: bogus
  // A FIN below data already held contradicts it.
  if (!tracker_.empty() && seq_lt(seq, tracker_.highest_end())) return Arrival::kDropped;
  if (seq != next) {
    if (!tracker_.add(seq)) return Arrival::kDropped;
    fin_seq_ = seq;
    return Arrival::kOutOfOrder;
  }
  fin_seq_ = seq;
  drain();
  return Arrival::kInOrder;
}

// Moves segments that are now in order from the reorder buffer into the
// stream, while they fit, and consumes the FIN when it is next.
void Receiver::drain() {
  for (;;) {
    if (fin_seq_ && tracker_.ack() == *fin_seq_ && reorder_.front().empty()) {
      if (!fin_consumed_) {
        fin_consumed_ = true;
        reorder_.advance();
        tracker_.advance();
      }
      return;
    }
    const Bytes front = reorder_.front();
    if (front.empty() || stream_.free() < front.size()) return;
    stream_.push(front);
    received_total_ += front.size();
    reorder_.advance();
    tracker_.advance();
    ++stats_.segments_in_order;
  }
}

void Receiver::note_in_order(TimePoint now) {
  // RFC 5681 §4.2: an ACK for at least every second full segment.
  if (++unacked_segments_ >= 2) {
    ack_now_ = true;
  } else if (ack_deadline_ == kNever) {
    ack_deadline_ = now + config_.ack_delay;
  }
}

std::size_t Receiver::read(MutableBytes out) {
  const std::size_t n = std::min(out.size(), stream_.size());
  stream_.copy_out(0, out.first(n));
  stream_.pop(n);
  consumed_total_ += n;
  if (n > 0) drain();
  return n;
}

// ---- autotuning ------------------------------------------------------------------------

// tcp_rcv_rtt_measure without timestamps: the time from one mark to the
// arrival of a whole advertised window past it. A sender held back by our
// window sends that window once per round trip, so the smallest such time is
// close to the round trip; a sender that is not held back makes the samples
// longer, and the minimum ignores them.
void Receiver::measure_rtt(TimePoint now) {
  if (rtt_mark_at_ != kNever) {
    if (received_total_ < rtt_mark_) return;
    const Duration sample = now - rtt_mark_at_;
    if (sample > 0 && (rtt_estimate_ == 0 || sample < rtt_estimate_)) rtt_estimate_ = sample;
  }
  rtt_mark_ = received_total_ + std::max<std::uint64_t>(advertised_window_, config_.mss);
  rtt_mark_at_ = now;
}

void Receiver::tune_window(TimePoint now, Duration rtt) {
  if (!started_ || rtt <= 0) return;
  if (measure_start_ == kNever) {
    measure_start_ = now;
    measure_consumed_ = consumed_total_;
    return;
  }
  if (now - measure_start_ < rtt) return;
  // tcp_rcv_space_adjust: the application took `copied` in one round trip; a
  // window of twice that lets the sender double its rate in the next one.
  const std::uint64_t copied = consumed_total_ - measure_consumed_;
  std::uint64_t want = 2 * copied;
  if (measure_copied_ > 0 && copied > measure_copied_) {
    want += std::min<std::uint64_t>(2 * want * (copied - measure_copied_) / measure_copied_, 4 * want);
  }
  if (copied > 0) measure_copied_ = copied;
  if (space_ < config_.buffer && want > space_) {
    space_ = static_cast<std::size_t>(std::min<std::uint64_t>(want, config_.buffer));
    ++stats_.window_growths;
  }
  measure_start_ = now;
  measure_consumed_ = consumed_total_;
}

// ---- windows and acknowledgments ---------------------------------------------------------

std::uint64_t Receiver::window_bytes() const {
  const std::size_t unread = stream_.size();
  std::uint64_t free = std::min<std::uint64_t>(stream_.free(), space_ > unread ? space_ - unread : 0);
  if (free < std::min<std::uint64_t>(config_.mss, space_ / 2)) free = 0;
  // Never retract what was already offered.
  if (advertised_edge_ > received_total_) {
    free = std::max(free, advertised_edge_ - received_total_);
  }
  return free;
}

void Receiver::record_advertised(std::uint64_t window) {
  advertised_window_ = window;
  advertised_edge_ = received_total_ + window;
}

std::uint16_t Receiver::take_window_field() {
  const std::uint64_t field = std::min<std::uint64_t>(window_bytes() >> wscale_, 0xFFFF);
  record_advertised(field << wscale_);
  return static_cast<std::uint16_t>(field);
}

std::uint32_t Receiver::take_window_bytes() {
  const std::uint64_t w = std::min<std::uint64_t>(window_bytes(), 0xFFFFFFFFu);
  record_advertised(w);
  return static_cast<std::uint32_t>(w);
}

void Receiver::on_ack_sent(bool with_blocks) {
  unacked_segments_ = 0;
  ack_deadline_ = kNever;
  // A header bitmap cannot describe ranges 33 or more segments ahead: an ACK
  // with blocks must still follow.
  ack_now_ = ack_now_ && !with_blocks && !tracker_.bitmap_covers_all();
}

bool Receiver::window_update_due() const {
  if (!started_) return false;
  const std::uint64_t now_window = window_bytes();
  const std::uint64_t mss = config_.mss;
  if (advertised_window_ < 2 * mss && now_window >= 2 * mss) return true;
  return now_window >= advertised_window_ + space_ / 2;
}

bool Receiver::check_invariants() const {
  if (stream_.size() > config_.buffer) return false;
  if (space_ == 0 || space_ > config_.buffer) return false;
  if (reorder_.count() > reorder_.slots()) return false;
  if (fin_consumed_ && !fin_seq_) return false;
  if (fin_consumed_ && tracker_.ack() != *fin_seq_ + 1) return false;
  return true;
}

}  // namespace buckwild::conn
