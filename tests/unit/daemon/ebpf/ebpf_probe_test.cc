// probe_bpf_support (src/daemon/bpf_probe.cc): the reason the eBPF receive
// path cannot be used, in words an operator can act on.
#include "daemon/ebpf/ebpf_probe.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "daemon/ebpf/ebpf_programs.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using testing::is_root;
using testing::run_isolated;

TEST(BpfProbeTest, RootOnThisKernelCanRunTheFilter) {
  if (!is_root()) GTEST_SKIP() << "needs root to load eBPF programs";
  auto r = probe_bpf_support();
  EXPECT_TRUE(r) << r.error().message;
  EXPECT_NE(kernel_release(), "unknown");
  EXPECT_FALSE(kernel_release().empty());
}

TEST(BpfProbeTest, WithoutPrivilegeTheProbeAndTheLoaderSayWhy) {
  if (!is_root()) GTEST_SKIP() << "needs root to drop capabilities in a child";
  run_isolated(CLONE_NEWNET, [] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    ASSERT_EQ(::syscall(SYS_capget, &header, data), 0);
    for (int cap : {CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_NET_ADMIN}) {
      data[cap / 32].effective &= ~(1u << (cap % 32));
    }
    ASSERT_EQ(::syscall(SYS_capset, &header, data), 0);
    const std::string expected =
        "no permission to load eBPF programs (needs root, or CAP_BPF and CAP_NET_ADMIN)";
    auto probed = probe_bpf_support();
    ASSERT_FALSE(probed);
    EXPECT_EQ(probed.error().sys_errno, EPERM);
    EXPECT_EQ(probed.error().message, expected);
    auto loaded = EbpfPrograms::load({});
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().sys_errno, EPERM);
    EXPECT_EQ(loaded.error().message, expected);
  });
}

}  // namespace
}  // namespace buckwild::daemon
