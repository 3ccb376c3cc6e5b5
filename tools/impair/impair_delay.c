// impair_delay: holds the packets of one NFQUEUE queue, then lets them go:
// a delay with optional jitter, reordering and a rate cap (the decisions are
// impair_sched.h's). The delay half of tools/impair (the kernel here has
// neither netem nor fq, so a departure time set by BPF would not be
// honoured): an iptables rule sends an interface's packets to the queue, this
// program receives only their metadata (NFQNL_COPY_META: no payload is
// copied; the length comes in NFQA_CAP_LEN) and accepts each once it is due.
// While packets leave in arrival order (nothing reordered is held) many go
// with one batch verdict; otherwise each gets its own. Plain netlink, no
// library.
//
//   impair_delay QUEUE_NUM DELAY_NS [MAXLEN] [--jitter-ns N] [--jitter-max-ns N]
//                [--jitter-dist uniform|normal] [--reorder-ppm N]
//                [--reorder-extra-ns N] [--rate-Bps N] [--burst-bytes N]
//                [--queue-bytes N] [--seed N]
//
// MAXLEN (default 100000) bounds the packets held; beyond it, and beyond the
// rate cap's queue, packets are dropped and counted. SIGUSR1 prints the
// counters on stderr. Runs until SIGTERM or SIGINT, then accepts whatever it
// still holds and prints its counters on stderr. tools/impair/impair.sh starts and stops it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "impair_sched.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static volatile sig_atomic_t stop, report;
static void on_signal(int sig) { (void)sig; stop = 1; }
static void on_report(int sig) { (void)sig; report = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fd = -1;
static uint16_t queue_num;

// --- building and sending nfnetlink messages ---------------------------------
struct msg {
  char buf[256];
  size_t len;
};

static struct nlmsghdr *msg_start(struct msg *m, uint8_t type, uint16_t flags) {
  memset(m, 0, sizeof *m);
  struct nlmsghdr *nlh = (struct nlmsghdr *)m->buf;
  nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(nlh);
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = htons(queue_num);
  m->len = NLMSG_LENGTH(sizeof *g);
  nlh->nlmsg_len = (uint32_t)m->len;
  return nlh;
}

static void msg_attr(struct msg *m, uint16_t type, const void *data, size_t len) {
  struct nlattr *a = (struct nlattr *)(m->buf + NLMSG_ALIGN(m->len));
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  memcpy((char *)a + NLA_HDRLEN, data, len);
  m->len = NLMSG_ALIGN(m->len) + NLA_ALIGN(a->nla_len);
  ((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
}

static int msg_send(struct msg *m) {
  struct sockaddr_nl to = {.nl_family = AF_NETLINK};
  return sendto(fd, m->buf, m->len, 0, (struct sockaddr *)&to, sizeof to) < 0 ? -1 : 0;
}

// Sends a configuration message and waits for its acknowledgement.
static int config(const char *what, struct msg *m) {
  static uint32_t seq = 1;
  ((struct nlmsghdr *)m->buf)->nlmsg_seq = ++seq;
  if (msg_send(m) < 0) {
    fprintf(stderr, "impair_delay: sending %s: %s\n", what, strerror(errno));
    return -1;
  }
  char buf[8192];
  for (int tries = 0; tries < 64; tries++) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "impair_delay: waiting for the answer to %s: %s\n", what, strerror(errno));
      return -1;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) {
        int err = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        if (err) {
          fprintf(stderr, "impair_delay: %s refused by the kernel: %s%s\n", what, strerror(err),
                  err == EBUSY ? " (another program holds this queue)" : "");
          return -1;
        }
        return 0;
      }
    }
  }
  fprintf(stderr, "impair_delay: no answer to %s\n", what);
  return -1;
}

static void verdict_batch(uint32_t last_id) {
  struct msg m;
  msg_start(&m, NFQNL_MSG_VERDICT_BATCH, 0);
  struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(NF_ACCEPT), .id = htonl(last_id)};
  msg_attr(&m, NFQA_VERDICT_HDR, &v, sizeof v);
  while (msg_send(&m) < 0 && errno == EINTR) {
  }
}

