// impair_sched: when a packet held by impair_delay may leave, or whether it is
// dropped. The decision logic of the delay daemon, without I/O or clock reads,
// so that tools/impair/impair_sched_test.c can check it.
//
// A packet arriving at `now` with `len` bytes goes through, in order:
//   1. the rate cap (rate_Bps > 0): a token bucket of burst_bytes that fills at
//      rate_Bps, in front of a FIFO queue of at most queue_bytes: a packet that
//      does not fit the queue is dropped (tail drop, counted in drops_queue);
//      otherwise it is sent (leaves the rate stage) once the bucket has its
//      bytes;
//   2. the delay: delay_ns, plus a jitter drawn per packet (uniform in
//      [-jitter_ns, +jitter_ns], or normal with sigma jitter_ns), clamped to
//      +-jitter_max_ns, and never below 0 in total. Jitter keeps the order of
//      the packets (a packet never leaves before the one that arrived before
//      it: a link's queue does not reorder), so it varies the delay without
//      reordering;
//   3. reordering: reorder_ppm of the packets (parts per million, at random)
//      get reorder_extra_ns more and do not hold back the ones after them,
//      which overtake them.
// Every quantity is bounded: the rate queue by queue_bytes, the held packets
// by the caller's capacity (impair_delay's MAXLEN).
#ifndef IMPAIR_SCHED_H
#define IMPAIR_SCHED_H

#include <math.h>
#include <stdint.h>

enum impair_jitter_dist { IMPAIR_UNIFORM = 0, IMPAIR_NORMAL = 1 };

struct impair_params {
  uint64_t delay_ns;
  uint64_t jitter_ns;      // 0: none
  int jitter_dist;         // enum impair_jitter_dist
  uint64_t jitter_max_ns;  // bound on |jitter|; 0: jitter_ns (uniform) or 3 * jitter_ns (normal)
  uint32_t reorder_ppm;    // 0..1000000
  uint64_t reorder_extra_ns;
  uint64_t rate_Bps;       // bytes per second; 0: no rate cap
  uint64_t burst_bytes;    // bucket size (at least one packet: 0 means 1514)
  uint64_t queue_bytes;    // the rate stage's queue (0 means 256 KiB)
  uint64_t seed;
};

struct impair_sched {
  struct impair_params p;
  uint64_t rng;
  // Rate stage: when the link is free again, and the bucket's bytes then.
  uint64_t link_free_ns;
  double tokens;
  // The due time of the last packet that keeps its place (not reordered).
  uint64_t last_due_ns;
  // Counters.
  uint64_t admitted, reordered, drops_queue, rate_delayed;
};

static inline uint64_t impair_rng_next(struct impair_sched *s) {
  // xorshift64*
  uint64_t x = s->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// Uniform in [0, 1).
static inline double impair_rng_unit(struct impair_sched *s) {
  return (double)(impair_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline void impair_sched_init(struct impair_sched *s, const struct impair_params *p) {
  s->p = *p;
  if (s->p.burst_bytes == 0) s->p.burst_bytes = 1514;
  if (s->p.queue_bytes == 0) s->p.queue_bytes = 256 * 1024;
  if (s->p.jitter_max_ns == 0) s->p.jitter_max_ns = s->p.jitter_dist == IMPAIR_NORMAL ? 3 * s->p.jitter_ns : s->p.jitter_ns;
  if (s->p.reorder_ppm > 1000000) s->p.reorder_ppm = 1000000;
  s->rng = p->seed ? p->seed : 0x9E3779B97F4A7C15ull;
  s->link_free_ns = 0;
  s->tokens = (double)s->p.burst_bytes;
  s->last_due_ns = 0;
  s->admitted = s->reordered = s->drops_queue = s->rate_delayed = 0;
}

// The jitter of one packet, in ns (signed), within +-jitter_max_ns.
static inline double impair_jitter(struct impair_sched *s) {
  if (s->p.jitter_ns == 0) return 0;
  double j;
  if (s->p.jitter_dist == IMPAIR_NORMAL) {
    // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
    const double u1 = 1.0 - impair_rng_unit(s), u2 = impair_rng_unit(s);
    j = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2) * (double)s->p.jitter_ns;
  } else {
    j = (impair_rng_unit(s) * 2.0 - 1.0) * (double)s->p.jitter_ns;
  }
  const double bound = (double)s->p.jitter_max_ns;
  return j > bound ? bound : (j < -bound ? -bound : j);
}

// Decides for a packet of `len` bytes arriving at `now_ns` (non-decreasing
// from call to call). Returns 0 and sets *due_ns (when it may leave) and
// *reordered, or -1: dropped, the rate queue is full.
static inline int impair_sched_admit(struct impair_sched *s, uint64_t now_ns, uint32_t len, uint64_t *due_ns,
                                     int *reordered) {
  uint64_t sent = now_ns;
  if (s->p.rate_Bps > 0) {
    const double rate = (double)s->p.rate_Bps;
    if (s->link_free_ns > now_ns) {
      // Bytes queued in front of this packet: what the link still has to send.
      const double backlog = (double)(s->link_free_ns - now_ns) * rate / 1e9;
      if (backlog + len > (double)s->p.queue_bytes) {
        s->drops_queue++;
        return -1;
      }
    }
    const uint64_t start = now_ns > s->link_free_ns ? now_ns : s->link_free_ns;
    double tokens = s->tokens + (double)(start - s->link_free_ns) * rate / 1e9;
    if (tokens > (double)s->p.burst_bytes) tokens = (double)s->p.burst_bytes;
    if (tokens >= len) {
      sent = start;
      s->tokens = tokens - len;
    } else {
      sent = start + (uint64_t)ceil(((double)len - tokens) * 1e9 / rate);
      s->tokens = 0;
    }
    if (sent > now_ns) s->rate_delayed++;
    s->link_free_ns = sent;
  }
  double due = (double)sent + (double)s->p.delay_ns + impair_jitter(s);
  if (due < (double)sent) due = (double)sent;
  uint64_t d = (uint64_t)due;
  if (d < s->last_due_ns) d = s->last_due_ns;  // jitter keeps the order
  *reordered = 0;
  if (s->p.reorder_ppm > 0 && impair_rng_next(s) % 1000000u < s->p.reorder_ppm) {
    *reordered = 1;
    s->reordered++;
    d += s->p.reorder_extra_ns;
  } else {
    s->last_due_ns = d;
  }
  s->admitted++;
  *due_ns = d;
  return 0;
}

#endif
