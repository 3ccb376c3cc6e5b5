#include "daemon/log/audit_log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace buckwild::daemon {

std::string utc_timestamp(std::int64_t unix_ms) {
  std::int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : -((-unix_ms + 999) / 1000);
  auto ms = static_cast<int>(unix_ms - secs * 1000);
  time_t t = static_cast<time_t>(secs);
  tm parts{};
  ::gmtime_r(&t, &parts);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, ms);
  return buf;
}

SysResult<UniqueFd> AuditLog::open_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
  if (!fd) return sys_fail(errno, "cannot open audit log " + path);
  return fd;
}

SysResult<std::unique_ptr<AuditLog>> AuditLog::open(std::string path) {
  auto fd = open_file(path);
  if (!fd) return std::unexpected(fd.error());
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(path), std::move(*fd)));
}

SysResult<void> AuditLog::record(std::string_view event, const nlohmann::json& fields) {
  nlohmann::json line = nlohmann::json::object();
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  line["time"] =
      utc_timestamp(static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000);
  line["event"] = std::string(event);
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      if (k != "time" && k != "event") line[k] = v;
    }
  }
  // Replace invalid UTF-8 instead of throwing: an audit line must never abort.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd_.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail(errno, "cannot write audit log " + path_);
    off += static_cast<std::size_t>(n);
  }
  return {};
}

SysResult<void> AuditLog::reopen() {
  auto fd = open_file(path_);
  if (!fd) return std::unexpected(fd.error());
  fd_ = std::move(*fd);
  return {};
}

}  // namespace buckwild::daemon
