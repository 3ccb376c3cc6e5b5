// The main log as JSON lines ([logging] format = "json"): each message becomes
// one JSON object on one line, with the audit log's conventions: "time" in
// RFC 3339 UTC with milliseconds, "severity" as [logging] level names levels.
// Schema: docs/architecture.md "The main log as JSON".
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string_view>

namespace buckwild::daemon {

// An spdlog formatter, set on a sink (Logging sets it on stderr). Writes
//   {"time":"2024-05-01T12:34:56.789Z","severity":"info","message":"...","logger":"buckwild"}
// and a newline. The message is escaped by nlohmann::json: quotes,
// backslashes and control characters (newlines and NUL included) as JSON
// escapes, bytes that are not UTF-8 replaced by U+FFFD, so every line parses.
// Never throws for any message text.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// "trace", "debug", "info", "warn", "error", "critical" or "off": the names
// [logging] level uses (spdlog's own say "warning" and "err").
std::string_view severity_name(spdlog::level::level_enum level);

}  // namespace buckwild::daemon
