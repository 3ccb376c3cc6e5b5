/* The checks every Buckwild filter program shares: frame parsing, the header
 * rules of docs/protocol.md §4.3, the valid-port test, token buckets, counters
 * and rate-limited security events. Everything is __always_inline so that the
 * verifier sees each program's packet pointers in one function. */
#ifndef BUCKWILD_BPF_FILTER_LOGIC_BPF_H
#define BUCKWILD_BPF_FILTER_LOGIC_BPF_H

/* Kernel types before the libbpf headers that use them. */
/* clang-format off */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
/* clang-format on */

#include "filter_abi.h"
#include "filter_maps.bpf.h"

#define BW_INLINE static __always_inline

/* 802.1Q and 802.1ad tags we look through (hardware usually strips them). */
#define BW_VLAN_MAX 2
#define BW_ETH_P_8021Q 0x8100
#define BW_ETH_P_8021AD 0x88A8
/* IPv6 extension headers we follow before giving up. */
#define BW_IPV6_EXT_MAX 4
/* The UDP header must start within this many bytes of the frame; a longer
 * header chain is left to the stack (counted BW_CTR_PASS_UNPARSED; only IPv6
 * can get there, with extension headers). It also
 * bounds what TC has to pull into the linear area: BW_MAX_L4_OFFSET + 8 + 44. */
#define BW_MAX_L4_OFFSET 400
#define BW_PULL_BYTES (BW_MAX_L4_OFFSET + 8 + BW_HEADER_SIZE)
#define BW_IP_FRAGMENT_MASK 0x3FFF /* MF flag and fragment offset */
#define BW_IP_OFFSET_MASK 0x1FFF   /* fragment offset (8-byte units) */
#define BW_IPV6_OFFSET_MASK 0xFFF8 /* fragment header: offset, above res and M */
#define BW_IPV6_MORE_FRAGMENTS 0x0001
#define BW_AF_INET 2
#define BW_AF_INET6 10

/* What parsing found about one UDP datagram. */
struct bw_datagram {
  struct bw_addr source;
  struct bw_addr dest; /* as source */
  __u16 source_port;   /* host byte order */
  __u16 dest_port;     /* host byte order */
  __u32 v6;            /* 1 when the datagram came over IPv6 */
  __u32 l4_off;      /* UDP header offset from the start of the frame */
  __u32 udp_len;     /* the UDP length field: header + payload */
  __u32 connection_id; /* the Buckwild header's, once the header checks passed */
  __u32 fragment_id;   /* IP identification, for an IP fragment */
  __u32 ports_known;   /* 1 once the UDP header was read */
};

enum bw_parse_result {
  BW_PARSE_OURS = 0, /* UDP to the hopping range or the discovery port */
  BW_PARSE_NOT_OURS, /* anything else: pass untouched */
  BW_PARSE_UNPARSED, /* header chain too long: pass to the stack */
  BW_PARSE_FIRST_FRAGMENT, /* the first IP fragment of a UDP datagram to our ports, or one
                            * too short to show the ports (ports_known 0) */
  BW_PARSE_LATER_FRAGMENT, /* a later IP fragment of a UDP datagram: no UDP header */
};

BW_INLINE __u32 bw_be16(const __u8* p) {
  return ((__u32)p[0] << 8) | (__u32)p[1];
}

BW_INLINE __u32 bw_be32(const __u8* p) {
  return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | (__u32)p[3];
}

BW_INLINE int bw_is_drop(__u32 verdict) {
  return verdict >= BW_CTR_DROP_BAD_PORT && verdict <= BW_CTR_DROP_FRAGMENT_TAIL;
}

BW_INLINE __u64 bw_be64(const __u8* p) {
  return ((__u64)bw_be32(p) << 32) | (__u64)bw_be32(p + 4);
}

BW_INLINE void bw_count(__u32 hook, __u32 counter) {
  __u32 key = BW_COUNTER_INDEX(hook, counter);
  __u64* value = bpf_map_lookup_elem(&counters, &key);
  if (value) *value += 1; /* per-CPU slot: no atomics needed */
}

