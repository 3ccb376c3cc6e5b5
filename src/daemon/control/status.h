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

namespace buckwild::daemon {

struct DaemonFacts {
  TimePoint started = 0;  // on the loop's clock
  std::string ebpf_detail;  // where the eBPF programs attach ("" on user space)
  std::string ebpf_why_not;  // why the eBPF path is not in use ("" on it)
};

nlohmann::json daemon_status(Tunnel& tunnel, const KernelEbpfPath* ebpf, const Reloader& reloader,
                             const DaemonFacts& facts, TimePoint now);

// What AttackWatch samples: every eBPF drop verdict (0 on the user-space
// path) and every discovery message the responder refused.
AttackWatch::Totals attack_totals(const Tunnel& tunnel, const KernelEbpfPath* ebpf);

}  // namespace buckwild::daemon
