#include "core/conn/retransmission_queue.h"

#include <algorithm>

namespace buckwild::conn {
namespace {
constexpr std::size_t kMinSlots = 64;
}

void RetransmissionQueue::reset(Seq first) {
  head_ = 0;
  count_ = 0;
  front_ = first;
  list_count_ = 0;
}

Seq RetransmissionQueue::push(const Segment& segment) {
  assert(!full());
  if (count_ == ring_.size()) grow();
  const Seq s = end_seq();
  ++count_;
  ring_[index(s)] = segment;
  return s;
}

void RetransmissionQueue::pop_front() {
  assert(!empty());
  assert(!at(front_).in_flight);
  head_ = (head_ + 1) % ring_.size();
  ++front_;
  --count_;
}

void RetransmissionQueue::list_append(Seq s) {
  Segment& seg = at(s);
  assert(!seg.in_flight);
  seg.in_flight = true;
  seg.next = s;
  if (list_count_ == 0) {
    seg.prev = s;
    list_head_ = s;
  } else {
    seg.prev = list_tail_;
    at(list_tail_).next = s;
  }
  list_tail_ = s;
  ++list_count_;
}

void RetransmissionQueue::list_remove(Seq s) {
  Segment& seg = at(s);
  assert(seg.in_flight);
  seg.in_flight = false;
  const bool is_head = s == list_head_;
  const bool is_tail = s == list_tail_;
  if (is_head && is_tail) {
    list_count_ = 0;
    return;
  }
  if (is_head) {
    list_head_ = seg.next;
    at(list_head_).prev = list_head_;
  } else if (is_tail) {
    list_tail_ = seg.prev;
    at(list_tail_).next = list_tail_;
  } else {
    at(seg.prev).next = seg.next;
    at(seg.next).prev = seg.prev;
  }
  --list_count_;
}

// Doubles the ring (up to max_segments) and linearises it from slot 0.
void RetransmissionQueue::grow() {
  const std::size_t next = std::min(std::max(ring_.size() * 2, kMinSlots), max_segments_);
  assert(next > ring_.size());
  std::vector<Segment> bigger(next);
  for (std::size_t i = 0; i < count_; ++i) bigger[i] = ring_[(head_ + i) % ring_.size()];
  ring_.swap(bigger);
  head_ = 0;
}

}  // namespace buckwild::conn