/* bw_count for the `n` datagrams of one GSO/GRO packet at once. */
BW_INLINE void bw_count_n(__u32 hook, __u32 counter, __u32 n) {
  __u32 key = BW_COUNTER_INDEX(hook, counter);
  __u64* value = bpf_map_lookup_elem(&counters, &key);
  if (value) *value += n;
}

/* The first datagram's size of a UDP payload of `size` bytes: a GSO or GRO
 * packet (`segment_size` its skb's gso_size, else 0) carries one flow's
 * datagrams, each segment_size bytes but the last. */
BW_INLINE __u32 bw_first_datagram(__u32 size, __u32 segment_size) {
  return segment_size != 0 && size > segment_size ? segment_size : size;
}

/* The configuration, or NULL while user space has not enabled filtering. */
BW_INLINE const struct bw_config* bw_config(void) {
  __u32 zero = 0;
  const struct bw_config* cfg = bpf_map_lookup_elem(&config_map, &zero);
  if (!cfg || !(cfg->flags & BW_CONFIG_ENABLED)) return NULL;
  return cfg;
}

BW_INLINE struct bw_global* bw_global_state(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&global_state, &zero);
}

BW_INLINE int bw_port_is_ours(const struct bw_config* cfg, __u32 port) {
  return port == cfg->discovery_port || (port >= cfg->port_low && port <= cfg->port_high);
}

BW_INLINE void bw_map_v4(struct bw_addr* a, const void* v4) {
  __builtin_memset(a, 0, sizeof(*a));
  a->bytes[10] = 0xff;
  a->bytes[11] = 0xff;
  __builtin_memcpy(&a->bytes[12], v4, 4);
}

/* Walks Ethernet (with up to two VLAN tags) or a bare IP header, IPv4 (any
 * IHL) or IPv6 (with up to BW_IPV6_EXT_MAX extension headers, a fragment
 * header among them), to a UDP header, and fills `d` when the destination port
 * is ours. An IP fragment of a UDP datagram is reported as such: the first
 * one only when its ports are ours (or cannot be read), a later one (which
 * has no UDP header) always. Every read is bounds-checked against data_end. */
BW_INLINE int bw_parse(void* data, void* data_end, int has_l2, const struct bw_config* cfg,
                       struct bw_datagram* d) {
  __u32 off = 0;
  __u16 proto = 0; /* network byte order */
  int first_fragment = 0;

  if (has_l2) {
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > data_end) return BW_PARSE_NOT_OURS;
    proto = eth->h_proto;
    off = sizeof(*eth);
#pragma unroll
    for (int i = 0; i < BW_VLAN_MAX; i++) {
      if (proto != bpf_htons(BW_ETH_P_8021Q) && proto != bpf_htons(BW_ETH_P_8021AD)) break;
      __u8* tag = (__u8*)data + off;
      if ((void*)(tag + 4) > data_end) return BW_PARSE_NOT_OURS;
      proto = *(__u16*)(tag + 2);
      off += 4;
    }
  } else {
    __u8* first = data;
    if ((void*)(first + 1) > data_end) return BW_PARSE_NOT_OURS;
    if ((first[0] >> 4) == 4)
      proto = bpf_htons(ETH_P_IP);
    else if ((first[0] >> 4) == 6)
      proto = bpf_htons(ETH_P_IPV6);
    else
      return BW_PARSE_NOT_OURS;
  }

  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = (void*)((__u8*)data + off);
    if ((void*)(ip + 1) > data_end) return BW_PARSE_NOT_OURS;
    if (ip->version != 4 || ip->ihl < 5) return BW_PARSE_NOT_OURS; /* the stack drops it */
    if (ip->protocol != IPPROTO_UDP) return BW_PARSE_NOT_OURS;
    bw_map_v4(&d->source, &ip->saddr);
    bw_map_v4(&d->dest, &ip->daddr);
    if (ip->frag_off & bpf_htons(BW_IP_FRAGMENT_MASK)) {
      d->fragment_id = bpf_ntohs(ip->id);
      if (ip->frag_off & bpf_htons(BW_IP_OFFSET_MASK)) return BW_PARSE_LATER_FRAGMENT;
      first_fragment = 1;
    }
    off += (__u32)ip->ihl * 4;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = (void*)((__u8*)data + off);
    if ((void*)(ip6 + 1) > data_end) return BW_PARSE_NOT_OURS;
    if (ip6->version != 6) return BW_PARSE_NOT_OURS;
    __u8 next = ip6->nexthdr;
    __builtin_memcpy(&d->source, &ip6->saddr, sizeof(d->source));
    __builtin_memcpy(&d->dest, &ip6->daddr, sizeof(d->dest));
    d->v6 = 1;
    off += sizeof(*ip6);