static void verdict_one(uint32_t id, uint32_t verdict) {
  struct msg m;
  msg_start(&m, NFQNL_MSG_VERDICT, 0);
  struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(verdict), .id = htonl(id)};
  msg_attr(&m, NFQA_VERDICT_HDR, &v, sizeof v);
  while (msg_send(&m) < 0 && errno == EINTR) {
  }
}

// --- the packets being held: a min-heap on (due, id) --------------------------
struct held {
  uint64_t due;
  uint32_t id;
  uint8_t reordered;
};
static struct held *heap;
static uint32_t cap, count, reordered_held;

static int before(const struct held *a, const struct held *b) {
  return a->due < b->due || (a->due == b->due && (int32_t)(a->id - b->id) < 0);
}

static void heap_push(struct held h) {
  uint32_t i = count++;
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!before(&h, &heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = h;
}

static struct held heap_pop(void) {
  struct held top = heap[0], last = heap[--count];
  uint32_t i = 0;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= count) break;
    if (c + 1 < count && before(&heap[c + 1], &heap[c])) c++;
    if (!before(&heap[c], &last)) break;
    heap[i] = heap[c];
    i = c;
  }
  if (count > 0) heap[i] = last;
  return top;
}

static int parse_u64(const char *text, unsigned long long max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || *end || end == text || v > max || text[0] == '-') return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  static const char usage[] =
      "usage: impair_delay QUEUE_NUM DELAY_NS [MAXLEN] [--jitter-ns N] [--jitter-max-ns N]\n"
      "       [--jitter-dist uniform|normal] [--reorder-ppm N] [--reorder-extra-ns N]\n"
      "       [--rate-Bps N] [--burst-bytes N] [--queue-bytes N] [--seed N]\n";
  if (argc < 3) {
    fputs(usage, stderr);
    return 2;
  }
  uint64_t v;
  if (parse_u64(argv[1], 65535, &v) < 0) {
    fprintf(stderr, "impair_delay: QUEUE_NUM must be 0..65535\n");
    return 2;
  }
  queue_num = (uint16_t)v;
  struct impair_params params = {0};
  if (parse_u64(argv[2], 10000000000ull, &params.delay_ns) < 0) {
    fprintf(stderr, "impair_delay: DELAY_NS must be 0..10000000000\n");
    return 2;
  }
  int ai = 3;
  uint64_t maxlen = 100000;
  if (ai < argc && argv[ai][0] != '-') {
    if (parse_u64(argv[ai], 10000000, &maxlen) < 0 || maxlen < 16) {
      fprintf(stderr, "impair_delay: MAXLEN must be 16..10000000\n");
      return 2;
    }
    ai++;
  }
  for (; ai < argc; ai += 2) {
    const char *opt = argv[ai], *val = ai + 1 < argc ? argv[ai + 1] : NULL;
    int bad = val == NULL;
    uint64_t n = 0;
    if (!bad && strcmp(opt, "--jitter-dist") == 0) {
      if (strcmp(val, "uniform") == 0) params.jitter_dist = IMPAIR_UNIFORM;
      else if (strcmp(val, "normal") == 0) params.jitter_dist = IMPAIR_NORMAL;
      else bad = 1;
    } else if (!bad && strcmp(opt, "--jitter-ns") == 0) {
      bad = parse_u64(val, 10000000000ull, &params.jitter_ns);
    } else if (!bad && strcmp(opt, "--jitter-max-ns") == 0) {
      bad = parse_u64(val, 10000000000ull, &params.jitter_max_ns);
    } else if (!bad && strcmp(opt, "--reorder-ppm") == 0) {
      bad = parse_u64(val, 1000000, &n);
      params.reorder_ppm = (uint32_t)n;
    } else if (!bad && strcmp(opt, "--reorder-extra-ns") == 0) {
      bad = parse_u64(val, 10000000000ull, &params.reorder_extra_ns);
    } else if (!bad && strcmp(opt, "--rate-Bps") == 0) {
      bad = parse_u64(val, 100000000000ull, &params.rate_Bps);
    } else if (!bad && strcmp(opt, "--burst-bytes") == 0) {
      bad = parse_u64(val, 1ull << 30, &params.burst_bytes);
    } else if (!bad && strcmp(opt, "--queue-bytes") == 0) {
      bad = parse_u64(val, 1ull << 30, &params.queue_bytes);
    } else if (!bad && strcmp(opt, "--seed") == 0) {
      bad = parse_u64(val, ~0ull, &params.seed);
    } else {
      bad = 1;
    }
    if (bad) {
      fprintf(stderr, "impair_delay: bad option or value: %s %s\n%s", opt, val ? val : "", usage);
      return 2;
    }
  }
  if (params.seed == 0) params.seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
  struct impair_sched sched;
  impair_sched_init(&sched, &params);
  cap = (uint32_t)maxlen;
  heap = calloc(cap, sizeof *heap);
  if (!heap) {
    perror("impair_delay: calloc");
    return 1;
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct sigaction sr = {.sa_handler = on_report};  // SIGUSR1: print the counters (impair.sh show)
  sigaction(SIGUSR1, &sr, NULL);
  prctl(PR_SET_TIMERSLACK, 1000UL);  // wake within ~1 us of a packet's due time

  fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    perror("impair_delay: netlink socket");
    return 1;
  }
  struct sockaddr_nl self = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&self, sizeof self) < 0) {
    perror("impair_delay: bind");
    return 1;
  }
  int rcvbuf = 64 << 20, one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  // A full socket buffer drops the packet (counted below) instead of an error.
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

  struct msg m;
  msg_start(&m, NFQNL_MSG_CONFIG, NLM_F_ACK);
  struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET)};
  msg_attr(&m, NFQA_CFG_CMD, &cmd, sizeof cmd);
  if (config("binding the queue", &m) < 0) return 1;

  msg_start(&m, NFQNL_MSG_CONFIG, NLM_F_ACK);
  struct nfqnl_msg_config_params qparams = {.copy_range = htonl(0), .copy_mode = NFQNL_COPY_META};
  msg_attr(&m, NFQA_CFG_PARAMS, &qparams, sizeof qparams);
  uint32_t qlen = htonl(cap);
  msg_attr(&m, NFQA_CFG_QUEUE_MAXLEN, &qlen, sizeof qlen);
  // GSO packets are queued whole instead of being segmented first.
  uint32_t flags = htonl(NFQA_CFG_F_GSO), mask = htonl(NFQA_CFG_F_GSO);
  msg_attr(&m, NFQA_CFG_FLAGS, &flags, sizeof flags);
  msg_attr(&m, NFQA_CFG_MASK, &mask, sizeof mask);
  if (config("configuring the queue", &m) < 0) return 1;

  fprintf(stderr,
          "impair_delay: queue %u, delay %llu ns, jitter %llu ns (%s, bound %llu ns), reorder %u ppm (+%llu ns), "
          "rate %llu B/s (burst %llu B, queue %llu B), up to %u packets held\n",
          queue_num, (unsigned long long)sched.p.delay_ns, (unsigned long long)sched.p.jitter_ns,
          sched.p.jitter_dist == IMPAIR_NORMAL ? "normal" : "uniform", (unsigned long long)sched.p.jitter_max_ns,
          sched.p.reorder_ppm, (unsigned long long)sched.p.reorder_extra_ns, (unsigned long long)sched.p.rate_Bps,
          (unsigned long long)sched.p.burst_bytes, (unsigned long long)sched.p.queue_bytes, cap);

  uint64_t passed = 0, overflow = 0, batches = 0;
  enum { BATCH = 64, BUFSZ = 1024 };
  static char bufs[BATCH][BUFSZ];
  struct iovec iov[BATCH];
  struct mmsghdr mm[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i] = (struct iovec){bufs[i], BUFSZ};
    mm[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
  }

  while (!stop) {
    if (report) {
      report = 0;
      fprintf(stderr,
              "impair_delay: counters: %llu passed, %u held, %llu dropped (queue full), %llu dropped (rate queue "
              "full), %llu held back by the rate cap, %llu reordered\n",
              (unsigned long long)passed, count, (unsigned long long)overflow,
              (unsigned long long)sched.drops_queue, (unsigned long long)sched.rate_delayed,
              (unsigned long long)sched.reordered);
    }
    // Let go of every packet that is due. In arrival order (nothing reordered
    // is held: every packet still held arrived after these) one verdict for
    // all ids up to the last does; otherwise each gets its own.
    uint64_t now = now_ns();
    if (count && heap[0].due <= now) {
      const int in_order = reordered_held == 0;
      uint32_t last_id = 0, n_due = 0;
      while (count && heap[0].due <= now) {
        struct held h = heap_pop();
        if (h.reordered) reordered_held--;
        if (in_order) last_id = h.id;
        else verdict_one(h.id, NF_ACCEPT);
        n_due++;
      }
      if (in_order) verdict_batch(last_id);
      passed += n_due;
      batches++;
    }

    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct timespec ts, *tsp = NULL;
    if (count) {
      uint64_t due = heap[0].due, t = now_ns();
      uint64_t wait = due > t ? due - t : 0;
      ts.tv_sec = (time_t)(wait / 1000000000ull);
      ts.tv_nsec = (long)(wait % 1000000000ull);
      tsp = &ts;
    }
    int r = ppoll(&p, 1, tsp, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      perror("impair_delay: ppoll");
      break;
    }
    if (r == 0) continue;

    // Take in everything waiting, without blocking.
    for (int rounds = 0; rounds < 16; rounds++) {
      int got = recvmmsg(fd, mm, BATCH, MSG_DONTWAIT, NULL);
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          overflow++;
          continue;
        }
        if (errno != EAGAIN) perror("impair_delay: recvmmsg");
        break;
      }
      uint64_t t = now_ns();
      for (int i = 0; i < got; i++) {
        ssize_t len = (ssize_t)mm[i].msg_len;
        for (struct nlmsghdr *h = (struct nlmsghdr *)bufs[i]; NLMSG_OK(h, (unsigned)len); h = NLMSG_NEXT(h, len)) {
          if ((h->nlmsg_type & 0xff) != NFQNL_MSG_PACKET || (h->nlmsg_type >> 8) != NFNL_SUBSYS_QUEUE) continue;
          char *a = (char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
          char *a_end = (char *)h + h->nlmsg_len;
          uint32_t id = 0, plen = 0;
          int have_id = 0;
          while (a + NLA_HDRLEN <= a_end) {
            struct nlattr *na = (struct nlattr *)a;
            if (na->nla_len < NLA_HDRLEN || a + na->nla_len > a_end) break;
            if ((na->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR && na->nla_len >= NLA_HDRLEN + sizeof(struct nfqnl_msg_packet_hdr)) {
              struct nfqnl_msg_packet_hdr ph;
              memcpy(&ph, a + NLA_HDRLEN, sizeof ph);
              id = ntohl(ph.packet_id);
              have_id = 1;
            } else if ((na->nla_type & NLA_TYPE_MASK) == NFQA_CAP_LEN && na->nla_len >= NLA_HDRLEN + 4) {
              uint32_t l;
              memcpy(&l, a + NLA_HDRLEN, 4);
              plen = ntohl(l);
            }
            a += NLA_ALIGN(na->nla_len);
          }
          if (!have_id) continue;
          uint64_t due;
          int reordered;
          if (count == cap) {
            verdict_one(id, NF_DROP);
            overflow++;
          } else if (impair_sched_admit(&sched, t, plen, &due, &reordered) < 0) {
            verdict_one(id, NF_DROP);  // the rate cap's queue is full (counted by sched)
          } else {
            heap_push((struct held){due, id, (uint8_t)reordered});
            reordered_held += (uint32_t)reordered;
          }
        }
      }
      if (got < BATCH) break;
    }
  }

  while (count) verdict_one(heap_pop().id, NF_ACCEPT);
  fprintf(stderr,
          "impair_delay: queue %u stopping: %llu packets delayed in %llu batches, %llu dropped (queue full), "
          "%llu dropped (rate queue full), %llu held back by the rate cap, %llu reordered\n",
          queue_num, (unsigned long long)passed, (unsigned long long)batches, (unsigned long long)overflow,
          (unsigned long long)sched.drops_queue, (unsigned long long)sched.rate_delayed,
          (unsigned long long)sched.reordered);
  return 0;
}
