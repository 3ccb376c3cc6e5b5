// Operator-facing logging: spdlog to stderr always, to syslog when enabled,
// at the configured level; plus the audit log when one is configured.
#pragma once

#include <spdlog/common.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/dist_sink.h>

#include <memory>
#include <vector>

#include "daemon/log/audit_log.h"
#include "daemon/config/config.h"
#include "daemon/os/sys_error.h"

namespace buckwild::daemon {

spdlog::level::level_enum to_spdlog_level(LogLevel level);
// LOG_DAEMON, LOG_USER, LOG_LOCAL0..7.
int syslog_facility_value(SyslogFacility facility);

// Owns the daemon's logger ("buckwild") and installs it as spdlog's default,
// so spdlog::info(...) anywhere reaches it. stderr lines look like
//   2024-05-01 12:34:56.789 [info] session 9f3c... established
// or, with logging.format "json", like (log/json_formatter.h)
//   {"time":"2024-05-01T12:34:56.789Z","severity":"info","message":"...","logger":"buckwild"}
// Syslog lines carry only the message (syslog adds time and priority), with
// ident "buckwild", the configured facility and the pid.
class Logging {
 public:
  // `extra_sinks` (tests: an ostream sink) are kept across reopen().
  // Errors: the audit log cannot be opened (the default logger is then a
  // plain stderr one in the configured format).
  static SysResult<std::unique_ptr<Logging>> start(const LoggingConfig& config,
                                                   std::vector<spdlog::sink_ptr> extra_sinks = {});
  Logging(const Logging&) = delete;
  Logging& operator=(const Logging&) = delete;
  // Flushes, and puts back a plain stderr default logger (in the configured
  // format).
  ~Logging();

  spdlog::logger& logger() const { return *logger_; }
  std::shared_ptr<spdlog::logger> shared_logger() const { return logger_; }
  // The sinks the logger writes to now (stderr, syslog, the extra ones).
  std::size_t sink_count() { return sinks_->sinks().size(); }

  // For SIGHUP: rebuilds the sinks from `config` (level, stderr format,
  // syslog on/off, facility: a reloaded configuration takes effect here) on
  // the same logger object, and reopens or switches the audit log. If the
  // new audit log cannot be opened the old one stays in use and the error is
  // returned; the rest of the change still happens.
  SysResult<void> reopen(const LoggingConfig& config);
  SysResult<void> reopen() { return reopen(config_); }

  // nullptr when logging.audit_log_path is "".
  AuditLog* audit() const { return audit_.get(); }

 private:
  Logging(LoggingConfig config, std::vector<spdlog::sink_ptr> extra_sinks);
  void build_sinks();

  LoggingConfig config_;
  std::vector<spdlog::sink_ptr> extra_sinks_;
  std::shared_ptr<spdlog::sinks::dist_sink_mt> sinks_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<AuditLog> audit_;
};

}  // namespace buckwild::daemon
