#include "core/session/pmtu_search.h"

#include <algorithm>

namespace buckwild::session {

PmtuSearch::PmtuSearch(std::size_t base, std::size_t local_max, TimePoint now)
    : base_(std::min(base, local_max)),
      local_max_(local_max),
      bound_(local_max),
      confirmed_(base_),
      failed_(local_max + 1),
      next_probe_(now) {}

TimePoint PmtuSearch::next_expiry(Duration probe_timeout) const {
  if (outstanding_) return sent_at_ + probe_timeout;
  return std::min(next_probe_, raise_at_);
}

std::optional<PmtuSearch::Probe> PmtuSearch::poll(TimePoint now, Duration probe_timeout) {
  if (outstanding_) {
    if (now < sent_at_ + probe_timeout) return std::nullopt;
    if (attempts_ < kMaxProbes) {
      // The same probe again (same id: a late ACK of an earlier copy counts).
      ++attempts_;
      sent_at_ = now;
      return outstanding_;
    }
    const std::size_t size = outstanding_->size;
    outstanding_.reset();
    fail_size(size, now);
  }
  // PMTU_RAISE_TIMER: a path may have grown since the search ended.
  if (state_ == State::kComplete && now >= raise_at_) {
    raise_at_ = kNever;
    failed_ = bound_ + 1;
    start_search(now);
  }
  if (now < next_probe_) return std::nullopt;
  std::size_t size = confirmed_;  // kComplete: confirm the size in use
  if (state_ == State::kBase) size = base_;
  if (state_ == State::kSearch) size = next_candidate();
  outstanding_ = Probe{next_id_++, size};
  attempts_ = 1;
  sent_at_ = now;
  next_probe_ = kNever;
  return outstanding_;
}

bool PmtuSearch::on_ack(std::uint32_t id, std::size_t size, std::size_t peer_max, TimePoint now) {
  on_peer_max(peer_max);
  if (!outstanding_ || outstanding_->id != id || outstanding_->size != size) return false;
  outstanding_.reset();
  const std::size_t before = confirmed_;
  succeed(size, now);
  return confirmed_ != before;
}

void PmtuSearch::on_peer_max(std::size_t peer_max) {
  peer_max_ = peer_max;
  // Never below the base: the base probe's ACK proved the peer takes it.
  bound_ = std::max(base_, std::min(local_max_, peer_max));
  confirmed_ = std::min(confirmed_, bound_);
  failed_ = std::min(failed_, bound_ + 1);
}

bool PmtuSearch::on_send_failed(std::uint32_t id, TimePoint now) {
  if (!outstanding_ || outstanding_->id != id) return false;
  const std::size_t before = confirmed_;
  const std::size_t size = outstanding_->size;
  outstanding_.reset();
  fail_size(size, now);
  return confirmed_ != before;
}

void PmtuSearch::succeed(std::size_t size, TimePoint now) {
  switch (state_) {
    case State::kBase:
      // The base size passes and, with its ACK, the peer's maximum is known.
      start_search(now);
      return;
    case State::kSearch:
      confirmed_ = std::max(confirmed_, size);
      if (confirmed_ >= bound_ || failed_ - confirmed_ <= kGranularity) {
        complete(now);
      } else {
        next_probe_ = now;
      }
      return;
    case State::kComplete:
      next_probe_ = now + kConfirmInterval;
      return;
  }
}

void PmtuSearch::fail_size(std::size_t size, TimePoint now) {
  switch (state_) {
    case State::kBase:
      // Not even the base size: keep it (discovery got through with it) and
      // try again later.
      next_probe_ = now + kBaseRetryInterval;
      return;
    case State::kSearch:
      failed_ = std::min(failed_, size);
      if (failed_ - confirmed_ <= kGranularity) {
        complete(now);
      } else {
        next_probe_ = now;
      }
      return;
    case State::kComplete:
      // A black hole: the size in use no longer passes. Fall back to the
      // base size at once and search again below the size that failed.
      confirmed_ = base_;
      failed_ = std::max(size, base_ + 1);
      raise_at_ = kNever;
      state_ = State::kBase;
      next_probe_ = now;
      return;
  }
}

void PmtuSearch::start_search(TimePoint now) {
  state_ = State::kSearch;
  if (confirmed_ >= bound_ || failed_ - confirmed_ <= kGranularity) {
    complete(now);
  } else {
    next_probe_ = now;
  }
}

void PmtuSearch::complete(TimePoint now) {
  state_ = State::kComplete;
  next_probe_ = now + kConfirmInterval;
  raise_at_ = confirmed_ < bound_ ? now + kRaiseInterval : kNever;
}

std::size_t PmtuSearch::next_candidate() const {
  // Optimistic first: most paths carry what both ends can, and then one probe
  // ends the search.
  if (failed_ > bound_) return bound_;
  return confirmed_ + (failed_ - confirmed_) / 2;
}

}  // namespace buckwild::session
