// Checks impair_sched.h, the decisions of impair_delay: the delay, jitter
// (bounds, spread, order kept), reordering (rate, overtaking) and the rate cap
// (throughput, bounded queue, tail drops counted). Deterministic (fixed seeds).
// Run by CTest (tests/CMakeLists.txt) as impair_sched.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "impair_sched.h"

static int failures;

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                       \
      fputc('\n', stderr);                                \
      failures++;                                         \
    }                                                     \
  } while (0)

enum { N = 20000 };
static const uint64_t MS = 1000000;

static void delay_only(void) {
  struct impair_params p = {.delay_ns = 10 * MS, .seed = 1};
  struct impair_sched s;
  impair_sched_init(&s, &p);
  for (int i = 0; i < 1000; i++) {
    uint64_t due = 0;
    int r = 0;
    CHECK(impair_sched_admit(&s, (uint64_t)i * 1000, 1500, &due, &r) == 0, "packet %d dropped", i);
    CHECK(due == (uint64_t)i * 1000 + 10 * MS && !r, "packet %d due %llu", i, (unsigned long long)due);
  }
}

// Delays of N packets 1 ms apart; returns their mean and standard deviation.
static void jitter_stats(struct impair_sched *s, double *mean, double *sd, double *lo, double *hi, int *out_of_order) {
  double sum = 0, sum2 = 0;
  uint64_t prev = 0;
  *lo = 1e18, *hi = -1e18, *out_of_order = 0;
  for (int i = 0; i < N; i++) {
    const uint64_t now = (uint64_t)i * MS;
    uint64_t due = 0;
    int r = 0;
    if (impair_sched_admit(s, now, 1000, &due, &r) != 0) abort();
    const double d = (double)(due - now);
    sum += d, sum2 += d * d;
    if (d < *lo) *lo = d;
    if (d > *hi) *hi = d;
    if (due < prev) ++*out_of_order;
    prev = due;
  }
  *mean = sum / N;
  *sd = sqrt(sum2 / N - *mean * *mean);
}

static void uniform_jitter(void) {
  // 0.4 ms of jitter on packets 1 ms apart: the order floor never applies.
  struct impair_params p = {.delay_ns = 20 * MS, .jitter_ns = 400000, .seed = 2};
  struct impair_sched s;
  impair_sched_init(&s, &p);
  double mean, sd, lo, hi;
  int ooo;
  jitter_stats(&s, &mean, &sd, &lo, &hi, &ooo);
  CHECK(lo >= 20 * MS - 400000 && hi <= 20 * MS + 400000, "delays %.0f..%.0f ns outside 20 ms +- 0.4 ms", lo, hi);
  CHECK(lo < 20 * MS - 360000 && hi > 20 * MS + 360000, "delays %.0f..%.0f ns do not spread over the range", lo, hi);
  CHECK(fabs(mean - 20e6) < 10000, "mean delay %.0f ns", mean);
  // Uniform on [-J, J]: sd = J / sqrt(3).
  CHECK(fabs(sd - 400000 / sqrt(3)) < 0.05 * 400000 / sqrt(3), "sd %.0f ns", sd);
  CHECK(ooo == 0, "%d packets left before one that arrived earlier", ooo);
}

static void normal_jitter(void) {
  struct impair_params p = {.delay_ns = 20 * MS, .jitter_ns = 200000, .jitter_dist = IMPAIR_NORMAL, .seed = 3};
  struct impair_sched s;
  impair_sched_init(&s, &p);
  double mean, sd, lo, hi;
  int ooo;
  jitter_stats(&s, &mean, &sd, &lo, &hi, &ooo);
  CHECK(lo >= 20 * MS - 600000 && hi <= 20 * MS + 600000, "delays %.0f..%.0f ns beyond the 3-sigma bound", lo, hi);
  CHECK(fabs(mean - 20e6) < 10000, "mean delay %.0f ns", mean);
  CHECK(fabs(sd - 200000) < 0.05 * 200000, "sd %.0f ns, want 200000", sd);
  CHECK(ooo == 0, "%d out of order", ooo);

  // An explicit bound.
  p.jitter_max_ns = 100000;
  impair_sched_init(&s, &p);
  jitter_stats(&s, &mean, &sd, &lo, &hi, &ooo);
  CHECK(lo >= 20 * MS - 100000 && hi <= 20 * MS + 100000, "delays %.0f..%.0f ns beyond the 0.1 ms bound", lo, hi);
}

static void jitter_keeps_order(void) {
  // 5 ms of jitter on packets 1 ms apart: the delays vary, the order stays.
  struct impair_params p = {.delay_ns = 20 * MS, .jitter_ns = 5 * MS, .seed = 4};
  struct impair_sched s;
  impair_sched_init(&s, &p);
  double mean, sd, lo, hi;
  int ooo;
  jitter_stats(&s, &mean, &sd, &lo, &hi, &ooo);
  CHECK(ooo == 0, "%d out of order", ooo);
  CHECK(lo >= 15 * MS && hi <= 25 * MS + 1 && hi - lo > 8 * MS, "delays %.0f..%.0f ns", lo, hi);
}

