#include "daemon/os/mailbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace buckwild::daemon {
namespace {

// A loop on a thread of its own, as a worker's is, and its mailbox.
struct LoopThread {
  LoopThread() {
    auto l = EpollEventLoop::create();
    EXPECT_TRUE(l);
    loop = std::move(*l);
    auto m = Mailbox::create(*loop);
    EXPECT_TRUE(m);
    mailbox = std::move(*m);
    thread = std::thread([this] {
      runner = std::this_thread::get_id();
      (void)loop->run();
    });
  }
  ~LoopThread() {
    EpollEventLoop* l = loop.get();
    mailbox->post([l] { l->stop(); });
    thread.join();
    mailbox.reset();
  }
  std::unique_ptr<EpollEventLoop> loop;
  std::unique_ptr<Mailbox> mailbox;
  std::thread thread;
  std::thread::id runner;
};

TEST(MailboxTest, CallRunsTheWorkOnTheLoopsThreadAndReturnsItsResult) {
  LoopThread t;
  const std::thread::id ran_on = t.mailbox->call([] { return std::this_thread::get_id(); });
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(ran_on, t.runner);
  EXPECT_EQ(t.mailbox->call([] { return 6 * 7; }), 42);
}

TEST(MailboxTest, PostsFromManyThreadsAllRunInEachPostersOrder) {
  LoopThread t;
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::vector<int>> seen(kThreads);  // only the loop's thread writes
  std::vector<std::thread> posters;
  for (int p = 0; p < kThreads; ++p) {
    posters.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) t.mailbox->post([&seen, p, i] { seen[p].push_back(i); });
    });
  }
  for (auto& th : posters) th.join();
  // A call after every post returns once they all ran (one queue, in order).
  t.mailbox->call([] { return 0; });
  for (int p = 0; p < kThreads; ++p) {
    ASSERT_EQ(seen[p].size(), std::size_t{kEach}) << p;
    for (int i = 0; i < kEach; ++i) ASSERT_EQ(seen[p][i], i);
  }
}

TEST(MailboxTest, AfterCloseWorkIsDroppedAndACallersFutureBreaks) {
  auto loop = EpollEventLoop::create();
  ASSERT_TRUE(loop);
  auto box = Mailbox::create(**loop);
  ASSERT_TRUE(box);
  int ran = 0;
  (*box)->post([&] { ++ran; });
  (*box)->close();  // runs what was queued
  EXPECT_EQ(ran, 1);
  (*box)->post([&] { ++ran; });
  (void)(*loop)->run_once(0);
  EXPECT_EQ(ran, 1);
  std::thread caller([&] {
    EXPECT_THROW((*box)->call([] { return 1; }), std::future_error);
  });
  caller.join();
}

}  // namespace
}  // namespace buckwild::daemon
