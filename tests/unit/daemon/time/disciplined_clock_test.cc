#include "daemon/time/disciplined_clock.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace buckwild::daemon {
namespace {

// Both clocks the DisciplinedClock reads, set by the test.
struct Clocks {
  std::int64_t realtime_us = 1'700'000'000'000'000;
  TimePoint monotonic_us = 5'000'000;

  DisciplinedClock::Readers readers() {
    return {[this] { return realtime_us; }, [this] { return monotonic_us; }};
  }
};

// Read for every packet sealed outside a batch: each clock at most once, so
// the correction and the raw clock are of the same instant.
TEST(DisciplinedClockTest, OurTimeReadsEachClockOnce) {
  for (const bool follow_system : {true, false}) {
    Clocks c;
    int realtime_reads = 0;
    int monotonic_reads = 0;
    DisciplinedClock clock(follow_system, 0, 25, {[&] {
                                                    ++realtime_reads;
                                                    return c.realtime_us;
                                                  },
                                                  [&] {
                                                    ++monotonic_reads;
                                                    return c.monotonic_us;
                                                  }});
    clock.anchor();  // not following the system clock: carried on the monotonic one
    c.monotonic_us += 2'000'000;
    c.realtime_us += 2'000'000;
    realtime_reads = monotonic_reads = 0;
    const std::int64_t t = clock.unix_us();
    EXPECT_EQ(monotonic_reads, 1) << "follow_system " << follow_system;
    EXPECT_EQ(realtime_reads, follow_system ? 1 : 0);
    EXPECT_EQ(t, c.realtime_us + 2'000'000 * 25 / 1'000'000) << "follow_system " << follow_system;
  }
}

TEST(DisciplinedClockTest, TheTestOffsetShiftsOurTime) {
  Clocks c;
  DisciplinedClock clock(true, 40, 0, c.readers());
  EXPECT_EQ(clock.unix_us(), c.realtime_us + 40'000);
  EXPECT_EQ(clock.system_unix_us(), c.realtime_us + 40'000);
  EXPECT_EQ(clock.offset_ms(), 40);
}

// A reload's new testing.clock_offset_ms steps every reading by the
// difference at once, on the system clock and on the anchored one alike.
TEST(DisciplinedClockTest, ANewOffsetStepsTheClockByTheDifference) {
  for (const bool follow_system : {true, false}) {
    Clocks c;
    DisciplinedClock clock(follow_system, 40, 0, c.readers());
    c.realtime_us += 1'000'000;
    c.monotonic_us += 1'000'000;
    const std::int64_t before = clock.unix_us();
    const std::int64_t raw_before = clock.raw_unix_us();
    const std::int64_t system_before = clock.system_unix_us();
    clock.set_offset_ms(5040);
    EXPECT_EQ(clock.offset_ms(), 5040);
    EXPECT_EQ(clock.unix_us() - before, 5'000'000) << "follow_system " << follow_system;
    EXPECT_EQ(clock.raw_unix_us() - raw_before, 5'000'000);
    EXPECT_EQ(clock.system_unix_us() - system_before, 5'000'000);
    // And back: the clock steps back by as much.
    clock.set_offset_ms(40);
    EXPECT_EQ(clock.unix_us(), before);
    EXPECT_EQ(clock.unix_ms(), before / 1000);
  }
}

}  // namespace
}  // namespace buckwild::daemon
