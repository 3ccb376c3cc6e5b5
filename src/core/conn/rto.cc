#include "core/conn/rto.h"

#include <algorithm>

namespace buckwild::conn {

void RttEstimator::on_sample(Duration rtt) {
  rtt = std::max<Duration>(rtt, 1);
  latest_ = rtt;
  if (!has_sample_) {
    // RFC 6298 §2.2: the first measurement.
    srtt_ = rtt;
    rttvar_ = rtt / 2;
    min_rtt_ = rtt;
    has_sample_ = true;
  } else {
    // §2.3: RTTVAR first, with the old SRTT.
    const Duration err = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
    rttvar_ = (3 * rttvar_ + err) / 4;
    srtt_ = (7 * srtt_ + rtt) / 8;
    min_rtt_ = std::min(min_rtt_, rtt);
  }
  backoff_ = 0;
}

Duration RttEstimator::rto() const {
  if (!has_sample_) return std::clamp(config_.initial, config_.min, config_.max);
  const Duration rto = srtt_ + std::max(config_.granularity, 4 * rttvar_);
  return std::clamp(rto, config_.min, config_.max);
}

Duration RttEstimator::backed_off_rto() const {
  Duration t = rto();
  for (unsigned i = 0; i < backoff_ && t < config_.max; ++i) t *= 2;
  return std::min(t, config_.max);
}

}  // namespace buckwild::conn
