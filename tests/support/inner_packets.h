// IPv4 packets as applications would send them through the tunnel, built from
// scratch (checksums computed here, not by the code under test), for tests of
// the tunnel and of the transparent TCP bridge.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/common/socket_address.h"

namespace buckwild::testing {

// A TCP segment without options or payload (40 bytes over IPv4, 60 over IPv6:
// the family of `source`), `flags` as in inner::tcp_flag, valid IP and TCP
// checksums.
std::vector<std::uint8_t> tcp_segment(const SocketAddress& source, const SocketAddress& destination,
                                      std::uint8_t flags);

}  // namespace buckwild::testing
