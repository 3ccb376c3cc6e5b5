#include "daemon/log/logging.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string_view>
#include <vector>

#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using testing::TempDir;

LoggingConfig quiet_config(LogLevel level = LogLevel::kInfo) {
  LoggingConfig c;
  c.level = level;
  c.syslog = false;
  return c;
}

// Captures what is written to file descriptor 2 while alive.
class StderrCapture {
 public:
  StderrCapture() : saved_(::dup(2)) {
    std::fflush(stderr);
    path_ = dir_.path() + "/stderr";
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string finish() {
    restore();
    return testing::read_file(path_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  TempDir dir_;
  std::string path_;
  int saved_;
};

TEST(LoggingTest, StderrLinesCarryTimeAndLevel) {
  std::string text;
  {
    StderrCapture capture;
    auto logging = Logging::start(quiet_config());
    ASSERT_TRUE(logging);
    spdlog::info("session {} established", "9f3c");
    spdlog::debug("below the level");
    spdlog::warn("careful");
    (*logging)->logger().flush();
    text = capture.finish();
  }
  std::regex info(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[info\] session 9f3c established\n)");
  std::regex warn(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[warning\] careful\n)");
  EXPECT_TRUE(std::regex_search(text, info)) << text;
  EXPECT_TRUE(std::regex_search(text, warn)) << text;
  EXPECT_EQ(text.find("below the level"), std::string::npos) << text;
}

// Each line of `text`, parsed as JSON; a line that is not JSON fails the test.
std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto parsed = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
    out.push_back(std::move(parsed));
  }
  return out;
}

// The fields every JSON line has, and nothing else.
void expect_json_fields(const nlohmann::json& line, std::string_view severity) {
  ASSERT_TRUE(line.is_object()) << line;
  EXPECT_EQ(line.size(), 4u) << line;
  ASSERT_TRUE(line.contains("time") && line["time"].is_string()) << line;
  EXPECT_TRUE(std::regex_match(line["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << line;
  EXPECT_EQ(line.value("severity", ""), severity) << line;
  EXPECT_EQ(line.value("logger", ""), "buckwild") << line;
  EXPECT_TRUE(line.contains("message") && line["message"].is_string()) << line;
}

const std::regex kTextLine(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[\w+\] .*)");

TEST(LoggingTest, TextIsTheDefaultFormat) {
  EXPECT_EQ(LoggingConfig{}.format, LogFormat::kText);
  std::string text;
  {
    StderrCapture capture;
    auto logging = Logging::start(quiet_config());
    ASSERT_TRUE(logging);
    spdlog::info("plain");
    (*logging)->logger().flush();
    text = capture.finish();
  }
  EXPECT_TRUE(std::regex_match(text.substr(0, text.size() - 1), kTextLine)) << text;
}

TEST(LoggingTest, JsonFormatWritesOneValidObjectPerStderrLine) {
  LoggingConfig c = quiet_config();
  c.format = LogFormat::kJson;
  const std::string tricky = "quote \" backslash \\ newline\nsecond line\ttab";
  const std::string nul("nul\0byte", 8);
  const std::string bad_utf8 = "bad \xff\xfe utf8 \xC3";
  std::string text;
  {
    StderrCapture capture;
    auto logging = Logging::start(c);
    ASSERT_TRUE(logging);
    spdlog::info("session {} established", "9f3c");
    spdlog::debug("below the level");
    spdlog::warn("{}", tricky);
    spdlog::error("{}", nul);
    spdlog::critical("{}", bad_utf8);
    (*logging)->logger().flush();
    text = capture.finish();
  }
  auto lines = json_lines(text);
  ASSERT_EQ(lines.size(), 4u) << text;  // the debug line is filtered out
  expect_json_fields(lines[0], "info");
  EXPECT_EQ(lines[0]["message"], "session 9f3c established");
  expect_json_fields(lines[1], "warn");
  EXPECT_EQ(lines[1]["message"], tricky);
  expect_json_fields(lines[2], "error");
  EXPECT_EQ(lines[2]["message"].get<std::string>(), nul);
  expect_json_fields(lines[3], "critical");
  // Each byte that is not UTF-8, and the cut-off sequence at the end, is U+FFFD.
  EXPECT_EQ(lines[3]["message"], "bad \xEF\xBF\xBD\xEF\xBF\xBD utf8 \xEF\xBF\xBD");
  EXPECT_EQ(text.rfind("{\"time\":", 0), 0u) << "time comes first: " << text;
}

TEST(LoggingTest, ReopenSwitchesTheStderrFormatAndLeavesExtraSinksAlone) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  sink->set_pattern("%l|%v");
  LoggingConfig json = quiet_config();
  json.format = LogFormat::kJson;
  std::string text;
  {
    StderrCapture capture;
    auto logging = Logging::start(quiet_config(), {sink});
    ASSERT_TRUE(logging);
    spdlog::info("one");
    ASSERT_TRUE((*logging)->reopen(json));
    spdlog::info("two");
    ASSERT_TRUE((*logging)->reopen());  // SIGHUP without a change keeps JSON
    spdlog::info("three");
    ASSERT_TRUE((*logging)->reopen(quiet_config()));
    spdlog::info("four");
    (*logging)->logger().flush();
    text = capture.finish();
  }
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << text;
  EXPECT_TRUE(std::regex_match(lines[0], kTextLine)) << lines[0];
  EXPECT_TRUE(lines[0].ends_with("[info] one")) << lines[0];
  for (int i : {1, 2}) {
    auto parsed = json_lines(lines[static_cast<std::size_t>(i)]);
    ASSERT_EQ(parsed.size(), 1u);
    expect_json_fields(parsed[0], "info");
    EXPECT_EQ(parsed[0]["message"], i == 1 ? "two" : "three");
  }
  EXPECT_TRUE(std::regex_match(lines[3], kTextLine)) << lines[3];
  EXPECT_TRUE(lines[3].ends_with("[info] four")) << lines[3];
  EXPECT_EQ(out.str(), "info|one\ninfo|two\ninfo|three\ninfo|four\n");
}

TEST(LoggingTest, TheLoggerPutBackKeepsTheJsonFormat) {
  LoggingConfig c = quiet_config();
  c.format = LogFormat::kJson;
  std::string text;
  {
    StderrCapture capture;
    {
      auto logging = Logging::start(c);
      ASSERT_TRUE(logging);
    }
    spdlog::warn("after the daemon's logging is gone");
    spdlog::default_logger_raw()->flush();
    text = capture.finish();
  }
  auto lines = json_lines(text);
  ASSERT_EQ(lines.size(), 1u) << text;
  expect_json_fields(lines[0], "warn");
  EXPECT_EQ(lines[0]["message"], "after the daemon's logging is gone");
  // Leave a text logger behind for the tests that follow in this process.
  auto text_logging = Logging::start(quiet_config());
  ASSERT_TRUE(text_logging);
}

TEST(LoggingTest, InstallsTheDefaultLoggerAndPutsAPlainOneBack) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  sink->set_pattern("%l|%v");
  {
    auto logging = Logging::start(quiet_config(LogLevel::kWarn), {sink});
    ASSERT_TRUE(logging);
    EXPECT_EQ(spdlog::default_logger_raw(), &(*logging)->logger());
    EXPECT_EQ((*logging)->logger().name(), "buckwild");
    EXPECT_EQ((*logging)->audit(), nullptr);
    StderrCapture quiet;  // keep the test output clean
    spdlog::info("not shown");
    spdlog::error("shown");
  }
  EXPECT_EQ(out.str(), "error|shown\n");
  // The logger we installed is gone; logging afterwards is still safe.
  EXPECT_NE(spdlog::default_logger_raw(), nullptr);
  EXPECT_EQ(spdlog::default_logger_raw()->sinks().size(), 1u);
}

TEST(LoggingTest, ReopenAppliesANewLevelAndKeepsExtraSinks) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  sink->set_pattern("%l|%v");
  auto logging = Logging::start(quiet_config(LogLevel::kInfo), {sink});
  ASSERT_TRUE(logging);
  StderrCapture quiet;
  spdlog::debug("one");
  ASSERT_TRUE((*logging)->reopen(quiet_config(LogLevel::kDebug)));
  spdlog::debug("two");
  ASSERT_TRUE((*logging)->reopen());
  spdlog::debug("three");
  EXPECT_EQ(out.str(), "debug|two\ndebug|three\n");
  EXPECT_EQ((*logging)->sink_count(), 2u);  // stderr + ours
}

TEST(LoggingTest, AuditLogIsOpenedAndFollowsReopen) {
  TempDir dir;
  LoggingConfig c = quiet_config();
  c.audit_log_path = dir.path() + "/audit.jsonl";
  auto logging = Logging::start(c);
  ASSERT_TRUE(logging) << logging.error().message;
  ASSERT_NE((*logging)->audit(), nullptr);
  ASSERT_TRUE((*logging)->audit()->record("one"));
  ASSERT_EQ(::rename(c.audit_log_path.c_str(), (c.audit_log_path + ".1").c_str()), 0);
  ASSERT_TRUE((*logging)->reopen());  // SIGHUP after logrotate
  ASSERT_TRUE((*logging)->audit()->record("two"));
  EXPECT_NE(testing::read_file(c.audit_log_path).find("\"two\""), std::string::npos);
  EXPECT_EQ(testing::read_file(c.audit_log_path).find("\"one\""), std::string::npos);

  // A new path that cannot be opened: error, and the old file stays in use.
  LoggingConfig broken = c;
  broken.audit_log_path = "/nonexistent-dir/audit.jsonl";
  auto r = (*logging)->reopen(broken);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent-dir/audit.jsonl"), std::string::npos);
  ASSERT_NE((*logging)->audit(), nullptr);
  EXPECT_EQ((*logging)->audit()->path(), c.audit_log_path);

  // Switching it off.
  ASSERT_TRUE((*logging)->reopen(quiet_config()));
  EXPECT_EQ((*logging)->audit(), nullptr);
}

TEST(LoggingTest, StartFailsWhenTheAuditLogCannotBeOpened) {
  LoggingConfig c = quiet_config();
  c.audit_log_path = "/nonexistent-dir/audit.jsonl";
  auto logging = Logging::start(c);
  ASSERT_FALSE(logging);
  EXPECT_EQ(logging.error().sys_errno, ENOENT);
}

TEST(LoggingTest, AStartThatFailsLeavesTheConfiguredFormatForItsReport) {
  LoggingConfig c = quiet_config();
  c.format = LogFormat::kJson;
  c.audit_log_path = "/nonexistent-dir/audit.jsonl";
  std::string text;
  {
    StderrCapture capture;
    auto logging = Logging::start(c);
    ASSERT_FALSE(logging);
    spdlog::error("{}", logging.error().message);  // as run_daemon reports it
    spdlog::default_logger_raw()->flush();
    text = capture.finish();
  }
  auto lines = json_lines(text);
  ASSERT_EQ(lines.size(), 1u) << text;
  expect_json_fields(lines[0], "error");
  EXPECT_NE(lines[0]["message"].get<std::string>().find("/nonexistent-dir/audit.jsonl"),
            std::string::npos);
  auto text_logging = Logging::start(quiet_config());  // text again for later tests
  ASSERT_TRUE(text_logging);
}

TEST(LoggingTest, LevelAndFacilityMappings) {
  EXPECT_EQ(to_spdlog_level(LogLevel::kTrace), spdlog::level::trace);
  EXPECT_EQ(to_spdlog_level(LogLevel::kWarn), spdlog::level::warn);
  EXPECT_EQ(to_spdlog_level(LogLevel::kOff), spdlog::level::off);
  EXPECT_EQ(syslog_facility_value(SyslogFacility::kDaemon), LOG_DAEMON);
  EXPECT_EQ(syslog_facility_value(SyslogFacility::kUser), LOG_USER);
  EXPECT_EQ(syslog_facility_value(SyslogFacility::kLocal0), LOG_LOCAL0);
  EXPECT_EQ(syslog_facility_value(SyslogFacility::kLocal7), LOG_LOCAL7);
}

// Syslog for real: in a private mount namespace a datagram socket of our own
// is /dev/log, so we read exactly what syslog(3) sends, priority included.
TEST(LoggingTest, SyslogGetsTheConfiguredFacilityAndReopenChangesIt) {
  if (!testing::is_root()) GTEST_SKIP() << "needs root for a private mount namespace";
  testing::run_isolated(CLONE_NEWNS, [] {
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
    ASSERT_EQ(::mount("tmpfs", "/dev", "tmpfs", 0, nullptr), 0) << std::strerror(errno);
    UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(sock);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/dev/log");
    ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{2, 0};
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto next = [&]() {
      char buf[1024];
      ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
      return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    };

    LoggingConfig c;
    c.level = LogLevel::kInfo;
    c.syslog = true;
    c.syslog_facility = SyslogFacility::kLocal3;
    StderrCapture quiet;
    auto logging = Logging::start(c);
    ASSERT_TRUE(logging);
    spdlog::warn("first message");
    std::string got = next();
    // <PRI> = facility * 8 + severity: local3 (19) and warning (4) = 156.
    EXPECT_EQ(got.rfind("<156>", 0), 0u) << got;
    EXPECT_NE(got.find("buckwild["), std::string::npos) << got;
    EXPECT_NE(got.find("first message"), std::string::npos) << got;
    EXPECT_EQ(got.find("[warning]"), std::string::npos)
        << "syslog lines carry no stderr prefix: " << got;

    // JSON on stderr changes nothing in syslog: still the plain message.
    c.syslog_facility = SyslogFacility::kLocal5;
    c.format = LogFormat::kJson;
    ASSERT_TRUE((*logging)->reopen(c));
    spdlog::error("second message");
    got = next();
    // local5 (21) and err (3) = 171.
    EXPECT_EQ(got.rfind("<171>", 0), 0u) << got;
    EXPECT_NE(got.find("]: second message"), std::string::npos) << got;
    EXPECT_EQ(got.find("\"severity\""), std::string::npos) << got;

    c.syslog = false;
    ASSERT_TRUE((*logging)->reopen(c));
    spdlog::error("not to syslog");
    tv = {0, 200'000};
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(next(), "");
  });
}

}  // namespace
}  // namespace buckwild::daemon
