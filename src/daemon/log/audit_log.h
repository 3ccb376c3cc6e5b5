// The audit log: one JSON object per line, appended to a file an operator (or
// a SIEM) reads: sessions established and closed, PSK use, configuration
// changes. Never contains key material.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

class AuditLog {
 public:
  // Opens (creating with mode 0600) `path` for appending. Errors: open(2)'s.
  static SysResult<std::unique_ptr<AuditLog>> open(std::string path);

  // Appends {"time": "<UTC ISO 8601 with ms>", "event": event, ...fields} as
  // one line, in a single write(2) so concurrent appenders never interleave.
  // `fields` must be a JSON object (or null for none); a "time" or "event"
  // key in it is overwritten.
  SysResult<void> record(std::string_view event, const nlohmann::json& fields = nullptr);

  // Opens the path again (logrotate moved the file away) and switches to the
  // new file. On failure the old file stays in use.
  SysResult<void> reopen();

  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  static SysResult<UniqueFd> open_file(const std::string& path);

  std::string path_;
  UniqueFd fd_;
};

// "2024-05-01T12:34:56.789Z" for a Unix time in milliseconds.
std::string utc_timestamp(std::int64_t unix_ms);

}  // namespace buckwild::daemon