#pragma unroll
    for (int i = 0; i < BW_IPV6_EXT_MAX; i++) {
      if (next == IPPROTO_UDP) break;
      if (next == IPPROTO_FRAGMENT) {
        /* next header, reserved, offset << 3 | M, identification (RFC 8200 §4.5) */
        if (off > BW_MAX_L4_OFFSET) return BW_PARSE_UNPARSED;
        __u8* frag = (__u8*)data + off;
        if ((void*)(frag + 8) > data_end) return BW_PARSE_NOT_OURS;
        __u32 offset_m = bw_be16(frag + 2);
        next = frag[0];
        off += 8;
        /* Offset 0 without M: an atomic fragment (RFC 6946), a whole datagram. */
        if (offset_m & (BW_IPV6_OFFSET_MASK | BW_IPV6_MORE_FRAGMENTS)) {
          d->fragment_id = bw_be32(frag + 4);
          if (offset_m & BW_IPV6_OFFSET_MASK) {
            return next == IPPROTO_UDP ? BW_PARSE_LATER_FRAGMENT : BW_PARSE_NOT_OURS;
          }
          first_fragment = 1;
        }
        continue;
      }
      if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
          next != IPPROTO_AH) {
        return BW_PARSE_NOT_OURS;
      }
      if (off > BW_MAX_L4_OFFSET) return BW_PARSE_UNPARSED;
      __u8* ext = (__u8*)data + off;
      if ((void*)(ext + 2) > data_end) return BW_PARSE_NOT_OURS;
      /* AH counts its length in 4-byte units minus 2, the others in 8-byte units minus 1. */
      __u32 len = next == IPPROTO_AH ? ((__u32)ext[1] + 2) * 4 : ((__u32)ext[1] + 1) * 8;
      next = ext[0];
      off += len;
    }
    if (next != IPPROTO_UDP) return BW_PARSE_UNPARSED;
  } else {
    return BW_PARSE_NOT_OURS;
  }

  if (off > BW_MAX_L4_OFFSET) return BW_PARSE_UNPARSED;
  struct udphdr* udp = (void*)((__u8*)data + off);
  if ((void*)(udp + 1) > data_end) {
    return first_fragment ? BW_PARSE_FIRST_FRAGMENT : BW_PARSE_NOT_OURS;
  }
  d->source_port = bpf_ntohs(udp->source);
  d->dest_port = bpf_ntohs(udp->dest);
  d->ports_known = 1;
  if (!bw_port_is_ours(cfg, d->dest_port)) return BW_PARSE_NOT_OURS;
  if (first_fragment) return BW_PARSE_FIRST_FRAGMENT;
  d->l4_off = off;
  d->udp_len = bpf_ntohs(udp->len);
  return BW_PARSE_OURS;
}

/* Datagram size rules (§4.3 rule 1) for a UDP payload of `size` bytes. */
BW_INLINE __u32 bw_check_size(__u32 size) {
  if (size < BW_OVERHEAD) return BW_CTR_DROP_TRUNCATED;
  if (size > BW_MAX_DATAGRAM) return BW_CTR_DROP_BAD_LENGTH;
  return BW_CTR_PASS;
}

/* Header rules (§4.3 rules 2-7, in the order of wire::parse_header) for the
 * 44 header bytes at `h` of a datagram of `size` bytes that passed
 * bw_check_size. Returns BW_CTR_PASS or the drop counter. */
