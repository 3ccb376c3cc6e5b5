// The kernel's header checks (bw_check_size / bw_check_header in
// src/bpf/filter_logic.bpf.h) must accept exactly what the core's
// wire::parse_header accepts: anything the kernel passes that the core rejects
// costs the daemon work, anything it drops that the core accepts loses traffic.
// Seeded random mutations of valid datagrams of every type, run through XDP.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "bpf_test_support.h"
#include "core/wire/codec.h"

namespace buckwild::daemon {
namespace {

using bpftest::buckwild_datagram;
using bpftest::Frame;
using bpftest::FrameSpec;

TEST(HeaderParityTest, KernelAndCoreAgreeOnMutatedHeaders) {
  std::string skip;
  auto path = bpftest::load_filter(BpfFilterConfig{}, skip);
  if (!path && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(path);
  const IpAddress peer = *IpAddress::parse("198.51.100.4");
  ASSERT_TRUE(path->update_valid_ports({ValidPort{peer, 5000}}));

  std::mt19937 rng(20240607);
  int passed = 0;
  int dropped = 0;
  for (int i = 0; i < 3000; ++i) {
    const auto type = static_cast<wire::PacketType>(1 + i % 0x18);
    Frame d = buckwild_datagram(type, 1 + rng() % 200);
    // One to three header bytes changed, biased towards the checked fields;
    // sometimes the datagram size as well.
    const int changes = 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < changes; ++c) {
      static constexpr std::size_t kChecked[] = {0, 1, 2, 3, 4, 11, 16, 28, 32, 34, 35, 37, 38, 39};
      std::size_t at =
          rng() % 2 == 0 ? kChecked[rng() % std::size(kChecked)] : rng() % wire::kHeaderSize;
      std::uint8_t value = rng() % 4 == 0 ? static_cast<std::uint8_t>(rng())
                                          : static_cast<std::uint8_t>(d[at] ^ (1u << (rng() % 8)));
      d[at] = value;
    }
    if (rng() % 8 == 0) d.resize(rng() % 2 == 0 ? d.size() + 1 : d.size() - 1);
    if (i % 500 == 0) d = buckwild_datagram(type, 1);  // unmutated controls

    FrameSpec s;
    s.source = peer;
    s.destination = *IpAddress::parse("198.51.100.1");
    s.destination_port = 5000;
    s.payload = d;
    const std::uint32_t verdict =
        bpftest::run_frame(path->program_fd(BpfHook::kXdp), bpftest::build_frame(s));
    const bool core_accepts = wire::parse_header(d).has_value();
    ASSERT_EQ(verdict == bpftest::kXdpPass, core_accepts)
        << "case " << i << ": type " << static_cast<int>(d.size() > 1 ? d[1] : 0) << ", size "
        << d.size() << ", core says "
        << (core_accepts ? "valid" : wire::parse_header(d).error().what);
    (core_accepts ? passed : dropped)++;
  }
  // Both outcomes were exercised, or the comparison proved little.
  EXPECT_GT(passed, 100);
  EXPECT_GT(dropped, 100);
}

}  // namespace
}  // namespace buckwild::daemon
