// impair_delay: holds every packet of one NFQUEUE queue for a fixed time,
// then lets it go. The delay half of tools/impair (the kernel here has neither
// netem nor fq, so a departure time set by BPF would not be honoured): an
// iptables rule sends an interface's egress packets to the queue, this program
// receives only their metadata (NFQNL_COPY_META: no payload is copied) and
// accepts them in arrival order once `delay` has passed, many at a time with
// one batch verdict. Plain netlink, no library.
//
//   impair_delay QUEUE_NUM DELAY_NS [MAXLEN]
//
// Runs until SIGTERM or SIGINT, then accepts whatever it still holds and
// prints its counters on stderr. tools/impair/impair.sh starts and stops it.
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

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

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

// --- the packets being held: a ring in arrival (= id) order -------------------
struct held {
  uint32_t id;
  uint64_t due;
};
static struct held *ring;
static uint32_t cap, head, count;

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: impair_delay QUEUE_NUM DELAY_NS [MAXLEN]\n");
    return 2;
  }
  char *end;
  unsigned long q = strtoul(argv[1], &end, 10);
  if (*end || q > 65535) {
    fprintf(stderr, "impair_delay: QUEUE_NUM must be 0..65535\n");
    return 2;
  }
  queue_num = (uint16_t)q;
  unsigned long long delay = strtoull(argv[2], &end, 10);
  if (*end || delay > 10000000000ull) {
    fprintf(stderr, "impair_delay: DELAY_NS must be 0..10000000000\n");
    return 2;
  }
  unsigned long maxlen = argc > 3 ? strtoul(argv[3], &end, 10) : 100000;
  if ((argc > 3 && *end) || maxlen < 16 || maxlen > 10000000) {
    fprintf(stderr, "impair_delay: MAXLEN must be 16..10000000\n");
    return 2;
  }
  cap = (uint32_t)maxlen;
  ring = calloc(cap, sizeof *ring);
  if (!ring) {
    perror("impair_delay: calloc");
    return 1;
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
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
  struct nfqnl_msg_config_params params = {.copy_range = htonl(0), .copy_mode = NFQNL_COPY_META};
  msg_attr(&m, NFQA_CFG_PARAMS, &params, sizeof params);
  uint32_t qlen = htonl(cap);
  msg_attr(&m, NFQA_CFG_QUEUE_MAXLEN, &qlen, sizeof qlen);
  // GSO packets are queued whole instead of being segmented first.
  uint32_t flags = htonl(NFQA_CFG_F_GSO), mask = htonl(NFQA_CFG_F_GSO);
  msg_attr(&m, NFQA_CFG_FLAGS, &flags, sizeof flags);
  msg_attr(&m, NFQA_CFG_MASK, &mask, sizeof mask);
  if (config("configuring the queue", &m) < 0) return 1;

  fprintf(stderr, "impair_delay: queue %u, delay %llu ns, up to %u packets held\n", queue_num, delay, cap);

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
    // Let go of every packet that is due: one verdict for all ids up to the last.
    uint64_t now = now_ns();
    uint32_t n_due = 0;
    while (n_due < count && ring[(head + n_due) % cap].due <= now) n_due++;
    if (n_due) {
      verdict_batch(ring[(head + n_due - 1) % cap].id);
      head = (head + n_due) % cap;
      count -= n_due;
      passed += n_due;
      batches++;
    }

    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct timespec ts, *tsp = NULL;
    if (count) {
      uint64_t due = ring[head].due, t = now_ns();
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
          while (a + NLA_HDRLEN <= a_end) {
            struct nlattr *na = (struct nlattr *)a;
            if (na->nla_len < NLA_HDRLEN || a + na->nla_len > a_end) break;
            if ((na->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
              struct nfqnl_msg_packet_hdr ph;
              memcpy(&ph, a + NLA_HDRLEN, sizeof ph);
              uint32_t id = ntohl(ph.packet_id);
              if (count == cap) {
                verdict_one(id, NF_DROP);
                overflow++;
              } else {
                ring[(head + count) % cap] = (struct held){id, t + delay};
                count++;
              }
              break;
            }
            a += NLA_ALIGN(na->nla_len);
          }
        }
      }
      if (got < BATCH) break;
    }
  }

  if (count) verdict_batch(ring[(head + count - 1) % cap].id);
  fprintf(stderr, "impair_delay: queue %u stopping: %llu packets delayed in %llu batches, %llu dropped (queue full), %u let go at exit\n",
          queue_num, (unsigned long long)passed, (unsigned long long)batches, (unsigned long long)overflow, count);
  return 0;
}