BW_INLINE __u32 bw_check_header(const __u8* h, __u32 size) {
  __u8 type = h[BW_OFF_TYPE];
  if (h[BW_OFF_VERSION] != BW_VERSION) return BW_CTR_DROP_BAD_VERSION;
  if (type < BW_FIRST_TYPE || type > BW_LAST_TYPE) return BW_CTR_DROP_UNKNOWN_TYPE;
  if (h[BW_OFF_RESERVED] != 0 || (h[BW_OFF_FLAGS] & BW_FLAGS_RESERVED_MASK)) {
    return BW_CTR_DROP_BAD_HEADER;
  }
  if (bw_be16(h + BW_OFF_PAYLOAD_LENGTH) != size - BW_OVERHEAD) return BW_CTR_DROP_BAD_LENGTH;
  if (bw_be16(h + BW_OFF_CONNECTION_ID) > BW_MAX_CONNECTION_ID) return BW_CTR_DROP_BAD_HEADER;
  if (bw_be32(h + BW_OFF_TIMESTAMP) >= BW_MS_PER_DAY) return BW_CTR_DROP_BAD_HEADER;
  __u32 session_bits = bw_be32(h + BW_OFF_SESSION_ID) | bw_be32(h + BW_OFF_SESSION_ID + 4);
  int anonymous = type == BW_TYPE_DISCOVERY || type == BW_TYPE_DISCOVERY_RESPONSE;
  if ((session_bits == 0) != anonymous) return BW_CTR_DROP_BAD_HEADER;
  __u32 frag_id = bw_be16(h + BW_OFF_FRAGMENT_ID);
  __u32 frag_index = bw_be16(h + BW_OFF_FRAGMENT_INDEX);
  __u32 frag_total = bw_be16(h + BW_OFF_FRAGMENT_TOTAL);
  if (type == BW_TYPE_FRAGMENT) {
    if (frag_total < 2 || frag_total > BW_MAX_FRAGMENTS || frag_index >= frag_total) {
      return BW_CTR_DROP_BAD_HEADER;
    }
  } else if (frag_id != 0 || frag_index != 0 || frag_total != 0) {
    return BW_CTR_DROP_BAD_HEADER;
  }
  return BW_CTR_PASS;
}

/* GCRA, the virtual-scheduling form of a token bucket: conforming while the
 * theoretical arrival time is at most `tolerance` ahead of now; each
 * conforming packet pushes it one interval further. Lock-free: a
 * compare-and-swap on the one word, retried a bounded number of times; a
 * source contended that hard is treated as over its rate. */
BW_INLINE int bw_gcra(__u64* tat, __u64 now, const struct bw_rate* rate) {
  __u64 interval = rate->interval_ns;
  __u64 tolerance = rate->tolerance_ns;
  if (interval == 0) return 1;
#pragma unroll
  for (int i = 0; i < 3; i++) {
    __u64 old = *(volatile __u64*)tat;
    __u64 base = old > now ? old : now;
    if (base - now > tolerance) return 0;
    if (__sync_val_compare_and_swap(tat, old, base + interval) == old) return 1;
  }
  return 0;
}

/* Whether bw_gcra would find room now, without taking it. */
BW_INLINE int bw_gcra_has_room(const __u64* tat, __u64 now, const struct bw_rate* rate) {
  if (rate->interval_ns == 0) return 1;
  __u64 t = *(const volatile __u64*)tat;
  return t <= now || t - now <= rate->tolerance_ns;
}

/* Charges one packet to `source`'s bucket in `buckets`; 1 = within rate. A
 * new source starts with a full bucket. */
BW_INLINE int bw_bucket_allow(void* buckets, const struct bw_addr* source, __u64 now,
                              const struct bw_rate* rate) {
  if (rate->interval_ns == 0) return 1;
  struct bw_bucket* b = bpf_map_lookup_elem(buckets, source);
  if (!b) {
    struct bw_bucket fresh = {.tat_ns = 0};
    bpf_map_update_elem(buckets, source, &fresh, BPF_NOEXIST); /* EEXIST: another CPU won */
    b = bpf_map_lookup_elem(buckets, source);
    if (!b) return 1; /* evicted at once by a flood of new sources: the global limits still apply */
  }
  return bw_gcra(&b->tat_ns, now, rate);
}

