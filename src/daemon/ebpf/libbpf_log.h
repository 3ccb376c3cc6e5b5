// libbpf's messages, kept for error reports. libbpf prints through one
// process-wide function; while a LibbpfLogCapture lives, the warnings it
// prints on the capturing thread (not its debug output) are collected instead,
// and summary() turns them into the one line an error message can carry.
#pragma once

#include <bpf/libbpf.h>

#include <string>

namespace buckwild::daemon {

// What went wrong in libbpf's `log`, in one line: libbpf's first complaint
// (the first line with "failed"; it names the map or program at fault, without
// the "libbpf: " prefix) and, when a program's verifier log follows, the
// verifier's last message before its statistics: "COMPLAINT: VERIFIER". Else
// the complaint alone; else the log's last line; "libbpf said nothing" for a
// log without lines.
std::string libbpf_log_summary(const std::string& log);

// Routes libbpf's warnings into a string while it lives (the previous printer
// is restored). Keeps the last 64 KiB: the verifier's last words are at the
// end. One capture per thread at a time.
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  // libbpf_log_summary of what was captured so far.
  std::string summary() const { return libbpf_log_summary(log_); }

 private:
  std::string log_;
  libbpf_print_fn_t previous_;
};

}  // namespace buckwild::daemon
