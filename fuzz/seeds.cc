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
  return 0;
}
