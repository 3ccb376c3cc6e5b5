#include "core/conn/receiver.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace buckwild::conn {
namespace {

constexpr std::size_t kMss = 100;

ReceiverConfig config(std::size_t buffer = 1000) {
  ReceiverConfig c;
  c.mss = kMss;
  c.buffer = buffer;
  c.ack_delay = milliseconds(50);
  return c;
}

std::vector<std::uint8_t> seg(std::uint8_t v, std::size_t n = kMss) { return std::vector<std::uint8_t>(n, v); }

std::vector<std::uint8_t> read_all(Receiver& r) {
  std::vector<std::uint8_t> out(r.readable());
  EXPECT_EQ(r.read(out), out.size());
  return out;
}

TEST(ReceiverTest, InOrderDeliveryAndDelayedAck) {
  Receiver r(config());
  r.start(50, 0);
  EXPECT_EQ(r.on_data(50, seg(1), 0), Receiver::Arrival::kInOrder);
  EXPECT_FALSE(r.ack_due(0));
  EXPECT_EQ(r.ack_deadline(), milliseconds(50));  // ACK within 50 ms
  EXPECT_TRUE(r.ack_due(milliseconds(50)));
  EXPECT_EQ(r.on_data(51, seg(2), 1), Receiver::Arrival::kInOrder);
  EXPECT_TRUE(r.ack_due(1));  // every second segment at once
  r.on_ack_sent(true);
  EXPECT_FALSE(r.ack_due(1));
  EXPECT_EQ(r.ack(), 52u);
  const auto got = read_all(r);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_EQ(got[0], 1);
  EXPECT_EQ(got[199], 2);
}

TEST(ReceiverTest, OutOfOrderHeldThenDeliveredInOrder) {
  Receiver r(config());
  r.start(0, 0);
  EXPECT_EQ(r.on_data(2, seg(3), 0), Receiver::Arrival::kOutOfOrder);
  EXPECT_TRUE(r.ack_due(0));  // out of order: ACK at once
  EXPECT_EQ(r.sack_bitmap(), 0b10u);  // segment ack + 2
  EXPECT_EQ(r.on_data(1, seg(2), 0), Receiver::Arrival::kOutOfOrder);
  EXPECT_EQ(r.readable(), 0u);
  EXPECT_EQ(r.on_data(0, seg(1), 0), Receiver::Arrival::kInOrder);
  EXPECT_EQ(r.ack(), 3u);
  EXPECT_EQ(r.sack_bitmap(), 0u);
  const auto got = read_all(r);
  ASSERT_EQ(got.size(), 300u);
  EXPECT_EQ(got[0], 1);
  EXPECT_EQ(got[150], 2);
  EXPECT_EQ(got[250], 3);
}

TEST(ReceiverTest, DuplicatesAreRecognisedAndAckedAtOnce) {
  Receiver r(config());
  r.start(0, 0);
  r.on_data(0, seg(1), 0);
  r.on_data(3, seg(4), 0);
  r.on_ack_sent(true);
  EXPECT_EQ(r.on_data(0, seg(1), 0), Receiver::Arrival::kDuplicate);
  EXPECT_TRUE(r.ack_due(0));
  EXPECT_EQ(r.on_data(3, seg(4), 0), Receiver::Arrival::kDuplicate);
  EXPECT_EQ(r.stats().duplicates, 2u);
  EXPECT_EQ(r.readable(), kMss);
}

TEST(ReceiverTest, MemoryBoundDropsWhatDoesNotFit) {
  Receiver r(config(500));  // 5 slots of 100 bytes
  r.start(0, 0);
  for (Seq s = 1; s <= 4; ++s) EXPECT_EQ(r.on_data(s, seg(1), 0), Receiver::Arrival::kOutOfOrder);
  // One more out-of-order segment would need a sixth MSS of room.
  EXPECT_EQ(r.on_data(5, seg(1), 0), Receiver::Arrival::kDropped);
  EXPECT_EQ(r.on_data(0, seg(1), 0), Receiver::Arrival::kInOrder);
  EXPECT_EQ(r.readable(), 500u);
  EXPECT_TRUE(r.check_invariants());
  // Full: the next in-order segment has no room either.
  EXPECT_EQ(r.on_data(5, seg(1), 0), Receiver::Arrival::kDropped);
  read_all(r);
  EXPECT_EQ(r.on_data(5, seg(1), 0), Receiver::Arrival::kInOrder);
}

TEST(ReceiverTest, WindowShrinksWithUnreadDataAndReopens) {
  Receiver r(config(1000));
  r.start(0, 0);
  EXPECT_EQ(r.take_window_bytes(), 1000u);
  for (Seq s = 0; s < 10; ++s) r.on_data(s, seg(1), 0);
  EXPECT_EQ(r.take_window_bytes(), 0u);  // the application is not reading
  EXPECT_FALSE(r.window_update_due());
  std::array<std::uint8_t, 300> buf{};
  r.read(buf);
  EXPECT_TRUE(r.window_update_due());
  EXPECT_EQ(r.take_window_bytes(), 300u);
  EXPECT_FALSE(r.window_update_due());
}

TEST(ReceiverTest, SillyWindowAvoidanceAndScaledField) {
  Receiver r(config(1000));
  r.start(0, 2);
  for (Seq s = 0; s < 9; ++s) r.on_data(s, seg(1), 0);
  // 100 bytes free: below min(MSS, buffer / 2)? No, exactly one MSS: offered.
  EXPECT_EQ(r.take_window_field(), 100 >> 2);
  r.on_data(9, seg(1, 60), 0);
  // 40 bytes free would be silly, but what was offered is never withdrawn.
  EXPECT_EQ(r.take_window_field(), 40 >> 2);
  EXPECT_EQ(Receiver::scale_for(65535), 0);
  EXPECT_EQ(Receiver::scale_for(2 * 1024 * 1024), 6);
}

TEST(ReceiverTest, FinInOrderAndOutOfOrder) {
  Receiver r(config());
  r.start(10, 0);
  EXPECT_EQ(r.on_fin(12, 0), Receiver::Arrival::kOutOfOrder);
  EXPECT_FALSE(r.fin_received());
  EXPECT_EQ(r.on_data(13, seg(9), 0), Receiver::Arrival::kDropped);  // after the FIN
  r.on_data(11, seg(2), 0);
  r.on_data(10, seg(1), 0);
  EXPECT_TRUE(r.fin_received());
  EXPECT_EQ(r.ack(), 13u);
  EXPECT_EQ(r.on_fin(12, 0), Receiver::Arrival::kDuplicate);
  EXPECT_EQ(r.on_fin(14, 0), Receiver::Arrival::kDropped);  // a different FIN
  EXPECT_EQ(read_all(r).size(), 200u);
}

TEST(ReceiverTest, FinBelowHeldDataIsRejected) {
  Receiver r(config());
  r.start(0, 0);
  r.on_data(5, seg(1), 0);
  EXPECT_EQ(r.on_fin(3, 0), Receiver::Arrival::kDropped);
}

}  // namespace
}  // namespace buckwild::conn