/* Whether some source has local `port` valid now (valid_port_bits). */
BW_INLINE int bw_port_may_be_valid(__u32 port) {
  return (valid_port_bits[(port >> 6) & (BW_PORT_BIT_WORDS - 1)] >> (port & 63)) & 1;
}

/* The valid-port entry of (source, destination port), or NULL. */
BW_INLINE const struct bw_port_value* bw_pair_lookup(const struct bw_datagram* d) {
  if (!bw_port_may_be_valid(d->dest_port)) return NULL;
  struct bw_port_key key;
  __builtin_memset(&key, 0, sizeof(key));
  key.source = d->source;
  key.port = d->dest_port;
  return bpf_map_lookup_elem(&valid_ports, &key);
}

BW_INLINE int bw_port_maybe_foreign(__u32 port) {
  return (foreign_port_bits[(port >> 6) & (BW_PORT_BIT_WORDS - 1)] >> (port & 63)) & 1;
}

BW_INLINE void bw_tuple_of(struct bw_tuple_key* key, const struct bw_datagram* d) {
  __builtin_memset(key, 0, sizeof(*key));
  key->source = d->source;
  key->source_port = d->source_port;
  key->local_port = d->dest_port;
}

/* Tells bw_sk_lookup to leave this datagram's tuple to the kernel's lookup:
 * the frame filter found its datagram to be another application's. */
BW_INLINE void bw_mark_foreign(const struct bw_datagram* d) {
  struct bw_tuple_key key;
  bw_tuple_of(&key, d);
  struct bw_seen seen = {.seen_ns = bpf_ktime_get_ns()};
  __u32 port = d->dest_port;
  __sync_fetch_and_or(&foreign_port_bits[(port >> 6) & (BW_PORT_BIT_WORDS - 1)], 1ull << (port & 63));
  bpf_map_update_elem(&foreign_tuples, &key, &seen, BPF_ANY);
}

/* The tuple's last datagram was one of ours: steer it again. */
BW_INLINE void bw_unmark_foreign(const struct bw_datagram* d) {
  if (!bw_port_maybe_foreign(d->dest_port)) return;
  struct bw_tuple_key key;
  bw_tuple_of(&key, d);
  bpf_map_delete_elem(&foreign_tuples, &key);
}

/* Whether a socket of another application would receive this datagram: the
 * hopping range spans the kernel's ephemeral ports, so replies to other
 * programs' clients (DNS, NTP, QUIC) and servers on high ports arrive there.
 * The daemon's own sockets (own_ports) do not count. `ctx` is the program's
 * context (XDP or TC); the lookup runs in the namespace of the device, and
 * runs bw_sk_lookup on the way (in_filter_lookup tells it so). */
BW_INLINE int bw_foreign_socket(void* ctx, const struct bw_datagram* d, int* connected) {
  struct bpf_sock_tuple t;
  __builtin_memset(&t, 0, sizeof(t));
  __u32 size;
  if (d->v6) {
    __builtin_memcpy(t.ipv6.saddr, d->source.bytes, 16);
    __builtin_memcpy(t.ipv6.daddr, d->dest.bytes, 16);
    t.ipv6.sport = bpf_htons(d->source_port);
    t.ipv6.dport = bpf_htons(d->dest_port);
    size = sizeof(t.ipv6);
  } else {
    __builtin_memcpy(&t.ipv4.saddr, &d->source.bytes[12], 4);
    __builtin_memcpy(&t.ipv4.daddr, &d->dest.bytes[12], 4);
    t.ipv4.sport = bpf_htons(d->source_port);
    t.ipv4.dport = bpf_htons(d->dest_port);
    size = sizeof(t.ipv4);
  }
  __u32 zero = 0;
  __u32* nested = bpf_map_lookup_elem(&in_filter_lookup, &zero);
  if (nested) *nested = 1;
  struct bpf_sock* sk = bpf_sk_lookup_udp(ctx, &t, size, BPF_F_CURRENT_NETNS, 0);
  if (nested) *nested = 0;
  if (!sk) return 0;
  __u16 port = (__u16)sk->src_port;
  /* A connected socket wins the kernel's lookup before sk_lookup runs. */
  *connected = sk->state == BPF_TCP_ESTABLISHED;
  bpf_sk_release(sk);
  return bpf_map_lookup_elem(&own_ports, &port) == NULL;
}

