#include "daemon/ebpf/ebpf_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>

namespace buckwild::daemon {
namespace {

// Loads a two-instruction program of `type` ("return 0") and returns 0 or the
// errno of the refusal.
int probe_program(bpf_prog_type type, bpf_attach_type expected) {
  bpf_insn insns[2]{};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts{};
  opts.sz = sizeof opts;
  opts.expected_attach_type = expected;
  int fd = bpf_prog_load(type, nullptr, "Dual MIT/GPL", insns, 2, &opts);
  if (fd < 0) return -fd;
  ::close(fd);
  return 0;
}

int probe_map(bpf_map_type type) {
  __u32 key_size = 4, value_size = 8, entries = 1;
  if (type == BPF_MAP_TYPE_RINGBUF) {
    key_size = 0;
    value_size = 0;
    entries = 4096;
  }
  int fd = bpf_map_create(type, nullptr, key_size, value_size, entries, nullptr);
  if (fd < 0) return -fd;
  ::close(fd);
  return 0;
}

std::unexpected<SysError> probe_failure(int err, const char* what, const char* since) {
  if (err == EPERM || err == EACCES) {
    return sys_fail_plain(err,
                          "no permission to load eBPF programs (needs root, or CAP_BPF and "
                          "CAP_NET_ADMIN)");
  }
  if (err == ENOSYS) return sys_fail_plain(err, "the kernel has no bpf() system call");
  if (err == EINVAL || err == EOPNOTSUPP || err == ENOTSUP || err == 524 /* ENOTSUPP */) {
    return sys_fail_plain(EOPNOTSUPP, "the kernel (" + kernel_release() + ") has no " + what +
                                          ": Linux " + since + " or later is needed");
  }
  return sys_fail(err, std::string("cannot create eBPF ") + what);
}

}  // namespace

std::string kernel_release() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return u.release;
}

SysResult<void> probe_bpf_support() {
  struct Program {
    bpf_prog_type type;
    bpf_attach_type expected;
    const char* what;
    const char* since;
  };
  static constexpr Program kPrograms[] = {
      {BPF_PROG_TYPE_XDP, BPF_XDP, "XDP programs", "5.9"},
      {BPF_PROG_TYPE_SCHED_CLS, static_cast<bpf_attach_type>(0), "TC classifier programs", "5.9"},
      {BPF_PROG_TYPE_SOCKET_FILTER, static_cast<bpf_attach_type>(0), "socket filter programs",
       "5.9"},
      {BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, "sk_lookup programs", "5.9"},
  };
  for (const Program& p : kPrograms) {
    if (int err = probe_program(p.type, p.expected); err != 0) {
      return probe_failure(err, p.what, p.since);
    }
  }
  struct Map {
    bpf_map_type type;
    const char* what;
    const char* since;
  };
  static constexpr Map kMaps[] = {
      {BPF_MAP_TYPE_PERCPU_ARRAY, "per-CPU array maps", "4.6"},
      {BPF_MAP_TYPE_LRU_HASH, "LRU hash maps", "4.10"},
      {BPF_MAP_TYPE_SOCKMAP, "socket maps", "4.14"},
      {BPF_MAP_TYPE_RINGBUF, "ring buffer maps", "5.8"},
  };
  for (const Map& m : kMaps) {
    if (int err = probe_map(m.type); err != 0) return probe_failure(err, m.what, m.since);
  }
  return {};
}

}  // namespace buckwild::daemon
