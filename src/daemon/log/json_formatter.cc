#include "daemon/log/json_formatter.h"

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/log/audit_log.h"

namespace buckwild::daemon {

// A formatter rather than a sink of our own: spdlog's sinks already own the
// locking, the FILE* and flushing, and a formatter is spdlog's hook for
// turning a message into bytes. Being per sink, it changes stderr alone:
// syslog keeps its plain "%v" (syslog adds time and priority itself), and any
// other sink (a file, a test's stream) can take the same formatter.
void JsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const auto unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
  // ordered_json keeps the fields in this order, time first, so a person
  // reading the raw lines sees them as they would in the text format.
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["time"] = utc_timestamp(static_cast<std::int64_t>(unix_ms));
  line["severity"] = severity_name(msg.level);
  line["message"] = std::string(msg.payload.data(), msg.payload.size());
  line["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
  // Messages carry paths, interface names and peers' strings, any bytes at
  // all: replace what is not UTF-8 instead of throwing, as the audit log does.
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  dest.append(text.data(), text.data() + text.size());
  dest.push_back('\n');
}

std::unique_ptr<spdlog::formatter> JsonFormatter::clone() const {
  return std::make_unique<JsonFormatter>();
}

std::string_view severity_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    case spdlog::level::off:
    case spdlog::level::n_levels:
      break;
  }
  return "off";
}

}  // namespace buckwild::daemon
