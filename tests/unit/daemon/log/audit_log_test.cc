#include "daemon/log/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>
#include <sstream>

#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using testing::read_file;
using testing::TempDir;

std::vector<nlohmann::json> lines_of(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(AuditLogTest, AppendsOneJsonObjectPerLine) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log) << log.error().message;
  ASSERT_TRUE((*log)->record("session_established", {{"peer", "10.200.0.2"}, {"psk", "main"}}));
  ASSERT_TRUE((*log)->record("daemon_stopped"));
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event"], "session_established");
  EXPECT_EQ(lines[0]["peer"], "10.200.0.2");
  EXPECT_EQ(lines[0]["psk"], "main");
  EXPECT_TRUE(std::regex_match(lines[0]["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  EXPECT_EQ(lines[1]["event"], "daemon_stopped");
  EXPECT_EQ(lines[1].size(), 2u);  // time and event only
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AuditLogTest, FieldsCannotForgeTimeOrEventAndBadUtf8IsReplaced) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log);
  ASSERT_TRUE(
      (*log)->record("real", {{"event", "forged"}, {"time", "yesterday"}, {"name", "\xff\xfe"}}));
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["event"], "real");
  EXPECT_NE(lines[0]["time"], "yesterday");
  EXPECT_TRUE(lines[0].contains("name"));
}

TEST(AuditLogTest, AppendsToAnExistingFile) {
  TempDir dir;
  std::string path = dir.write("audit.jsonl", "{\"event\":\"earlier\"}\n", 0600);
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log);
  ASSERT_TRUE((*log)->record("later"));
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event"], "earlier");
  EXPECT_EQ(lines[1]["event"], "later");
}

TEST(AuditLogTest, ReopenFollowsLogrotate) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log);
  ASSERT_TRUE((*log)->record("before"));
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  ASSERT_TRUE((*log)->record("still-old-file"));
  ASSERT_TRUE((*log)->reopen());
  ASSERT_TRUE((*log)->record("after"));
  EXPECT_EQ(lines_of(path + ".1").size(), 2u);
  auto fresh = lines_of(path);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0]["event"], "after");
}

TEST(AuditLogTest, OpenErrorsNameThePath) {
  auto log = AuditLog::open("/nonexistent-dir/audit.jsonl");
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().sys_errno, ENOENT);
  EXPECT_EQ(log.error().message,
            "cannot open audit log /nonexistent-dir/audit.jsonl: No such file or directory");
}

TEST(AuditLogTest, UtcTimestamps) {
  EXPECT_EQ(utc_timestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(utc_timestamp(1'764'080'000'123), "2025-11-25T14:13:20.123Z");
  EXPECT_EQ(utc_timestamp(-1), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace buckwild::daemon
