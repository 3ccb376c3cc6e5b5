// SPDX-License-Identifier: GPL-2.0
// Random loss on one interface without netem: a tc (clsact egress) BPF
// program that drops a configured fraction of the packets leaving it
// (bpf_get_prandom_u32, parts per million), optionally UDP only. The delay
// half of tools/impair is impair_delay.c (NFQUEUE): this kernel has no fq
// qdisc, so an earliest departure time set here would not be honoured.
// tools/impair/impair.sh loads it and writes its configuration; see
// tools/impair/README.md.
//
// Build: clang -target bpf -O2 -g -c impair.bpf.c -o impair.bpf.o
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IMPAIR_UDP_ONLY 1u  // loss applies to UDP (IPv4/IPv6) only

// Written by impair.sh (bpftool map update); the layout is part of its interface.
struct impair_config {
  __u32 loss_ppm;   // drop probability in parts per million, 0..1000000
  __u32 flags;      // IMPAIR_*
};

// Counters, read by `impair.sh show`.
enum { STAT_SEEN, STAT_DROPPED, STAT_MAX };

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct impair_config);
} impair_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, STAT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} impair_stats SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64 *n = bpf_map_lookup_elem(&impair_stats, &which);
  if (n) *n += 1;
}

static __always_inline int is_udp(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  if (skb->protocol == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = data + sizeof(struct ethhdr);
    if ((void *)(ip + 1) > end) return 0;
    return ip->protocol == IPPROTO_UDP;
  }
  if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
    if ((void *)(ip6 + 1) > end) return 0;
    return ip6->nexthdr == IPPROTO_UDP;  // no extension-header walk: tunnels send none
  }
  return 0;
}

SEC("tc")
int impair(struct __sk_buff *skb) {
  __u32 zero = 0;
  struct impair_config *cfg = bpf_map_lookup_elem(&impair_config, &zero);
  if (!cfg || cfg->loss_ppm == 0) return TC_ACT_OK;
  if ((cfg->flags & IMPAIR_UDP_ONLY) && !is_udp(skb)) return TC_ACT_OK;
  count(STAT_SEEN);
  // A GSO packet is one packet here (dropped or kept whole): `impair.sh set
  // --no-gso` turns segmentation offloads off so that TCP sent from this
  // host is seen one segment at a time.
  if (bpf_get_prandom_u32() % 1000000u < cfg->loss_ppm) {
    count(STAT_DROPPED);
    return TC_ACT_SHOT;
  }
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
