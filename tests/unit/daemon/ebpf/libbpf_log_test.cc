// libbpf_log (src/daemon/ebpf/libbpf_log.cc): the one line an error report
// takes from libbpf's messages, and that a capture collects libbpf's warnings
// and then gives the printer back. Needs no privilege.
#include "daemon/ebpf/libbpf_log.h"

#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdarg>
#include <string>

namespace buckwild::daemon {
namespace {

TEST(LibbpfLogSummaryTest, AnEmptyLogSaysSo) {
  EXPECT_EQ(libbpf_log_summary(""), "libbpf said nothing");
  EXPECT_EQ(libbpf_log_summary("\n\n"), "libbpf said nothing");
}

TEST(LibbpfLogSummaryTest, WithoutAFailureTheLastLineIsKeptWhole) {
  EXPECT_EQ(libbpf_log_summary("libbpf: first\nlibbpf: last\n"), "libbpf: last");
}

TEST(LibbpfLogSummaryTest, TheFirstComplaintNamesTheMapAtFault) {
  const std::string log =
      "libbpf: map 'valid_ports': failed to create: Operation not permitted(-1)\n"
      "libbpf: failed to load object 'filter_bpf'\n"
      "libbpf: failed to load BPF skeleton 'buckwild_filter': -1\n";
  EXPECT_EQ(libbpf_log_summary(log),
            "map 'valid_ports': failed to create: Operation not permitted(-1)");
}

TEST(LibbpfLogSummaryTest, AVerifierRejectionAddsTheVerifiersLastWords) {
  const std::string log =
      "libbpf: prog 'bw_xdp': BPF program load failed: Permission denied\n"
      "libbpf: prog 'bw_xdp': -- BEGIN PROG LOAD LOG --\n"
      "0: R1=ctx(off=0,imm=0) R10=fp0\n"
      "; void *data = (void *)(long)ctx->data;\n"
      "0: (61) r2 = *(u32 *)(r1 +0)\n"
      "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)\n"
      "processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1\n"
      "verification time 31 usec\n"
      "-- END PROG LOAD LOG --\n"
      "libbpf: prog 'bw_xdp': failed to load: -13\n"
      "libbpf: failed to load object 'filter_bpf'\n";
  EXPECT_EQ(libbpf_log_summary(log),
            "prog 'bw_xdp': BPF program load failed: Permission denied: "
            "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)");
}

TEST(LibbpfLogSummaryTest, ALastLineWithoutANewlineCounts) {
  EXPECT_EQ(libbpf_log_summary("libbpf: one\nlibbpf: two"), "libbpf: two");
}

int g_outer_calls = 0;

int outer_printer(libbpf_print_level /*level*/, const char* /*format*/, va_list /*args*/) {
  ++g_outer_calls;
  return 0;
}

TEST(LibbpfLogCaptureTest, CollectsLibbpfsWarningsAndRestoresThePrinter) {
  libbpf_print_fn_t original = libbpf_set_print(outer_printer);
  g_outer_calls = 0;
  {
    LibbpfLogCapture capture;
    // libbpf warns that it cannot open the file; no privilege needed.
    bpf_object* obj = bpf_object__open_file("/nonexistent/buckwild-test.bpf.o", nullptr);
    EXPECT_EQ(libbpf_get_error(obj), -ENOENT);
    EXPECT_NE(capture.summary().find("/nonexistent/buckwild-test.bpf.o"), std::string::npos)
        << capture.summary();
    EXPECT_EQ(g_outer_calls, 0) << "the capture, not the previous printer, got the warning";
  }
  // The previous printer is back.
  bpf_object* obj = bpf_object__open_file("/nonexistent/buckwild-test.bpf.o", nullptr);
  EXPECT_EQ(libbpf_get_error(obj), -ENOENT);
  EXPECT_GT(g_outer_calls, 0);
  EXPECT_EQ(libbpf_set_print(original), &outer_printer);
}

}  // namespace
}  // namespace buckwild::daemon
