// Can this process run Buckwild's eBPF filter here, and if not, why? Asked
// before loading, so that the daemon can say "receive path: user space
// because <reason>" instead of quoting a verifier message.
#pragma once

#include <string>

#include "daemon/os/sys_error.h"

namespace buckwild::daemon {

// Loads a trivial program of every type the filter uses (XDP, TC classifier,
// socket filter, sk_lookup) and creates a map of every type it uses (per-CPU
// array, LRU hash, socket map, ring buffer), oldest feature first. Errors:
//   EPERM / EACCES  "no permission to load eBPF programs (needs root, or
//                   CAP_BPF and CAP_NET_ADMIN)",
//   ENOSYS          the kernel has no bpf() system call,
//   EOPNOTSUPP      the kernel lacks one ("the kernel (5.4.0) has no
//                   sk_lookup programs: Linux 5.9 or later is needed").
// The filter needs more than these probes test (atomic compare-and-swap,
// Linux 5.12); a kernel between the two fails at load with the verifier's words.
SysResult<void> probe_bpf_support();

// uname's release ("6.1.0-18-amd64"), or "unknown".
std::string kernel_release();

}  // namespace buckwild::daemon
