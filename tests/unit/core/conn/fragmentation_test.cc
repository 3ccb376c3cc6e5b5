#include "core/conn/fragmentation.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <numeric>
#include <vector>

namespace buckwild::conn {
namespace {

std::vector<std::uint8_t> message(std::size_t n) {
  std::vector<std::uint8_t> m(n);
  std::iota(m.begin(), m.end(), 0);
  return m;
}

wire::Header header_for(const FragmentPlan& plan, std::uint16_t index) {
  wire::Header h;
  Fragmenter::fill_header(h, plan, index);
  return h;
}

TEST(FragmentationTest, PlanAndPieces) {
  Fragmenter f(40);
  EXPECT_FALSE(f.plan(100, 100));  // fits: no fragmentation
  EXPECT_FALSE(f.plan(100, 0));
  EXPECT_FALSE(f.plan(256 * 10, 10));  // 256 fragments
  auto p = f.plan(2500, 1000);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->id, 40);
  EXPECT_EQ(p->total, 3);
  const auto m = message(2500);
  EXPECT_EQ(Fragmenter::piece(m, *p, 0).size(), 1000u);
  EXPECT_EQ(Fragmenter::piece(m, *p, 2).size(), 500u);
  EXPECT_EQ(Fragmenter::piece(m, *p, 2)[0], m[2000]);
  EXPECT_EQ(f.plan(2500, 1000)->id, 41);
  const wire::Header h = header_for(*p, 1);
  EXPECT_EQ(h.type, wire::PacketType::kFragment);
  EXPECT_EQ(h.fragment_index, 1);
  EXPECT_EQ(h.fragment_total, 3);
}

TEST(FragmentationTest, ReassemblesInAnyOrderIgnoringDuplicates) {
  Fragmenter f;
  const auto m = message(3333);
  auto p = f.plan(m.size(), 1000);
  Reassembler r;
  for (std::uint16_t i : std::initializer_list<std::uint16_t>{3, 1, 1, 0}) {
    auto out = r.add(header_for(*p, i), Fragmenter::piece(m, *p, i), 0);
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->has_value());
  }
  auto done = r.add(header_for(*p, 2), Fragmenter::piece(m, *p, 2), 0);
  ASSERT_TRUE(done && done->has_value());
  EXPECT_TRUE(std::equal(m.begin(), m.end(), (*done)->begin(), (*done)->end()));
  EXPECT_EQ(r.partial_messages(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(FragmentationTest, InconsistentFragmentsDiscardTheMessage) {
  Fragmenter f;
  const auto m = message(3000);
  auto p = f.plan(m.size(), 1000);
  Reassembler r;
  ASSERT_TRUE(r.add(header_for(*p, 0), Fragmenter::piece(m, *p, 0), 0));
  wire::Header other_total = header_for(*p, 1);
  other_total.fragment_total = 4;
  EXPECT_EQ(r.add(other_total, Fragmenter::piece(m, *p, 1), 0).error().code, ErrorCode::kFragmentInvalid);
  EXPECT_EQ(r.partial_messages(), 0u);

  ASSERT_TRUE(r.add(header_for(*p, 0), Fragmenter::piece(m, *p, 0), 0));
  EXPECT_FALSE(r.add(header_for(*p, 1), Bytes(m).first(999), 0));  // piece size changed
  ASSERT_TRUE(r.add(header_for(*p, 0), Fragmenter::piece(m, *p, 0), 0));
  EXPECT_FALSE(r.add(header_for(*p, 2), Bytes(m).first(1001), 0));  // last longer than the rest
  // The last fragment first, then a shorter piece size: also inconsistent.
  ASSERT_TRUE(r.add(header_for(*p, 2), Bytes(m).first(900), 0));
  EXPECT_FALSE(r.add(header_for(*p, 0), Bytes(m).first(800), 0));
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(FragmentationTest, TimesOutThirtySecondsAfterTheFirstFragment) {
  Fragmenter f;
  const auto m = message(3000);
  auto p = f.plan(m.size(), 1000);
  Reassembler r;
  r.add(header_for(*p, 0), Fragmenter::piece(m, *p, 0), seconds(1));
  EXPECT_EQ(r.next_expiry(), seconds(31));
  r.add(header_for(*p, 1), Fragmenter::piece(m, *p, 1), seconds(20));
  EXPECT_EQ(r.next_expiry(), seconds(31));  // not extended
  r.on_expiry(seconds(31));
  EXPECT_EQ(r.partial_messages(), 0u);
  EXPECT_EQ(r.expired(), 1u);
  EXPECT_EQ(r.next_expiry(), kNever);
}

TEST(FragmentationTest, MemoryBoundEvictsTheOldest) {
  ReassemblyConfig c;
  c.max_bytes = 10'000;
  c.max_messages = 3;
  Reassembler r(c);
  Fragmenter f;
  const auto m = message(4000);
  for (int i = 0; i < 4; ++i) {
    auto p = f.plan(m.size(), 1000);
    ASSERT_TRUE(r.add(header_for(*p, 0), Fragmenter::piece(m, *p, 0), seconds(i)));
    EXPECT_LE(r.bytes_held(), c.max_bytes);
    EXPECT_LE(r.partial_messages(), c.max_messages);
  }
  EXPECT_GE(r.evicted(), 2u);
  // A message larger than the whole budget is refused outright.
  const auto big = message(20'000);
  auto p = f.plan(big.size(), 1000);
  EXPECT_EQ(r.add(header_for(*p, 0), Fragmenter::piece(big, *p, 0), seconds(9)).error().code,
            ErrorCode::kMemoryExhausted);
}

TEST(FragmentationTest, RejectsBadFields) {
  Reassembler r;
  wire::Header h;
  h.type = wire::PacketType::kFragment;
  h.fragment_total = 1;
  std::vector<std::uint8_t> b(10);
  EXPECT_FALSE(r.add(h, b, 0));
  h.fragment_total = 3;
  h.fragment_index = 3;
  EXPECT_FALSE(r.add(h, b, 0));
  h.fragment_index = 0;
  EXPECT_FALSE(r.add(h, {}, 0));
}

}  // namespace
}  // namespace buckwild::conn
