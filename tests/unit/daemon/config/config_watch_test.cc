#include "daemon/config/config_watch.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "daemon/os/event_loop.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

// Runs the loop for `d` (bounded by its own timer).
void run_for(EventLoop& loop, Duration d) {
  loop.add_timer(d, [&] { loop.stop(); });
  ASSERT_TRUE(loop.run().has_value());
}

TEST(ConfigWatchTest, AnEditInPlaceOrARenameOverTheFileIsOneChangeOthersAreNone) {
  testing::TempDir dir;
  const std::string path = dir.write("buckwild.toml", "a = 1\n", 0600);
  auto loop = EpollEventLoop::create();
  ASSERT_TRUE(loop.has_value());
  int changes = 0;
  auto watch = ConfigWatch::start(**loop, path, [&] { ++changes; }, milliseconds(20));
  ASSERT_TRUE(watch.has_value()) << watch.error().message;

  // Another file of the directory: nothing.
  dir.write("other.toml", "b = 2\n", 0600);
  run_for(**loop, milliseconds(60));
  EXPECT_EQ(changes, 0);

  // Written in place, in several writes: one change after they settle.
  {
    std::ofstream out(path, std::ios::app);
    out << "c = 3\n";
    out.flush();
    out << "d = 4\n";
  }
  run_for(**loop, milliseconds(60));
  EXPECT_EQ(changes, 1);

  // An editor's way: a new file renamed over the old one.
  const std::string tmp = dir.write(".buckwild.toml.new", "e = 5\n", 0600);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
  run_for(**loop, milliseconds(60));
  EXPECT_EQ(changes, 2);
}

TEST(ConfigWatchTest, AMissingDirectoryIsAnErrorThatSaysWhich) {
  auto loop = EpollEventLoop::create();
  ASSERT_TRUE(loop.has_value());
  auto watch = ConfigWatch::start(**loop, "/nonexistent-buckwild-dir/buckwild.toml", [] {});
  ASSERT_FALSE(watch.has_value());
  EXPECT_NE(watch.error().message.find("/nonexistent-buckwild-dir"), std::string::npos);
}

}  // namespace
}  // namespace buckwild::daemon
