// Prints the ports the core's schedule gives, so the end-to-end tests can check
// a capture against them (docs/protocol.md §10).
//
//   buckwild_port_oracle PSK_BASE64 < queries
//
// Each query line is "SESSION_ID_HEX UNIX_MS DIR SPAN": the ports of connection 0
// in direction DIR (0 initiator→responder, 1 the reverse) for the windows
// window(UNIX_MS) - SPAN … + SPAN, printed on one line.
#include <openssl/evp.h>

#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/crypto/secret_bytes.h"
#include "core/hop/port_schedule.h"
#include "core/hop/time_window.h"

int main(int argc, char** argv) {
  using namespace buckwild;
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " PSK_BASE64 < queries\n";
    return 2;
  }
  const std::string b64 = argv[1];
  std::vector<std::uint8_t> raw(b64.size());
  const int n = EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0) {
    std::cerr << "PSK is not base64\n";
    return 2;
  }
  std::size_t len = static_cast<std::size_t>(n);
  for (std::size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) --len;  // padding
  auto psk = crypto::SecretBytes::copy_of(Bytes(raw.data(), len));
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string sid_hex;
    std::int64_t unix_ms = 0;
    int dir = 0, span = 0;
    if (!(in >> sid_hex >> unix_ms >> dir >> span)) continue;
    const std::uint64_t sid = std::stoull(sid_hex, nullptr, 16);
    auto schedule = hop::PortSchedule::create(psk, sid);
    if (!schedule) return 1;
    std::vector<std::uint16_t> ports;
    schedule->valid_ports(hop::window_at(unix_ms), span, static_cast<hop::Direction>(dir), 0, ports);
    for (std::size_t i = 0; i < ports.size(); ++i) std::cout << (i ? " " : "") << ports[i];
    std::cout << '\n';
  }
  return 0;
}
