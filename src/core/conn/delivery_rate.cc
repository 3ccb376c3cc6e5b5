#include "core/conn/delivery_rate.h"

#include <algorithm>

namespace buckwild::conn {

DeliverySnapshot DeliveryRateEstimator::on_send(TimePoint now, bool flight_empty) {
  if (flight_empty) {
    // Nothing in flight: the next interval starts now (draft §3.2).
    first_sent_time_ = now;
    delivered_time_ = now;
  }
  return DeliverySnapshot{delivered_, delivered_time_, first_sent_time_, app_limited()};
}

void DeliveryRateEstimator::on_delivered(const DeliverySnapshot& snapshot, TimePoint sent_time,
                                         std::size_t bytes, TimePoint now) {
  delivered_ += bytes;
  delivered_time_ = now;
  if (app_limited_until_ != 0 && delivered_ > app_limited_until_) app_limited_until_ = 0;
  // The sample comes from the most recently sent of the delivered segments.
  if (!have_sample_ || snapshot.delivered > prior_delivered_ ||
      (snapshot.delivered == prior_delivered_ && sent_time > newest_sent_time_)) {
    have_sample_ = true;
    prior_delivered_ = snapshot.delivered;
    sample_app_limited_ = snapshot.app_limited;
    send_elapsed_ = sent_time - snapshot.first_sent_time;
    ack_elapsed_ = now - snapshot.delivered_time;
    newest_sent_time_ = sent_time;
    first_sent_time_ = sent_time;
  }
}

RateSample DeliveryRateEstimator::take_sample() {
  RateSample rs;
  if (have_sample_) {
    rs.delivered = delivered_ - prior_delivered_;
    // The longer interval guards against ACK compression inflating the rate.
    rs.interval = std::max(send_elapsed_, ack_elapsed_);
    rs.is_app_limited = sample_app_limited_;
  }
  have_sample_ = false;
  return rs;
}

void DeliveryRateEstimator::on_app_limited(std::uint64_t bytes_in_flight) {
  app_limited_until_ = std::max<std::uint64_t>(delivered_ + bytes_in_flight, 1);
}

}  // namespace buckwild::conn
