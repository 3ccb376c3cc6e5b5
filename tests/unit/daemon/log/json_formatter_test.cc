#include "daemon/log/json_formatter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "daemon/config/config.h"
#include "daemon/log/logging.h"

namespace buckwild::daemon {
namespace {

// 2026-12-05T21:10:26.123Z
constexpr std::int64_t kUnixMs = 1'796'505'026'123;

std::string json_line(std::string_view message,
                      spdlog::level::level_enum level = spdlog::level::info,
                      std::string_view logger = "buckwild") {
  spdlog::details::log_msg msg(spdlog::log_clock::time_point(std::chrono::milliseconds(kUnixMs)),
                               spdlog::source_loc{},
                               spdlog::string_view_t(logger.data(), logger.size()), level,
                               spdlog::string_view_t(message.data(), message.size()));
  spdlog::memory_buf_t buf;
  JsonFormatter().format(msg, buf);
  return std::string(buf.data(), buf.size());
}

TEST(JsonFormatterTest, WritesTimeSeverityMessageAndLoggerInThatOrderOnOneLine) {
  EXPECT_EQ(json_line("session 9f3c established"),
            "{\"time\":\"2026-12-05T21:10:26.123Z\",\"severity\":\"info\","
            "\"message\":\"session 9f3c established\",\"logger\":\"buckwild\"}\n");
  EXPECT_EQ(json_line("x", spdlog::level::warn, "other"),
            "{\"time\":\"2026-12-05T21:10:26.123Z\",\"severity\":\"warn\",\"message\":\"x\","
            "\"logger\":\"other\"}\n");
}

TEST(JsonFormatterTest, EscapesWhatJsonMustAndReplacesInvalidUtf8) {
  using namespace std::string_view_literals;
  struct Case {
    std::string_view message;
    std::string_view escaped;  // as it must appear between the quotes
    std::string_view parsed;   // what a JSON reader gets back
  };
  const Case cases[] = {
      {R"(say "hi")", R"(say \"hi\")", R"(say "hi")"},
      {R"(C:\dir\file)", R"(C:\\dir\\file)", R"(C:\dir\file)"},
      {"two\nlines\r\n", R"(two\nlines\r\n)", "two\nlines\r\n"},
      {"nul\0here"sv, R"(nul\u0000here)", "nul\0here"sv},
      {"tab\tbell\x07!esc\x1b", R"(tab\tbell\u0007!esc\u001b)", "tab\tbell\x07!esc\x1b"},
      {"bad \xff\xfe utf8", "bad \xEF\xBF\xBD\xEF\xBF\xBD utf8",
       "bad \xEF\xBF\xBD\xEF\xBF\xBD utf8"},
      {"cut \xE2\x82", "cut \xEF\xBF\xBD", "cut \xEF\xBF\xBD"},
      {"caf\xC3\xA9 \xE2\x82\xAC", "caf\xC3\xA9 \xE2\x82\xAC", "caf\xC3\xA9 \xE2\x82\xAC"},
      {"", "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(std::string(c.message)));
    std::string line = json_line(c.message);
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    std::string body = line.substr(0, line.size() - 1);
    EXPECT_EQ(body.find('\n'), std::string::npos) << "one line per message";
    EXPECT_NE(body.find("\"message\":\"" + std::string(c.escaped) + "\""), std::string::npos)
        << body;
    nlohmann::json parsed = nlohmann::json::parse(body);  // throws on invalid JSON
    EXPECT_EQ(parsed["message"].get<std::string>(), std::string(c.parsed));
    EXPECT_EQ(parsed.size(), 4u);
  }
}

TEST(JsonFormatterTest, SeverityNamesAreTheLoggingLevelNames) {
  for (LogLevel level : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                         LogLevel::kError, LogLevel::kCritical, LogLevel::kOff}) {
    EXPECT_EQ(severity_name(to_spdlog_level(level)), log_level_name(level));
  }
  EXPECT_EQ(nlohmann::json::parse(json_line("e", spdlog::level::err))["severity"], "error");
}

TEST(JsonFormatterTest, CloneFormatsTheSame) {
  spdlog::details::log_msg msg(spdlog::log_clock::time_point(std::chrono::milliseconds(kUnixMs)),
                               spdlog::source_loc{}, "buckwild", spdlog::level::critical, "gone");
  spdlog::memory_buf_t a;
  spdlog::memory_buf_t b;
  JsonFormatter original;
  original.format(msg, a);
  original.clone()->format(msg, b);
  EXPECT_EQ(std::string(a.data(), a.size()), std::string(b.data(), b.size()));
}

}  // namespace
}  // namespace buckwild::daemon
