#include "core/conn/rack.h"

#include <gtest/gtest.h>

#include <vector>

namespace buckwild::conn {
namespace {

// Segments 100.. sent 1 ms apart from t = 0, all in flight.
RetransmissionQueue sent(int n) {
  RetransmissionQueue q(100);
  q.reset(100);
  for (int i = 0; i < n; ++i) {
    Segment s;
    s.length = 1000;
    s.transmissions = 1;
    s.last_sent = milliseconds(i);
    const Seq seq = q.push(s);
    q.list_append(seq);
  }
  return q;
}

TEST(RackTest, LaterDeliveryExposesEarlierLossAfterTheWindow) {
  RetransmissionQueue q = sent(5);
  RackDetector rack;
  // Segment 103 (sent at 3 ms) is delivered at 43 ms: RACK.rtt = 40 ms.
  q.list_remove(103);
  rack.on_delivered(103, q.at(103), milliseconds(43), milliseconds(40));
  std::vector<Seq> lost;
  auto mark = [&](Seq s) {
    lost.push_back(s);
    q.list_remove(s);
  };
  // With a 10 ms reordering window, segment 100 is lost at 0 + 40 + 10 ms.
  EXPECT_EQ(rack.detect(q, milliseconds(43), milliseconds(10), mark), milliseconds(50));
  EXPECT_TRUE(lost.empty());
  EXPECT_EQ(rack.detect(q, milliseconds(52), milliseconds(10), mark), kNever);
  // 100 and 101 are past their deadlines; 102 (due at 52 ms) is too; 104 was
  // sent after the delivered segment and is not judged.
  EXPECT_EQ(lost, (std::vector<Seq>{100, 101, 102}));
}

TEST(RackTest, ReorderingWindowIsZeroUntilReorderingIsSeen) {
  RackDetector rack;
  EXPECT_EQ(rack.reordering_window(milliseconds(40), milliseconds(50), false, 0), milliseconds(10));
  EXPECT_EQ(rack.reordering_window(milliseconds(40), milliseconds(50), false, 3), 0);
  EXPECT_EQ(rack.reordering_window(milliseconds(40), milliseconds(50), true, 0), 0);
  // A segment sent once delivered below the highest delivered: reordering.
  RetransmissionQueue q = sent(3);
  rack.on_delivered(102, q.at(102), milliseconds(42), milliseconds(40));
  rack.on_delivered(101, q.at(101), milliseconds(45), milliseconds(40));
  EXPECT_TRUE(rack.reordering_seen());
  EXPECT_EQ(rack.reordering_window(milliseconds(40), milliseconds(50), true, 5), milliseconds(10));
}

TEST(RackTest, QuickAckOfARetransmissionIsSpurious) {
  RetransmissionQueue q = sent(1);
  RackDetector rack;
  Segment& s = q.at(100);
  s.transmissions = 2;
  s.last_sent = milliseconds(50);
  EXPECT_TRUE(rack.on_delivered(100, s, milliseconds(55), milliseconds(40)));
  EXPECT_TRUE(rack.reordering_seen());
  EXPECT_FALSE(rack.valid());  // the ambiguous sample was not used
}

}  // namespace
}  // namespace buckwild::conn
