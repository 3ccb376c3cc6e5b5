// The discovery responder's limits from [security]. A header of its own, with
// no I/O, so that the discovery fuzz target runs the responder with exactly the
// limits the daemon uses.
#pragma once

#include <algorithm>

#include "core/discovery/responder.h"
#include "daemon/config/config.h"

namespace buckwild::daemon {

inline discovery::ResponderLimits responder_limits(const SecurityConfig& s) {
  discovery::ResponderLimits limits;
  limits.per_source_rate = std::max<double>(1, s.rate_limit_packets_per_second);
  limits.per_source_burst = 2 * limits.per_source_rate;
  limits.work_per_second = std::max<double>(1, s.discovery_work_per_second);
  return limits;
}

}  // namespace buckwild::daemon