static void reordering(void) {
  struct impair_params p = {.delay_ns = 10 * MS, .reorder_ppm = 100000, .reorder_extra_ns = 3 * MS, .seed = 5};
  struct impair_sched s;
  impair_sched_init(&s, &p);
  uint64_t due[N];
  int reordered[N], n_reordered = 0, overtaken = 0;
  for (int i = 0; i < N; i++) {
    if (impair_sched_admit(&s, (uint64_t)i * MS, 1000, &due[i], &reordered[i]) != 0) abort();
    n_reordered += reordered[i];
  }
  for (int i = 0; i + 1 < N; i++) {
    if (reordered[i] && !reordered[i + 1] && due[i + 1] < due[i]) overtaken++;
    if (!reordered[i]) CHECK(due[i] == (uint64_t)i * MS + 10 * MS, "packet %d delayed %llu", i, (unsigned long long)due[i]);
  }
  CHECK(fabs(n_reordered - 0.1 * N) < 0.01 * N, "%d of %d reordered, want 10 %%", n_reordered, N);
  CHECK(s.reordered == (uint64_t)n_reordered, "counter %llu", (unsigned long long)s.reordered);
  // 3 ms extra on packets 1 ms apart: the next packet (if it keeps its place) overtakes.
  int followed = 0;
  for (int i = 0; i + 1 < N; i++) followed += reordered[i] && !reordered[i + 1];
  CHECK(overtaken == followed && overtaken > 0, "%d of %d overtaken", overtaken, followed);
}

static void rate_cap(void) {
  // 1 MB/s, a 1500-byte bucket and a 30 000-byte queue; 1000-byte packets
  // offered at 2 MB/s for 2 s.
  struct impair_params p = {.rate_Bps = 1000000, .burst_bytes = 1500, .queue_bytes = 30000, .seed = 6};
  struct impair_sched s;
  impair_sched_init(&s, &p);
  uint64_t last_sent = 0, sent_bytes = 0;
  int dropped = 0, admitted = 0;
  for (int i = 0; i < 4000; i++) {
    const uint64_t now = (uint64_t)i * 500000;
    uint64_t due = 0;
    int r = 0;
    if (impair_sched_admit(&s, now, 1000, &due, &r) != 0) {
      dropped++;
      continue;
    }
    admitted++;
    sent_bytes += 1000;
    CHECK(due >= last_sent, "packet %d leaves before the one in front of it", i);
    // The queue in front of it never holds more than 30 000 bytes: it leaves
    // within 30 ms (+ its own 1 ms) of its arrival.
    CHECK(due - now <= 31 * MS, "packet %d waited %llu ns", i, (unsigned long long)(due - now));
    last_sent = due;
  }
  // Throughput: what was sent over the time it took is the rate.
  const double rate = (double)sent_bytes / ((double)last_sent / 1e9);
  CHECK(fabs(rate - 1e6) < 0.02 * 1e6, "rate %.0f B/s", rate);
  CHECK(dropped > 1900 && dropped < 2050, "%d of 4000 dropped (about half expected)", dropped);
  CHECK(s.drops_queue == (uint64_t)dropped && admitted + dropped == 4000, "counter %llu", (unsigned long long)s.drops_queue);

  // Below the rate nothing waits: 500 B/s offered every ms against 1 MB/s.
  impair_sched_init(&s, &p);
  int waited = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t due = 0;
    int r = 0;
    if (impair_sched_admit(&s, (uint64_t)i * MS, 500, &due, &r) != 0 || due != (uint64_t)i * MS) waited++;
  }
  CHECK(waited == 0 && s.rate_delayed == 0, "%d packets held below the rate", waited);

  // A burst fits the bucket: two 700-byte packets at once leave at once.
  impair_sched_init(&s, &p);
  uint64_t d1, d2;
  int r = 0;
  impair_sched_admit(&s, 5 * MS, 700, &d1, &r);
  impair_sched_admit(&s, 5 * MS, 700, &d2, &r);
  CHECK(d1 == 5 * MS && d2 == 5 * MS, "burst left at %llu, %llu", (unsigned long long)d1, (unsigned long long)d2);
}

static void rate_then_delay(void) {
  // The delay and jitter come after the rate stage.
  struct impair_params p = {.delay_ns = 10 * MS, .rate_Bps = 1000000, .burst_bytes = 1000, .seed = 7};
  struct impair_sched s;
  impair_sched_init(&s, &p);
  uint64_t d1, d2;
  int r = 0;
  impair_sched_admit(&s, 0, 1000, &d1, &r);
  impair_sched_admit(&s, 0, 1000, &d2, &r);
  CHECK(d1 == 10 * MS && d2 == 11 * MS, "due %llu, %llu", (unsigned long long)d1, (unsigned long long)d2);
}

int main(void) {
  delay_only();
  uniform_jitter();
  normal_jitter();
  jitter_keeps_order();
  reordering();
  rate_cap();
  rate_then_delay();
  if (failures) {
    fprintf(stderr, "impair_sched_test: %d failures\n", failures);
    return 1;
  }
  printf("impair_sched_test: all checks passed\n");
  return 0;
}
