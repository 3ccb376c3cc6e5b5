// What the e2e flood senders (flood.cc, discovery_flood.cc) print when they
// stop: "sent=N seconds=S rate=R cpu=C", without the newline, where C is the
// CPU time (user + system) the sender itself used, the kernel's work in its
// system calls included.
#pragma once

#include <sys/resource.h>

#include <cstdio>

namespace buckwild::e2e {

inline void print_flood_report(unsigned long long sent, double seconds) {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf("sent=%llu seconds=%.3f rate=%.0f cpu=%.3f", sent, seconds,
              seconds > 0 ? static_cast<double>(sent) / seconds : 0.0, cpu);
}

}  // namespace buckwild::e2e
