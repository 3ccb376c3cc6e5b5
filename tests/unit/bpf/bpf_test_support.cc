#include "bpf_test_support.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/wire/codec.h"
#include "daemon/ebpf/ebpf_probe.h"
#include "daemon/net/netlink.h"

namespace buckwild::daemon::bpftest {
namespace {

void put16(Frame& f, std::size_t at, std::uint16_t v) {
  f[at] = static_cast<std::uint8_t>(v >> 8);
  f[at + 1] = static_cast<std::uint8_t>(v);
}

void append(Frame& f, std::span<const std::uint8_t> bytes) {
  for (std::uint8_t b : bytes) f.push_back(b);  // not insert(): g++ 12 -O3 warns falsely on it
}

}  // namespace

Frame buckwild_datagram(wire::PacketType type, std::size_t body_size) {
  wire::Header h;
  h.type = type;
  h.session_id =
      wire::PacketType::kDiscovery == type || wire::PacketType::kDiscoveryResponse == type
          ? 0
          : 0x0123456789ABCDEFull;
  h.packet_number = 7;
  h.connection_id = 3;
  h.timestamp_ms = 12'345'678;
  if (type == wire::PacketType::kFragment) {
    h.fragment_id = 9;
    h.fragment_index = 0;
    h.fragment_total = 2;
  }
  h.payload_length = static_cast<std::uint16_t>(body_size);
  Frame d(wire::kHeaderSize + body_size + wire::kTagSize, 0x5A);
  wire::write_header(h, d);
  return d;
}

Frame build_frame(const FrameSpec& s) {
  Frame f;
  const bool v4 = s.source.is_v4();
  if (s.ethernet) {
    const std::uint8_t macs[12] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    append(f, macs);
    if (s.vlan) {
      f.push_back(0x81);
      f.push_back(0x00);
      f.push_back(0x00);
      f.push_back(0x2A);  // VLAN 42
    }
    f.push_back(v4 ? 0x08 : 0x86);
    f.push_back(v4 ? 0x00 : 0xDD);
  }
  const bool later_fragment = s.fragment_offset > 0;
  const std::size_t udp_size = (later_fragment ? 0 : 8) + s.payload.size();
  const std::size_t ip_start = f.size();
  if (v4) {
    const std::size_t header = 20 + 4 * s.ipv4_option_words;
    f.resize(ip_start + header, 0);
    f[ip_start] = static_cast<std::uint8_t>(0x40 | (5 + s.ipv4_option_words));
    put16(f, ip_start + 2, static_cast<std::uint16_t>(header + udp_size));
    put16(f, ip_start + 4, static_cast<std::uint16_t>(s.fragment_id));
    put16(f, ip_start + 6,
          static_cast<std::uint16_t>((s.more_fragments ? 0x2000 : 0) | (s.fragment_offset & 0x1FFF)));
    f[ip_start + 8] = 64;                          // TTL
    f[ip_start + 9] = s.ip_protocol;
    std::memcpy(&f[ip_start + 12], s.source.bytes().data(), 4);
    std::memcpy(&f[ip_start + 16], s.destination.bytes().data(), 4);
    for (std::size_t i = 20; i < header; ++i) f[ip_start + i] = 0x01;  // NOP options
  } else {
    f.resize(ip_start + 40, 0);
    f[ip_start] = 0x60;
    f[ip_start + 7] = 64;  // hop limit
    std::memcpy(&f[ip_start + 8], s.source.bytes().data(), 16);
    std::memcpy(&f[ip_start + 24], s.destination.bytes().data(), 16);
    // Extension headers: hop-by-hop first (it must be), then destination
    // options; each 8 bytes of padding options. Then a fragment header if asked.
    std::uint8_t* next = &f[ip_start + 6];
    std::size_t ext_bytes = 0;
    for (std::size_t i = 0; i < s.ipv6_extension_headers; ++i) {
      *next = i == 0 ? 0 : 60;
      std::size_t at = f.size();
      f.resize(at + 8, 0);
      f[at + 2] = 1;  // PadN option of 4 bytes
      f[at + 3] = 4;
      next = &f[at];
      ext_bytes += 8;
    }
    if (s.more_fragments || later_fragment) {
      *next = 44;
      std::size_t at = f.size();
      f.resize(at + 8, 0);
      put16(f, at + 2,
            static_cast<std::uint16_t>((s.fragment_offset << 3) | (s.more_fragments ? 1 : 0)));
      put16(f, at + 4, static_cast<std::uint16_t>(s.fragment_id >> 16));
      put16(f, at + 6, static_cast<std::uint16_t>(s.fragment_id));
      next = &f[at];
      ext_bytes += 8;
    }
    *next = s.ip_protocol;
    put16(f, ip_start + 4, static_cast<std::uint16_t>(ext_bytes + udp_size));
  }
  if (later_fragment) {
    append(f, s.payload);
    return f;
  }
  const std::size_t udp = f.size();
  f.resize(udp + 8, 0);
  put16(f, udp, s.source_port);
  put16(f, udp + 2, s.destination_port);
  put16(f, udp + 4, s.udp_length.value_or(static_cast<std::uint16_t>(udp_size)));
  append(f, s.payload);
  return f;
}

Frame arp_frame() {
  Frame f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06};
  const std::uint8_t arp[28] = {0,   1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0,   0, 0, 1,
                                192, 0, 2, 7, 0, 0, 0, 0, 0,    0, 192, 0, 2, 1};
  append(f, arp);
  return f;
}