/* The port and rate decision for a well-formed datagram; `valid` is whether
 * bw_pair_lookup(d) found the pair. */
BW_INLINE __u32 bw_admit(const struct bw_config* cfg, const struct bw_datagram* d, int valid) {
  __u64 now = bpf_ktime_get_ns();
  if (!valid && d->dest_port != cfg->discovery_port) {
    /* A port valid for some source now, from another one: perhaps a session's
     * peer whose address changed (NAT rebinding, a new network). The daemon
     * authenticates it and validates the new path before it moves anything
     * (docs/protocol.md §11.6); here it only costs a bucket per source. */
    /* Connection 0 only: a peer's keepalives, heartbeats and path responses
     * travel there (and its connections' packets cannot roam before it has),
     * so a transfer's own packets cannot spend the candidate's budget. */
    if (d->connection_id != 0 || !bw_port_may_be_valid(d->dest_port)) return BW_CTR_DROP_BAD_PORT;
    if (!bw_bucket_allow(&roam_buckets, &d->source, now, &cfg->roam)) {
      return BW_CTR_DROP_ROAM_RATE;
    }
    return BW_CTR_PASS_ROAM;
  }
  if (valid) {
    if (!bw_bucket_allow(&data_buckets, &d->source, now, &cfg->data)) {
      return BW_CTR_DROP_RATE_LIMITED;
    }
    return BW_CTR_PASS;
  }
  /* Per source first, so that one loud source spends its own budget only. */
  if (!bw_bucket_allow(&disc_buckets, &d->source, now, &cfg->discovery)) {
    return BW_CTR_DROP_DISCOVERY_RATE;
  }
  /* A configured peer's address: the daemon spends a budget of its own on
   * each peer's PSK (docs/protocol.md §6.5), which strangers' junk cannot
   * empty; the cap below for all sources together must not drop it first. */
  if (bpf_map_lookup_elem(&peer_sources, &d->source)) return BW_CTR_PASS_DISCOVERY;
  struct bw_global* g = bw_global_state();
  if (g && !bw_gcra(&g->discovery_tat_ns, now, &cfg->discovery_total)) {
    return BW_CTR_DROP_DISCOVERY_TOTAL;
  }
  return BW_CTR_PASS_DISCOVERY;
}

/* Sends a security event about a drop, at most one per source per
 * cfg->event_source_gap_ns and within the global event rate; everything else
 * is counted as suppressed (and reported with the source's next event), so a
 * flood cannot fill the ring buffer or user space. */
