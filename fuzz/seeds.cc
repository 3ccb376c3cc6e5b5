// Writes one valid datagram of every packet type into the directory given as
// argv[1], as seeds for the fuzz targets.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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
  // fuzz_gso_split: a TSO read as a TUN with IFF_VNET_HDR returns it, the
  // vnet header (NEEDS_CSUM, TCPV4, hdr_len 40, gso_size 100, csum 20+16)
  // and 250 bytes of TCP payload to split in three.
  {
    std::string gso = {1, 1, 40, 0, 100, 0, 20, 0, 16, 0};
    std::string ip = v4;
    ip[2] = 290 >> 8, ip[3] = static_cast<char>(290 & 0xff);
    std::string segment(reinterpret_cast<const char*>(tcp), sizeof tcp);
    segment[13] = 0x18;  // PSH|ACK
    std::ofstream(std::string(argv[1]) + "/tso_ipv4", std::ios::binary)
        .write((gso + ip + segment + std::string(250, 'x')).c_str(), 10 + 290);
    // The same with right checksums as the kernel leaves them: IPv4 header
    // checksum, the TCP field the pseudo-header seed (what the whole-packet
    // rewrite must keep right), and one over IPv6 (TCPV6, csum at 40+16).
    auto sum = [](const std::string& b, std::size_t from, std::size_t to, std::uint32_t acc) {
      for (std::size_t i = from; i + 1 < to; i += 2)
        acc += static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[i]) << 8 | static_cast<std::uint8_t>(b[i + 1]));
      while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
      return acc;
    };
    auto put = [](std::string& b, std::size_t at, std::uint32_t v) {
      b[at] = static_cast<char>((v >> 8) & 0xFF), b[at + 1] = static_cast<char>(v & 0xFF);
    };
    std::string p4 = ip + segment + std::string(250, 'x');
    put(p4, 10, ~sum(p4, 0, 20, 0) & 0xFFFF);
    put(p4, 36, sum(p4, 12, 20, 6 + 270));
    std::ofstream(std::string(argv[1]) + "/tso_ipv4_seeded", std::ios::binary)
        .write((gso + p4).c_str(), static_cast<std::streamsize>(10 + p4.size()));
    std::string p6 = v6 + segment + std::string(250, 'x');
    put(p6, 4, 270);
    put(p6, 56, sum(p6, 8, 40, 6 + 270));
    std::string gso6 = {1, 4, 60, 0, 100, 0, 40, 0, 16, 0};
    std::ofstream(std::string(argv[1]) + "/tso_ipv6_seeded", std::ios::binary)
        .write((gso6 + p6).c_str(), static_cast<std::streamsize>(10 + p6.size()));

    // fuzz_gro_coalesce: runs as the tunnel decrypts them, each packet after
    // a 2-byte length: three in-order TCP segments and a short fourth, and
    // the same of UDP datagrams over IPv4 and over IPv6, checksums complete.
    auto finish = [&](std::string p, bool six, bool udp) {
      const std::size_t t = six ? 40 : 20;
      const std::size_t len = p.size() - t;
      if (six) {
        put(p, 4, static_cast<std::uint32_t>(len));
      } else {
        put(p, 2, static_cast<std::uint32_t>(p.size()));
        put(p, 10, 0);
        put(p, 10, ~sum(p, 0, 20, 0) & 0xFFFF);
      }
      if (udp) put(p, t + 4, static_cast<std::uint32_t>(len));
      const std::size_t at = t + (udp ? 6 : 16);
      put(p, at, 0);
      const std::uint32_t seed = sum(p, six ? 8 : 12, six ? 40 : 20, (udp ? 17u : 6u) + static_cast<std::uint32_t>(len));
      put(p, at, ~sum(p, t, p.size(), seed) & 0xFFFF);
      return static_cast<char>(p.size() >> 8) + std::string(1, static_cast<char>(p.size() & 0xFF)) + p;
    };
    for (bool six : {false, true}) {
      std::string run_tcp, run_udp;
      for (std::uint32_t i = 0; i < 4; ++i) {
        const std::size_t payload = i == 3 ? 40 : 100;
        const std::string head = six ? v6 : v4;
        std::string seg(reinterpret_cast<const char*>(tcp), sizeof tcp);
        seg[13] = 0x10;  // ACK
        put(seg, 6, 1 + i * 100);  // sequence number, low half
        run_tcp += finish(head + seg + std::string(payload, static_cast<char>('a' + i)), six, false);
        std::string udp_ip = head;
        udp_ip[six ? 6 : 9] = 17;
        std::string udp_header = {static_cast<char>(0x9c), 0x40, 0x14, static_cast<char>(0xe9), 0, 0, 0, 0};
        run_udp += finish(udp_ip + udp_header + std::string(payload, static_cast<char>('a' + i)), six, true);
      }
      std::ofstream(std::string(argv[1]) + "/gro_tcp_run_ipv" + (six ? "6" : "4"), std::ios::binary)
          .write(run_tcp.data(), static_cast<std::streamsize>(run_tcp.size()));
      std::ofstream(std::string(argv[1]) + "/gro_udp_run_ipv" + (six ? "6" : "4"), std::ios::binary)
          .write(run_udp.data(), static_cast<std::streamsize>(run_udp.size()));
    }
  }

  const std::string dir = argv[1];
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  auto as_string = [](const std::vector<std::uint8_t>& v) { return std::string(v.begin(), v.end()); };

  // fuzz_discovery_responder: (source, mode, elapsed ms) then the datagram;
  // mode 1 is a genuine exchange (an empty tamper list, and one flipping a byte).
  using buckwild::wire::PacketType;
  for (PacketType t : {PacketType::kDiscovery, PacketType::kDiscoveryConfirm}) {
    write("responder_" + std::string(buckwild::wire::packet_type_name(t)),
          std::string("\x05\x00\x00\x64", 4) + as_string(buckwild::testing::sample_datagram(t)));
  }
  write("responder_genuine", std::string("\x85\x01\x03\xe8\x00", 5));
  write("responder_genuine_tampered", std::string("\x07\x01\x00\x10\x2c\x01", 6));

  // fuzz_session_open: config byte, then operations (bit 0 the receiving side).
  write("session_heartbeats", std::string("\x01\x02\x83\x03\x10\x00\x10\x01\x0a", 9));
  write("session_time_sync", std::string("\x01\x06\x12\x34\x56\x78\x07\x0a\x0c\x00\x00\x01\x02", 13));
  write("session_datagram", std::string("\x01\x16\x00\x28", 4) + std::string(40, '\x45'));
  write("session_clock_step", std::string("\x00\x12\x01\x00\x01\x00\x02\x11\x75\x30\x03", 11));

  // fuzz_udp_control: built mode (odd first byte), IP_ORIGDSTADDR then IPV6_PKTINFO.
  std::string control = "\x01";
  control += '\x00' + std::string("\xc0\x00\x02\x07", 4) + std::string(12, '\0') + std::string("\x04\x01", 2) +
             std::string(10, '\0');
  control += '\x03' + std::string("\xfd", 1) + std::string(14, '\0') + std::string("\x02\x00\x00", 3) +
             std::string(9, '\0');
  write("udp_control_built", control);

  // fuzz_psk: a 32-byte key as buckwild genpsk writes it, and a short one.
  write("psk_32", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n");
  write("psk_short", "AAECAwQFBgc=");

  // fuzz_replay_window: in-order, reordered, a jump, and the top of the range.
  write("replay_in_order", std::string("\x80\x00\x00\x80\x00\x00\x80\x00\x00\x00\x01\x05\x80\x01\x02", 15));
  write("replay_jump", std::string("\x82\x00\x00\x00\x01\x00\x00\x00\x00\x80\x00\x85\x20\x81\x00\x00\x00\x00", 18));
  write("replay_top", std::string("\x82\xff\xff\xff\xff\xff\xff\xff\xf0\x80\x00\x10\x81\x00\x00\x00\x05", 17));

  // fuzz_inner_source: one allowed /24, one claimable /16, no taken address,
  // then the two SYNs below as inner packets.
  std::string source_seed("\x01\x01\x00", 3);
  source_seed += '\x00' + std::string("\x0a\x4d\x00\x00", 4) + std::string(12, '\0') + '\x18';
  source_seed += '\x00' + std::string("\x0a\x4e\x00\x00", 4) + std::string(12, '\0') + '\x10';
  for (const std::string& ip : {v4, v6}) {
    const std::string packet = ip + std::string(reinterpret_cast<const char*>(tcp), sizeof tcp);
    source_seed += static_cast<char>(packet.size() >> 8);
    source_seed += static_cast<char>(packet.size() & 0xff);
    source_seed += packet;
  }
  write("inner_source", source_seed);

  // fuzz_config: the packaged configuration and the examples.
  for (const char* file : {"packaging/buckwild.toml", "examples/alice.toml", "examples/bob.toml"}) {
    std::ifstream f(std::string(BUCKWILD_SOURCE_DIR) + "/" + file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    write("config_" + std::filesystem::path(file).stem().string(), text);
  }
  write("config_env", std::string("BUCKWILD_NETWORK_MTU=1380\nBUCKWILD_LOGGING_LEVEL=debug") + '\0' +
                          "[network]\nvirtual_address = \"10.77.0.1/24\"\n[[psk]]\nid = \"a\"\n"
                          "key = \"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\"\n");
  return 0;
}
