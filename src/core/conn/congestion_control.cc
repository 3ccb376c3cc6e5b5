#include "core/conn/congestion_control.h"

#include "core/conn/bbr.h"
#include "core/conn/new_reno.h"

namespace buckwild::conn {

std::unique_ptr<CongestionController> make_congestion_controller(CongestionAlgorithm algorithm,
                                                                 std::size_t mss) {
  switch (algorithm) {
    case CongestionAlgorithm::kNewReno:
      return std::make_unique<NewReno>(mss);
    case CongestionAlgorithm::kBbr:
      return std::make_unique<Bbr>(mss);
  }
  return std::make_unique<NewReno>(mss);
}

}  // namespace buckwild::conn
