#include "daemon/ebpf/libbpf_log.h"

#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <vector>

namespace buckwild::daemon {
namespace {

thread_local std::string* g_libbpf_log = nullptr;

int capture_libbpf(libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || g_libbpf_log == nullptr) return 0;
  va_list measure;
  va_copy(measure, args);
  const int n = std::vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  if (n <= 0) return 0;
  std::string text(static_cast<std::size_t>(n) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), format, args);
  text.resize(static_cast<std::size_t>(n));
  *g_libbpf_log += text;
  constexpr std::size_t kKeep = 64 * 1024;  // the verifier's last words are at the end
  if (g_libbpf_log->size() > kKeep) g_libbpf_log->erase(0, g_libbpf_log->size() - kKeep);
  return 0;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

std::string libbpf_log_summary(const std::string& log) {
  const std::vector<std::string> lines = split_lines(log);
  std::string program;
  std::string verifier;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    // libbpf's first complaint names the map or program at fault
    // ("map 'valid_ports': failed to create: ...", "prog 'bw_xdp': BPF
    // program load failed: ..."); the later ones only repeat it.
    if (program.empty() && lines[i].find("failed") != std::string::npos) {
      program = lines[i].starts_with("libbpf: ") ? lines[i].substr(8) : lines[i];
    }
    if (lines[i].find("-- END PROG LOAD LOG --") == std::string::npos) continue;
    // The lines before the end marker: "<error>", then statistics.
    for (std::size_t j = i; j-- > 0;) {
      if (lines[j].starts_with("processed ") || lines[j].starts_with("verification time")) {
        continue;
      }
      verifier = lines[j];
      break;
    }
  }
  if (!program.empty() && !verifier.empty()) return program + ": " + verifier;
  if (!program.empty()) return program;
  return lines.empty() ? "libbpf said nothing" : lines.back();
}

LibbpfLogCapture::LibbpfLogCapture() : previous_(libbpf_set_print(capture_libbpf)) {
  g_libbpf_log = &log_;
}

LibbpfLogCapture::~LibbpfLogCapture() {
  g_libbpf_log = nullptr;
  libbpf_set_print(previous_);
}

}  // namespace buckwild::daemon