BW_INLINE void bw_report(const struct bw_config* cfg, __u32 hook, __u32 reason,
                         const struct bw_datagram* d, __u32 ifindex, __u8 packet_type) {
  __u64 now = bpf_ktime_get_ns();
  struct bw_global* g = bw_global_state();
  /* Over the global event rate (every drop of a flood but the first few a
   * second): suppressed without touching the per-source map, whose lookups
   * and, for spoofed sources, LRU inserts would cost more than the drop. */
  if (!g || !bw_gcra_has_room(&g->event_tat_ns, now, &cfg->events)) {
    bw_count(hook, BW_CTR_EVENTS_SUPPRESSED);
    return;
  }
  struct bw_event_source* s = bpf_map_lookup_elem(&event_sources, &d->source);
  if (!s) {
    struct bw_event_source fresh = {.last_ns = 0, .suppressed = 0, .latest_reason = 0, .pad = 0};
    bpf_map_update_elem(&event_sources, &d->source, &fresh, BPF_NOEXIST);
    s = bpf_map_lookup_elem(&event_sources, &d->source);
    if (!s) {
      bw_count(hook, BW_CTR_EVENTS_SUPPRESSED);
      return;
    }
  }
  __u64 last = *(volatile __u64*)&s->last_ns;
  if (last != 0 && now - last < cfg->event_source_gap_ns) {
    s->latest_reason = reason;
    __sync_fetch_and_add(&s->suppressed, 1);
    bw_count(hook, BW_CTR_EVENTS_SUPPRESSED);
    return;
  }
  if (__sync_val_compare_and_swap(&s->last_ns, last, now) != last || /* another CPU reports */
      !bw_gcra(&g->event_tat_ns, now, &cfg->events)) {
    s->latest_reason = reason;
    __sync_fetch_and_add(&s->suppressed, 1);
    bw_count(hook, BW_CTR_EVENTS_SUPPRESSED);
    return;
  }
  struct bw_event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    s->latest_reason = reason;
    __sync_fetch_and_add(&s->suppressed, 1);
    bw_count(hook, BW_CTR_EVENTS_LOST);
    return;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->timestamp_ns = now;
  e->source = d->source;
  e->suppressed = __sync_lock_test_and_set(&s->suppressed, 0);
  e->ifindex = ifindex;
  e->source_port = d->source_port;
  e->dest_port = d->dest_port;
  e->hook = (__u8)hook;
  e->reason = (__u8)reason;
  e->packet_type = packet_type;
  bpf_ringbuf_submit(e, 0);
  bw_count(hook, BW_CTR_EVENTS_SENT);
}

/* The decision for an IP fragment of a UDP datagram (`first`: the fragment
 * with the UDP header, whose ports are ours or unreadable; else a later one).
 * Our own datagrams are never fragmented, so unless the configuration lets
 * fragments pass, a first fragment to our ports is dropped, and remembered so
 * that the rest of its datagram is dropped too; another application's socket
 * on the port (a large DNS reply to a resolver's ephemeral port) keeps it,
 * as for whole datagrams. A later fragment whose first one was not dropped
 * here passes: it cannot show its port, and without its first fragment the
 * kernel never completes the datagram. */
BW_INLINE __u32 bw_fragment_verdict(void* ctx, const struct bw_config* cfg, struct bw_datagram* d,
                                    int first) {
  struct bw_fragment_key key;
  __builtin_memset(&key, 0, sizeof(key));
  key.source = d->source;
  key.dest = d->dest;
  key.id = d->fragment_id;
  key.v6 = d->v6;
  __u64 now = bpf_ktime_get_ns();
  if (!first) {
    struct bw_seen* seen = bpf_map_lookup_elem(&dropped_fragments, &key);
    if (seen && now - seen->seen_ns < BW_FRAGMENT_HOLD_NS) return BW_CTR_DROP_FRAGMENT_TAIL;
    return BW_CTR_PASS_FRAGMENT;
  }
  int connected = 0;
  if (d->ports_known && bw_foreign_socket(ctx, d, &connected)) {
    if (!connected && bw_pair_lookup(d)) bw_mark_foreign(d);
    return BW_CTR_PASS_FOREIGN;
  }
  if (cfg->flags & BW_CONFIG_PASS_FRAGMENTS) return BW_CTR_PASS_FRAGMENT;
  struct bw_seen fresh = {.seen_ns = now};
  bpf_map_update_elem(&dropped_fragments, &key, &fresh, BPF_ANY);
  return BW_CTR_DROP_FRAGMENT;
}

/* The XDP and TC decision for one frame: 1 = pass, 0 = drop. `frame_len` is
 * the whole frame (it may extend past data_end on a non-linear skb).
 * `segment_size` and `segments`: at TC, a GSO packet (a peer's UDP_SEGMENT
 * send that crossed a veth whole) or a GRO one, judged by its first datagram
 * and counted as `segments` datagrams; 0 and 1 for a plain frame (always at
 * XDP, which has no skb). */
