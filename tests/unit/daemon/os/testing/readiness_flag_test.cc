#include "daemon/os/testing/readiness_flag.h"

#include <gtest/gtest.h>
#include <poll.h>

namespace buckwild::daemon {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(ReadinessFlagTest, ReadableExactlyWhileSet) {
  ReadinessFlag flag;
  ASSERT_GE(flag.fd(), 0);
  EXPECT_FALSE(flag.is_set());
  EXPECT_FALSE(readable(flag.fd()));
  flag.set();
  flag.set();  // idempotent
  EXPECT_TRUE(flag.is_set());
  EXPECT_TRUE(readable(flag.fd()));
  flag.clear();
  EXPECT_FALSE(flag.is_set());
  EXPECT_FALSE(readable(flag.fd()));
  flag.clear();
  EXPECT_FALSE(readable(flag.fd()));
}

}  // namespace
}  // namespace buckwild::daemon