std::uint32_t run_frame(int prog_fd, std::span<const std::uint8_t> frame, int ifindex,
                        BpfHook hook, std::uint32_t gso_segs, std::uint32_t gso_size) {
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.repeat = 1;
  xdp_md xdp_ctx{};
  __sk_buff skb_ctx{};
  if (ifindex > 0 && hook == BpfHook::kXdp) {
    xdp_ctx.data_end = static_cast<__u32>(frame.size());
    xdp_ctx.ingress_ifindex = static_cast<__u32>(ifindex);
    opts.ctx_in = &xdp_ctx;
    opts.ctx_size_in = sizeof xdp_ctx;
  } else if (ifindex > 0 || gso_segs > 0) {
    skb_ctx.ifindex = static_cast<__u32>(ifindex);
    skb_ctx.gso_segs = gso_segs;
    skb_ctx.gso_size = gso_size;
    opts.ctx_in = &skb_ctx;
    opts.ctx_size_in = sizeof skb_ctx;
  }
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(-err);
  return opts.retval;
}

std::unique_ptr<EbpfPrograms> load_filter(const BpfFilterConfig& config, std::string& skip,
                                         const BpfLoadOptions& options) {
  auto loaded = EbpfPrograms::load(config, options);
  if (loaded) return std::move(*loaded);
  // Skipped only where this process cannot run eBPF at all. The verifier also
  // answers EACCES when it rejects a program: where the probe loads, that is
  // our bug, and a failure.
  if (auto probe = probe_bpf_support(); !probe) {
    skip = "cannot load eBPF programs here: " + probe.error().message;
    return nullptr;
  }
  ADD_FAILURE() << "loading the eBPF filter failed: " << loaded.error().message;
  return nullptr;
}

BpfCounters counter_delta(const BpfCounters& before, const BpfCounters& after) {
  BpfCounters d;
  for (std::size_t h = 0; h < kBpfHookCount; ++h) {
    for (std::size_t c = 0; c < kBpfCounterCount; ++c) {
      auto hook = static_cast<BpfHook>(h);
      auto counter = static_cast<BpfCounter>(c);
      d.set(hook, counter, after.get(hook, counter) - before.get(hook, counter));
    }
  }
  return d;
}

std::string describe(const BpfCounters& counters) {
  std::string out;
  for (std::size_t h = 0; h < kBpfHookCount; ++h) {
    for (std::size_t c = 0; c < kBpfCounterCount; ++c) {
      auto hook = static_cast<BpfHook>(h);
      auto counter = static_cast<BpfCounter>(c);
      if (counters.get(hook, counter) == 0) continue;
      if (!out.empty()) out += ' ';
      out += std::string(bpf_hook_name(hook)) + "." + std::string(bpf_counter_name(counter)) + "=" +
             std::to_string(counters.get(hook, counter));
    }
  }
  return out.empty() ? "(all zero)" : out;
}

void expect_single_verdict(const BpfCounters& delta, BpfHook hook, BpfCounter counter) {
  for (std::size_t c = BW_CTR_PASS; c <= BW_CTR_STEER_FAILED; ++c) {
    auto each = static_cast<BpfCounter>(c);
    EXPECT_EQ(delta.get(hook, each), each == counter ? 1u : 0u)
        << bpf_hook_name(hook) << "." << bpf_counter_name(each) << "; all: " << describe(delta);
  }
}

void loopback_up() {
  auto nl = Netlink::open();
  ASSERT_TRUE(nl) << nl.error().message;
  auto lo = Netlink::ifindex("lo");
  ASSERT_TRUE(lo) << lo.error().message;
  auto up = nl->set_link(*lo, std::nullopt, Netlink::LinkState::kUp);
  ASSERT_TRUE(up) << up.error().message;
}

UniqueFd plain_udp_socket(const SocketAddress& at) {
  const int domain = at.ip.is_v4() ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(domain, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd) << std::strerror(errno);
  if (!at.ip.is_v4()) {
    int v6only = at.ip.is_unspecified() ? 0 : 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  sockaddr_storage ss{};
  socklen_t len = at.to_sockaddr(ss);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len), 0)
      << at.to_string() << ": " << std::strerror(errno);
  return fd;
}

void send_datagram(int fd, std::span<const std::uint8_t> payload, const SocketAddress& to) {
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
  sockaddr_storage ss{};
  socklen_t len = to.to_sockaddr(ss, local.ss_family == AF_INET ? IpFamily::kV4 : IpFamily::kV6);
  ssize_t n =
      ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
  EXPECT_EQ(n, static_cast<ssize_t>(payload.size()))
      << "sendto " << to.to_string() << ": " << std::strerror(errno);
}

std::optional<Received> receive_one(DatagramSocket& socket, int timeout_ms) {
  pollfd p{socket.fd(), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
  Frame buffer(65536);
  ReceivedDatagram slot{MutableBytes(buffer)};
  auto n = socket.receive_batch({&slot, 1});
  EXPECT_TRUE(n) << n.error().message;
  if (!n || *n == 0) return std::nullopt;
  buffer.resize(slot.length);
  return Received{std::move(buffer), slot.source, slot.destination};
}

Frame marker(std::uint8_t tag) {
  Frame d = buckwild_datagram(wire::PacketType::kData, 32);
  std::fill(d.begin() + wire::kHeaderSize, d.begin() + wire::kHeaderSize + 32, tag);
  return d;
}

}  // namespace buckwild::daemon::bpftest