BW_INLINE int bw_filter_frame(void* ctx, void* data, void* data_end, __u64 frame_len,
                              __u32 ifindex, __u32 hook, __u32 segment_size,
                              __u32 segments) {
  const struct bw_config* cfg = bw_config();
  if (!cfg) {
    bw_count(hook, BW_CTR_NOT_OURS);
    return 1;
  }
  int has_l2 = bpf_map_lookup_elem(&l3_devices, &ifindex) == NULL;
  struct bw_datagram d;
  __builtin_memset(&d, 0, sizeof(d));
  int parsed = bw_parse(data, data_end, has_l2, cfg, &d);
  if (parsed == BW_PARSE_FIRST_FRAGMENT || parsed == BW_PARSE_LATER_FRAGMENT) {
    __u32 verdict = bw_fragment_verdict(ctx, cfg, &d, parsed == BW_PARSE_FIRST_FRAGMENT);
    bw_count(hook, verdict);
    if (!bw_is_drop(verdict)) return 1;
    bw_report(cfg, hook, verdict, &d, ifindex, 0);
    return 0;
  }
  if (parsed != BW_PARSE_OURS) {
    bw_count(hook, parsed == BW_PARSE_UNPARSED ? BW_CTR_PASS_UNPARSED : BW_CTR_NOT_OURS);
    return 1;
  }
  const struct bw_port_value* pair = bw_pair_lookup(&d);
  int valid = pair != NULL;
  /* 1 when the datagram passed the header rules and, to a valid pair, carries
   * that pair's session id: one of ours, not another application's. */
  int ours = 0;

  __u8 packet_type = 0;
  __u32 verdict;
  if (d.udp_len < sizeof(struct udphdr) || (__u64)d.l4_off + d.udp_len > frame_len) {
    verdict = BW_CTR_DROP_TRUNCATED; /* shorter than its UDP length says */
  } else {
    verdict = bw_check_size(bw_first_datagram(d.udp_len - sizeof(struct udphdr), segment_size));
  }
  if (verdict == BW_CTR_PASS) {
    /* Bounded again here: `d` lives on the stack, and the verifier does not
     * keep a reloaded field's range (bw_parse already enforced it). */
    __u32 l4_off = d.l4_off;
    if (l4_off > BW_MAX_L4_OFFSET) l4_off = BW_MAX_L4_OFFSET;
    const __u8* h = (const __u8*)data + l4_off + sizeof(struct udphdr);
    if ((void*)(h + BW_HEADER_SIZE) > data_end) {
      verdict = BW_CTR_DROP_TRUNCATED;
    } else {
      packet_type = h[BW_OFF_TYPE];
      verdict =
          bw_check_header(h, bw_first_datagram(d.udp_len - sizeof(struct udphdr), segment_size));
      d.connection_id = bw_be16(h + BW_OFF_CONNECTION_ID);
      ours = verdict == BW_CTR_PASS && (!pair || bw_be64(h + BW_OFF_SESSION_ID) == pair->session_id);
    }
  }
  if (valid) {
    if (ours) {
      bw_unmark_foreign(&d);
    } else {
      /* To a valid pair but not of its session: a reply to another
       * application's socket on the same port perhaps (the hopping range
       * spans the ephemeral ports). When such a socket exists it keeps the
       * datagram, and bw_sk_lookup must not steer it to the daemon. */
      int connected = 0;
      if (bw_foreign_socket(ctx, &d, &connected)) {
        if (!connected) bw_mark_foreign(&d);
        bw_count(hook, BW_CTR_PASS_FOREIGN);
        return 1;
      }
    }
  }
  if (verdict == BW_CTR_PASS) verdict = bw_admit(cfg, &d, valid);
  /* A drop aimed at a port that is neither valid nor discovery may belong to
   * another application: its datagram passes untouched, whatever its
   * contents. Asked last, after every read of the packet: the lookup is a
   * helper call, and only drops pay for it. */
  int connected = 0;
  if (bw_is_drop(verdict) && !valid && d.dest_port != cfg->discovery_port &&
      bw_foreign_socket(ctx, &d, &connected)) {
    verdict = BW_CTR_PASS_FOREIGN;
  }

  bw_count_n(hook, verdict, segments);
  if (!bw_is_drop(verdict)) return 1;
  bw_report(cfg, hook, verdict, &d, ifindex, packet_type);
  return 0;
}

#endif /* BUCKWILD_BPF_FILTER_LOGIC_BPF_H */
