// Helpers for the eBPF tests: building frames (Ethernet + IPv4/IPv6 + UDP +
// Buckwild), running a program on one with BPF_PROG_TEST_RUN, loading the
// filter or skipping when this process may not, and counter deltas.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/wire/messages.h"
#include "daemon/ebpf/ebpf_programs.h"
#include "core/common/ip_address.h"
#include "core/common/socket_address.h"
#include "daemon/net/udp_socket.h"
#include "daemon/os/unique_fd.h"

// Skips the test unless this process is root (for private network
// namespaces) and may load eBPF programs; fails it if loading fails otherwise.
#define BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT()                                             \
  do {                                                                                  \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private network namespace"; \
    std::string bpf_skip_reason;                                                        \
    if (!::buckwild::daemon::bpftest::load_filter({}, bpf_skip_reason)) {               \
      if (!bpf_skip_reason.empty()) GTEST_SKIP() << bpf_skip_reason;                    \
      FAIL();                                                                           \
    }                                                                                   \
  } while (0)

namespace buckwild::daemon::bpftest {

using Frame = std::vector<std::uint8_t>;

// A well-formed Buckwild datagram of `type` with `body_size` body bytes:
// written with the core's wire::write_header, so it is what the daemon sends.
// Session id 0 for DISCOVERY / DISCOVERY_RESPONSE, else non-zero; FRAGMENT
// gets fragment 0 of 2.
Frame buckwild_datagram(wire::PacketType type = wire::PacketType::kData,
                        std::size_t body_size = 100);

struct FrameSpec {
  IpAddress source = *IpAddress::parse("192.0.2.7");
  IpAddress destination = *IpAddress::parse("192.0.2.1");
  std::uint16_t source_port = 40000;
  std::uint16_t destination_port = 5000;
  Frame payload;                            // the UDP payload
  std::optional<std::uint16_t> udp_length;  // default: 8 + payload size
  std::uint8_t ip_protocol = 17;            // UDP
  std::size_t ipv4_option_words = 0;        // IHL = 5 + this
  bool more_fragments = false;              // IPv4 MF / an IPv6 fragment header
  std::uint16_t fragment_offset = 0;        // 8-byte units; > 0: a later fragment, the
                                            // payload without a UDP header
  std::uint32_t fragment_id = 0;            // IPv4 (low 16 bits) or IPv6 identification
  std::size_t ipv6_extension_headers = 0;   // hop-by-hop, then destination options
  bool vlan = false;                        // one 802.1Q tag
  bool ethernet = true;                     // false: the frame starts at the IP header
};

// The whole frame described by `spec`. Both families; checksums are left zero
// (nothing on the receive hooks checks them, and loopback does not either).
Frame build_frame(const FrameSpec& spec);

// An ARP request frame (not IP at all).
Frame arp_frame();

// Runs `prog_fd` (an XDP or, with `hook` kTc, a TC program) once on `frame`
// with BPF_PROG_TEST_RUN and returns its return value; `ifindex` > 0 presents
// the frame as arriving on that interface. `gso_segs` > 0 (TC only) presents
// it as a GSO/GRO packet of that many datagrams of `gso_size` bytes.
std::uint32_t run_frame(int prog_fd, std::span<const std::uint8_t> frame, int ifindex = 0,
                        BpfHook hook = BpfHook::kXdp, std::uint32_t gso_segs = 0,
                        std::uint32_t gso_size = 0);

// XDP and TC return values.
inline constexpr std::uint32_t kXdpDrop = 1;
inline constexpr std::uint32_t kXdpPass = 2;
inline constexpr std::uint32_t kTcOk = 0;
inline constexpr std::uint32_t kTcShot = 2;

// Loads the filter with `config`. When this process may not load eBPF
// programs at all (no privilege, no bpf()), returns nullptr and sets `skip`
// to the reason; any other failure is a test failure.
std::unique_ptr<EbpfPrograms> load_filter(const BpfFilterConfig& config, std::string& skip,
                                         const BpfLoadOptions& options = {});

// Counters after minus counters before.
BpfCounters counter_delta(const BpfCounters& before, const BpfCounters& after);

// "hook.counter=n" for every non-zero counter: for failure messages.
std::string describe(const BpfCounters& counters);

// Adds a failure unless `delta` is exactly one in (hook, counter) and zero in
// every other verdict of that hook (event statistics are not checked).
void expect_single_verdict(const BpfCounters& delta, BpfHook hook, BpfCounter counter);

// ---- Real sockets, for the hooks BPF_PROG_TEST_RUN cannot show faithfully ----

// Brings `lo` up (a new network namespace starts with it down).
void loopback_up();

// A plain blocking UDP socket bound to `at` (port 0: any); "::" is dual-stack.
UniqueFd plain_udp_socket(const SocketAddress& at);

// Sends `payload` from `fd` to `to`; adds a failure if the kernel refuses.
void send_datagram(int fd, std::span<const std::uint8_t> payload, const SocketAddress& to);

struct Received {
  Frame payload;
  SocketAddress source;
  SocketAddress destination;  // the address and port it was sent to
};
// The next datagram on `socket`, waiting up to `timeout_ms`; nullopt if none.
std::optional<Received> receive_one(DatagramSocket& socket, int timeout_ms = 2000);

// A Buckwild DATA datagram whose body is `tag` repeated: distinguishable
// markers for "the bad datagram before this one was not delivered".
Frame marker(std::uint8_t tag);

}  // namespace buckwild::daemon::bpftest
