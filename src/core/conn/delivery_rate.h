// Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation-02).
//
// Each segment records, when sent, how much had been delivered and when; when
// it is delivered, the bytes delivered since over the elapsed time is a rate
// sample. The sample from the latest-sent segment of an ACK goes to the
// congestion controller. Loss-based algorithms ignore it; rate-based ones
// (BBR-class) are built on it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/common/time.h"
#include "core/conn/congestion_control.h"

namespace buckwild::conn {

// What a segment remembers about the connection when it is (re)sent.
struct DeliverySnapshot {
  std::uint64_t delivered = 0;
  TimePoint delivered_time = 0;
  TimePoint first_sent_time = 0;
  bool app_limited = false;
};

class DeliveryRateEstimator {
 public:
  // A segment is being sent at `now`; `flight_empty` when nothing else is in
  // flight (the sending interval restarts). Returns what the segment keeps.
  DeliverySnapshot on_send(TimePoint now, bool flight_empty);

  // A segment of `bytes`, sent at `sent_time` with `snapshot`, was delivered
  // (cumulatively or selectively) at `now`. Call once per segment.
  void on_delivered(const DeliverySnapshot& snapshot, TimePoint sent_time, std::size_t bytes,
                    TimePoint now);

  // The sample for the ACK just processed, and a reset for the next one.
  RateSample take_sample();

  // The sender has nothing more to send (or may not send it): samples until
  // the data now in flight is delivered are marked application-limited.
  void on_app_limited(std::uint64_t bytes_in_flight);

  std::uint64_t delivered() const { return delivered_; }
  bool app_limited() const { return app_limited_until_ != 0; }

 private:
  std::uint64_t delivered_ = 0;
  TimePoint delivered_time_ = 0;
  TimePoint first_sent_time_ = 0;
  std::uint64_t app_limited_until_ = 0;  // 0: not application-limited

  // The sample being built for the current ACK.
  bool have_sample_ = false;
  std::uint64_t prior_delivered_ = 0;
  Duration send_elapsed_ = 0;
  Duration ack_elapsed_ = 0;
  bool sample_app_limited_ = false;
  TimePoint newest_sent_time_ = 0;
};

}  // namespace buckwild::conn
