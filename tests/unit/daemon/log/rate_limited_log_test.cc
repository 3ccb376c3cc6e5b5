#include "daemon/log/rate_limited_log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>
#include <string>
#include <vector>

namespace buckwild::daemon {
namespace {

class RateLimitedLogTest : public ::testing::Test {
 protected:
  RateLimitedLogTest()
      : sink_(std::make_shared<spdlog::sinks::ostream_sink_st>(out_)),
        logger_(std::make_shared<spdlog::logger>("test", sink_)) {
    sink_->set_pattern("%l %v");
    logger_->set_level(spdlog::level::trace);
  }
  std::vector<std::string> lines() {
    std::vector<std::string> v;
    std::istringstream in(out_.str());
    for (std::string l; std::getline(in, l);) v.push_back(l);
    out_.str("");
    return v;
  }

  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_st> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

TEST_F(RateLimitedLogTest, AllowsABurstThenSummarises) {
  RateLimitedLog log(3, seconds(10), 16, logger_);
  for (int i = 0; i < 10; ++i) {
    log.log(seconds(1), "udp.auth_failed", spdlog::level::warn, "bad tag from {}", i);
  }
  EXPECT_EQ(lines(), (std::vector<std::string>{"warning bad tag from 0", "warning bad tag from 1",
                                               "warning bad tag from 2"}));
  // Still inside the interval: nothing.
  log.log(seconds(10), "udp.auth_failed", spdlog::level::warn, "bad tag from {}", 10);
  EXPECT_TRUE(lines().empty());
  // The next interval: the summary first, then the message.
  log.log(seconds(11), "udp.auth_failed", spdlog::level::warn, "bad tag from {}", 11);
  EXPECT_EQ(lines(), (std::vector<std::string>{
                         "warning udp.auth_failed: suppressed 8 similar messages in the last 10 s",
                         "warning bad tag from 11"}));
}

TEST_F(RateLimitedLogTest, KeysHaveSeparateBudgets) {
  RateLimitedLog log(1, seconds(1), 16, logger_);
  log.log(0, "a", spdlog::level::info, "a1");
  log.log(0, "a", spdlog::level::info, "a2");
  log.log(0, "b", spdlog::level::info, "b1");
  EXPECT_EQ(lines(), (std::vector<std::string>{"info a1", "info b1"}));
  EXPECT_EQ(log.tracked_keys(), 2u);
}

TEST_F(RateLimitedLogTest, FlushReportsEndedIntervalsAndForgetsThem) {
  RateLimitedLog log(1, seconds(1), 16, logger_);
  log.log(0, "a", spdlog::level::warn, "a");
  log.log(0, "a", spdlog::level::warn, "a");
  log.log(0, "a", spdlog::level::warn, "a");
  log.log(milliseconds(900), "b", spdlog::level::info, "b");
  lines();
  log.flush(milliseconds(999));
  EXPECT_TRUE(lines().empty());
  log.flush(seconds(1));
  EXPECT_EQ(lines(),
            (std::vector<std::string>{"warning a: suppressed 2 similar messages in the last 1 s"}));
  EXPECT_EQ(log.tracked_keys(), 1u);  // "b" is still in its interval
  log.flush(seconds(5));
  EXPECT_TRUE(lines().empty());  // b had nothing suppressed
  EXPECT_EQ(log.tracked_keys(), 0u);
}

TEST_F(RateLimitedLogTest, KeyTableIsBounded) {
  RateLimitedLog log(1, seconds(60), 4, logger_);
  for (int i = 0; i < 1000; ++i) {
    log.log(0, "key" + std::to_string(i), spdlog::level::info, "m{}", i);
  }
  EXPECT_LE(log.tracked_keys(), 5u);  // four keys and "(other)"
  auto l = lines();
  // Four keys got their one message each, and "(other)" one for all the rest.
  EXPECT_EQ(l.size(), 5u);
  log.flush(seconds(60));
  auto summary = lines();
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0], "info (other): suppressed 995 similar messages in the last 60 s");
}

TEST_F(RateLimitedLogTest, MessagesBelowTheLevelCostNothing) {
  logger_->set_level(spdlog::level::warn);
  RateLimitedLog log(1, seconds(1), 16, logger_);
  for (int i = 0; i < 5; ++i) log.log(0, "dbg", spdlog::level::debug, "noise");
  EXPECT_EQ(log.tracked_keys(), 0u);
  log.log(0, "w", spdlog::level::warn, "real");
  EXPECT_EQ(lines(), (std::vector<std::string>{"warning real"}));
}

TEST_F(RateLimitedLogTest, DefaultsToSpdlogsDefaultLogger) {
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger_);
  RateLimitedLog log(1, seconds(1));
  log.log(0, "k", spdlog::level::err, "to the default");
  spdlog::set_default_logger(previous);
  EXPECT_EQ(lines(), (std::vector<std::string>{"error to the default"}));
}

}  // namespace
}  // namespace buckwild::daemon
