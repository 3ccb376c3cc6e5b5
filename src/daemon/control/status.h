// The status document (docs/control.md "status"): what the daemon knows of
// itself, the tunnel's report, and the eBPF programs' counters.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "core/common/time.h"
#include "daemon/control/reload.h"
#include "daemon/ebpf/kernel_ebpf_path.h"
#include "daemon/log/attack_watch.h"
#include "daemon/tunnel/tunnel.h"
#include "daemon/workers/workers.h"

namespace buckwild::daemon {

struct DaemonFacts {
  TimePoint started = 0;  // on the loop's clock
  std::string ebpf_detail;  // where the eBPF programs attach ("" on user space)
  std::string ebpf_why_not;  // why the eBPF path is not in use ("" on it)
};

nlohmann::json daemon_status(Workers& workers, const KernelEbpfPath* ebpf, const Reloader& reloader,
                             const DaemonFacts& facts, TimePoint now);

// What AttackWatch samples: every eBPF drop verdict (0 on the user-space
// path) and every discovery message the responder refused.
AttackWatch::Totals attack_totals(Workers& workers, const KernelEbpfPath* ebpf);

// The counters of a status document (daemon_status) to the log, for SIGUSR1
// and the daemon's end; and the line `systemctl status` shows (STATUS=).
void log_stats(const nlohmann::json& status, const KernelEbpfPath* ebpf);
std::string status_line(const nlohmann::json& status, const KernelEbpfPath* ebpf);

}  // namespace buckwild::daemon
