// Writes one valid datagram of every packet type into the directory given as
// argv[1], as seeds for the fuzz targets.
#include <cstdio>
#include <fstream>
#include <string>

#include "support/sample_packets.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (auto t : buckwild::testing::all_packet_types()) {
    auto d = buckwild::testing::sample_datagram(t);
    std::string path = std::string(argv[1]) + "/" + std::string(buckwild::wire::packet_type_name(t));
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(d.data()),
                                                static_cast<std::streamsize>(d.size()));
  }
  // Inner packets for fuzz_inner_packet: a TCP SYN over IPv4 and over IPv6.
  const std::uint8_t tcp[20] = {0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff};
  std::string v4(20, '\0');
  v4[0] = 0x45, v4[3] = 40, v4[8] = 64, v4[9] = 6;
  v4[12] = 10, v4[13] = 77, v4[15] = 1, v4[16] = 10, v4[17] = 77, v4[19] = 2;
  std::string v6(40, '\0');
  v6[0] = 0x60, v6[5] = 20, v6[6] = 6, v6[7] = 64, v6[8] = static_cast<char>(0xfd), v6[23] = 1;
  v6[24] = static_cast<char>(0xfd), v6[39] = 2;
  for (const std::string& ip : {v4, v6}) {
    std::string packet = ip + std::string(reinterpret_cast<const char*>(tcp), sizeof tcp);
    std::ofstream(std::string(argv[1]) + "/tcp_syn_ipv" + (ip.size() == 20 ? "4" : "6"), std::ios::binary)
        .write(packet.data(), static_cast<std::streamsize>(packet.size()));
  }
  return 0;
}
