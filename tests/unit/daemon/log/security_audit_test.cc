#include "daemon/log/security_audit.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "daemon/os/testing/manual_event_loop.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

std::vector<nlohmann::json> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

IpAddress addr(const char* text) {
  return *IpAddress::parse(text);
}

class SecurityAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/audit.jsonl";
    auto opened = AuditLog::open(path_);
    ASSERT_TRUE(opened.has_value());
    log_ = std::move(*opened);
  }
  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<AuditLog> log_;
  ManualEventLoop loop_{seconds(1)};
};

TEST_F(SecurityAuditTest, RecordsAreWrittenAtOnceWithTheirSeverity) {
  SecurityAudit audit(loop_, [this] { return log_.get(); });
  audit.record("reload_applied", "notice", {{"details", {{"trigger", "SIGHUP"}}}});
  const auto lines = lines_of(path_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["event"], "reload_applied");
  EXPECT_EQ(lines[0]["severity"], "notice");
  EXPECT_EQ(lines[0]["details"]["trigger"], "SIGHUP");
  EXPECT_EQ(audit.stats().records, 1u);
}

TEST_F(SecurityAuditTest, CountedEventsAreOneRecordPerKeyAndIntervalWithTheRestSummed) {
  SecurityAudit audit(loop_, [this] { return log_.get(); }, SecurityAuditLimits{seconds(10), 2});
  for (int i = 0; i < 5; ++i) audit.count("packet_rejected", addr("192.0.2.1"), "replay");
  audit.count("packet_rejected", addr("192.0.2.1"), "AUTHENTICATION_FAILED");
  audit.count("packet_rejected", addr("192.0.2.2"), "replay", 7);  // a third key: over the limit
  audit.count("packet_rejected", addr("192.0.2.3"), "replay", 3);
  EXPECT_TRUE(lines_of(path_).empty());  // nothing before the interval ends
  loop_.run_for(seconds(10));
  const auto lines = lines_of(path_);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["source_address"], "192.0.2.1");
  EXPECT_EQ(lines[0]["details"]["reason"], "AUTHENTICATION_FAILED");
  EXPECT_EQ(lines[0]["details"]["count"], 1);
  EXPECT_EQ(lines[1]["details"]["reason"], "replay");
  EXPECT_EQ(lines[1]["details"]["count"], 5);
  EXPECT_EQ(lines[1]["details"]["interval_s"], 10.0);
  EXPECT_TRUE(lines[2]["source_address"].is_null());
  EXPECT_EQ(lines[2]["details"]["count"], 10);
  EXPECT_EQ(audit.stats().counted, 16u);
  EXPECT_EQ(audit.stats().overflowed, 10u);
  // A quiet interval writes nothing.
  loop_.run_for(seconds(30));
  EXPECT_EQ(lines_of(path_).size(), 3u);
}

TEST_F(SecurityAuditTest, WithoutAnAuditLogNothingIsCountedOrKept) {
  AuditLog* none = nullptr;
  SecurityAudit audit(loop_, [&] { return none; });
  for (int i = 0; i < 1000; ++i) audit.count("filter_drop", addr("192.0.2.9"), "drop_bad_port");
  EXPECT_FALSE(audit.enabled());
  EXPECT_EQ(audit.stats().counted, 0u);
  // Switched on later (a reload set audit_log_path): counting starts.
  none = log_.get();
  audit.count("filter_drop", addr("192.0.2.9"), "drop_bad_port");
  audit.flush();
  EXPECT_EQ(lines_of(path_).size(), 1u);
}

}  // namespace
}  // namespace buckwild::daemon
