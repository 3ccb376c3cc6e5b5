// The sender's record of every segment sent and not yet cumulatively acked.
//
// Segments [front_seq, end_seq) live in a ring indexed by sequence number, so
// finding the segment an ACK or SACK names is O(1). The segments currently in
// flight are also threaded, by sequence number, on a list in the order they
// were last (re)transmitted; RACK loss detection walks that list from its
// oldest end. The payload bytes themselves stay in the send stream (a segment
// records its stream offset), so a retransmission resends exactly the bytes
// and boundaries of the original.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/time.h"
#include "core/conn/delivery_rate.h"
#include "core/conn/seq.h"

namespace buckwild::conn {

struct Segment {
  std::uint64_t offset = 0;   // stream offset of the first payload byte
  TimePoint last_sent = 0;    // time of the latest (re)transmission
  DeliverySnapshot delivery;  // taken at the latest (re)transmission
  Seq prev = 0;               // send-order list links, valid while in_flight
  Seq next = 0;
  std::uint16_t length = 0;   // payload bytes; 0 for the FIN
  std::uint8_t transmissions = 0;
  bool fin = false;
  bool sacked = false;        // selectively acknowledged
  bool lost = false;          // declared lost, waiting to be retransmitted
  bool in_flight = false;     // on the send-order list
};

class RetransmissionQueue {
 public:
  // A queue that holds at most `max_segments` segments.
  explicit RetransmissionQueue(std::size_t max_segments) : max_segments_(max_segments) {}

  // Empties the queue; the next segment pushed gets sequence number `first`.
  void reset(Seq first);

  Seq front_seq() const { return front_; }
  Seq end_seq() const { return static_cast<Seq>(front_ + count_); }
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool full() const { return count_ >= max_segments_; }
  bool contains(Seq s) const { return seq_in(s, front_, end_seq()); }

  // The segment numbered `s`. Precondition: contains(s) (asserted).
  Segment& at(Seq s) { return ring_[index(s)]; }
  const Segment& at(Seq s) const { return ring_[index(s)]; }

  // Appends `segment` as end_seq() and returns its number. Precondition: !full().
  Seq push(const Segment& segment);
  // Drops the front segment. Precondition: !empty() and it is not in flight.
  void pop_front();

  // The send-order list of in-flight segments.
  void list_append(Seq s);
  void list_remove(Seq s);
  bool list_empty() const { return list_count_ == 0; }
  Seq list_front() const { return list_head_; }
  std::size_t list_size() const { return list_count_; }

  // Bytes of storage allocated (for memory accounting).
  std::size_t allocated() const { return ring_.capacity() * sizeof(Segment); }

 private:
  std::size_t index(Seq s) const {
    assert(contains(s));
    return (head_ + static_cast<std::size_t>(s - front_)) % ring_.size();
  }
  void grow();

  std::vector<Segment> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t max_segments_;
  Seq front_ = 0;
  Seq list_head_ = 0;
  Seq list_tail_ = 0;
  std::size_t list_count_ = 0;
};

}  // namespace buckwild::conn
