#include "daemon/log/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <syslog.h>

#include "daemon/log/json_formatter.h"

namespace buckwild::daemon {
namespace {

constexpr const char* kStderrPattern = "%Y-%m-%d %H:%M:%S.%e [%l] %v";
constexpr const char* kSyslogPattern = "%v";
// openlog() keeps the pointer it is given; a literal lives forever.
constexpr const char* kIdent = "buckwild";

std::unique_ptr<spdlog::formatter> stderr_formatter(LogFormat format) {
  if (format == LogFormat::kJson) return std::make_unique<JsonFormatter>();
  return std::make_unique<spdlog::pattern_formatter>(kStderrPattern);
}

}  // namespace

spdlog::level::level_enum to_spdlog_level(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kCritical:
      return spdlog::level::critical;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

int syslog_facility_value(SyslogFacility facility) {
  switch (facility) {
    case SyslogFacility::kDaemon:
      return LOG_DAEMON;
    case SyslogFacility::kUser:
      return LOG_USER;
    case SyslogFacility::kLocal0:
      return LOG_LOCAL0;
    case SyslogFacility::kLocal1:
      return LOG_LOCAL1;
    case SyslogFacility::kLocal2:
      return LOG_LOCAL2;
    case SyslogFacility::kLocal3:
      return LOG_LOCAL3;
    case SyslogFacility::kLocal4:
      return LOG_LOCAL4;
    case SyslogFacility::kLocal5:
      return LOG_LOCAL5;
    case SyslogFacility::kLocal6:
      return LOG_LOCAL6;
    case SyslogFacility::kLocal7:
      return LOG_LOCAL7;
  }
  return LOG_DAEMON;
}

Logging::Logging(LoggingConfig config, std::vector<spdlog::sink_ptr> extra_sinks)
    : config_(std::move(config)),
      extra_sinks_(std::move(extra_sinks)),
      sinks_(std::make_shared<spdlog::sinks::dist_sink_mt>()),
      logger_(std::make_shared<spdlog::logger>(kIdent, sinks_)) {}

SysResult<std::unique_ptr<Logging>> Logging::start(const LoggingConfig& config,
                                                   std::vector<spdlog::sink_ptr> extra_sinks) {
  std::unique_ptr<Logging> logging(new Logging(config, std::move(extra_sinks)));
  // Sinks first: if the audit log cannot be opened, the caller's report of
  // that goes out in the configured format (the destructor leaves a stderr
  // logger in it), not as the only text line in a JSON log.
  logging->build_sinks();
  spdlog::set_default_logger(logging->logger_);
  if (!config.audit_log_path.empty()) {
    auto audit = AuditLog::open(config.audit_log_path);
    if (!audit) return std::unexpected(audit.error());
    logging->audit_ = std::move(*audit);
  }
  return logging;
}

Logging::~Logging() {
  logger_->flush();
  if (spdlog::default_logger_raw() == logger_.get()) {
    // In the configured format: a log shipper reading JSON lines must not
    // meet a text line from the last moments of the process.
    auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    err->set_formatter(stderr_formatter(config_.format));
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(kIdent, std::move(err)));
  }
}

void Logging::build_sinks() {
  // The logger's one sink is a distributing sink whose list is swapped under
  // its lock: the workers' threads log while a reload or SIGHUP rebuilds it.
  std::vector<spdlog::sink_ptr> sinks;
  // The old syslog sink calls closelog() when destroyed: it must be gone
  // before the new one calls openlog(), or the new facility would be lost.
  sinks_->set_sinks({});
  auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  err->set_formatter(stderr_formatter(config_.format));
  sinks.push_back(std::move(err));
  if (config_.syslog) {
    auto sys = std::make_shared<spdlog::sinks::syslog_sink_mt>(
        kIdent, LOG_PID | LOG_NDELAY, syslog_facility_value(config_.syslog_facility), true);
    sys->set_pattern(kSyslogPattern);
    sinks.push_back(std::move(sys));
  }
  for (const auto& extra : extra_sinks_) sinks.push_back(extra);
  sinks_->set_sinks(std::move(sinks));
  logger_->set_level(to_spdlog_level(config_.level));
  // Warnings and worse reach the terminal or journal at once.
  logger_->flush_on(spdlog::level::warn);
}

SysResult<void> Logging::reopen(const LoggingConfig& config) {
  logger_->flush();
  SysResult<void> result;
  if (config.audit_log_path.empty()) {
    audit_.reset();
  } else if (audit_ && audit_->path() == config.audit_log_path) {
    result = audit_->reopen();
  } else {
    auto audit = AuditLog::open(config.audit_log_path);
    if (audit) {
      audit_ = std::move(*audit);
    } else {
      result = std::unexpected(audit.error());
    }
  }
  LoggingConfig next = config;
  if (!result) next.audit_log_path = audit_ ? audit_->path() : std::string();
  config_ = std::move(next);
  build_sinks();
  return result;
}

}  // namespace buckwild::daemon
