#include "daemon/log/security_audit.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>
#include <vector>

namespace buckwild::daemon {

SecurityAudit::SecurityAudit(EventLoop& loop, std::function<AuditLog*()> log,
                             SecurityAuditLimits limits)
    : loop_(loop),
      log_(std::move(log)),
      limits_(limits),
      warn_log_(5, seconds(10)) {}

SecurityAudit::SecurityAudit(EventLoop& loop, Forward forward, std::function<bool()> enabled,
                             SecurityAuditLimits limits)
    : forward_(std::move(forward)),
      forward_enabled_(std::move(enabled)),
      loop_(loop),
      limits_(limits),
      warn_log_(5, seconds(10)) {}

SecurityAudit::~SecurityAudit() {
  if (timer_ != kNoTimer) loop_.cancel_timer(timer_);
}

bool SecurityAudit::enabled() const {
  if (forward_) return forward_enabled_ && forward_enabled_();
  return log_ && log_() != nullptr;
}

void SecurityAudit::write(std::string_view event, nlohmann::json fields) {
  if (forward_) {
    forward_(std::string(event), std::move(fields));
    ++stats_.records;
    return;
  }
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

SecurityAudit::Word SecurityAudit::intern(std::string_view word) {
  // Events and reasons are closed sets of words; the cap only guards against
  // a caller that breaks that rule.
  constexpr std::size_t kMaxWords = 256;
  if (auto it = words_.find(word); it != words_.end()) return &*it;
  if (words_.size() >= kMaxWords) word = "other";
  return &*words_.emplace(word).first;
}

void SecurityAudit::count(std::string_view event, const std::optional<IpAddress>& source,
                          std::string_view reason, std::uint64_t n) {
  if (!enabled()) return;
  stats_.counted += n;
  const Word e = intern(event);
  const Word r = intern(reason);
  const Key key{e, source, r};
  auto it = counts_.find(key);
  if (it != counts_.end()) {
    it->second += n;
  } else if (counts_.size() < limits_.max_keys) {
    counts_.emplace(key, n);
  } else {
    stats_.overflowed += n;
    // Bounded by the words' cap, like everything here.
    overflow_[{e, r}] += n;
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
  // In a stable order (event, source, reason as text), not the words' addresses.
  struct Line {
    std::string event, source, reason;
    std::uint64_t count;
    bool summed;
  };
  std::vector<Line> lines;
  lines.reserve(counts_.size() + overflow_.size());
  for (const auto& [key, n] : counts_) {
    const auto& [event, source, reason] = key;
    lines.push_back({*event, source ? source->to_string() : std::string(), *reason, n, false});
  }
  for (const auto& [key, n] : overflow_) lines.push_back({*key.first, {}, *key.second, n, true});
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    return std::tie(a.summed, a.event, a.source, a.reason) < std::tie(b.summed, b.event, b.source, b.reason);
  });
  for (const Line& l : lines) {
    nlohmann::json details = {{"reason", l.reason}, {"count", l.count}, {"interval_s", interval_s}};
    if (l.summed) {
      details["sources"] =
          "more than " + std::to_string(limits_.max_keys) + " sources this interval; not listed";
    }
    write(l.event, {{"severity", "warning"},
                    {"source_address", l.source.empty() ? nlohmann::json(nullptr) : nlohmann::json(l.source)},
                    {"details", std::move(details)}});
  }
  counts_.clear();
  overflow_.clear();
}

}  // namespace buckwild::daemon
