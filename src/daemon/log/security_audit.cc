#include "daemon/log/security_audit.h"

#include <spdlog/spdlog.h>

namespace buckwild::daemon {

SecurityAudit::SecurityAudit(EventLoop& loop, std::function<AuditLog*()> log,
                             SecurityAuditLimits limits)
    : loop_(loop),
      log_(std::move(log)),
      limits_(limits),
      warn_log_(5, seconds(10)) {}

SecurityAudit::~SecurityAudit() {
  if (timer_ != kNoTimer) loop_.cancel_timer(timer_);
}

bool SecurityAudit::enabled() const {
  return log_ && log_() != nullptr;
}

void SecurityAudit::write(std::string_view event, nlohmann::json fields) {
  AuditLog* log = log_ ? log_() : nullptr;
  if (log == nullptr) return;
  if (auto r = log->record(event, fields); !r) {
    ++stats_.write_errors;
    warn_log_.log(loop_.now(), "audit.write", spdlog::level::warn, "audit log {}: {}", log->path(),
                  r.error().message);
    return;
  }
  ++stats_.records;
}

void SecurityAudit::record(std::string_view event, std::string_view severity, nlohmann::json fields) {
  if (!fields.is_object()) fields = nlohmann::json::object();
  fields["severity"] = severity;
  write(event, std::move(fields));
}

void SecurityAudit::count(std::string_view event, const std::optional<IpAddress>& source,
                          std::string_view reason, std::uint64_t n) {
  if (!enabled()) return;
  stats_.counted += n;
  Key key{std::string(event), source ? source->to_string() : std::string(), std::string(reason)};
  auto it = counts_.find(key);
  if (it != counts_.end()) {
    it->second += n;
  } else if (counts_.size() < limits_.max_keys) {
    counts_.emplace(std::move(key), n);
  } else {
    stats_.overflowed += n;
    // Reasons are a closed set of words, but the sum is capped all the same.
    auto o = overflow_.find({std::string(event), std::string(reason)});
    if (o != overflow_.end()) {
      o->second += n;
    } else if (overflow_.size() < limits_.max_keys) {
      overflow_.emplace(std::make_pair(std::string(event), std::string(reason)), n);
    } else {
      overflow_[{std::string(event), "other"}] += n;
    }
  }
  arm();
}

void SecurityAudit::arm() {
  if (timer_ != kNoTimer) return;
  timer_ = loop_.add_timer(limits_.interval, [this] {
    timer_ = kNoTimer;
    flush();
  });
}

void SecurityAudit::flush() {
  const double interval_s = static_cast<double>(limits_.interval) / 1e6;
  for (const auto& [key, n] : counts_) {
    const auto& [event, source, reason] = key;
    write(event, {{"severity", "warning"},
                  {"source_address", source.empty() ? nlohmann::json(nullptr) : nlohmann::json(source)},
                  {"details", {{"reason", reason}, {"count", n}, {"interval_s", interval_s}}}});
  }
  for (const auto& [key, n] : overflow_) {
    write(key.first, {{"severity", "warning"},
                      {"source_address", nullptr},
                      {"details",
                       {{"reason", key.second},
                        {"count", n},
                        {"interval_s", interval_s},
                        {"sources", "more than " + std::to_string(limits_.max_keys) +
                                        " sources this interval; not listed"}}}});
  }
  counts_.clear();
  overflow_.clear();
}

}  // namespace buckwild::daemon
