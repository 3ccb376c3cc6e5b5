/* Buckwild's kernel-side programs: six over one set of maps.
 *
 *   bw_xdp            XDP on underlay interfaces (driver or generic mode)
 *   bw_tc_ingress     the same checks at TC ingress, where XDP cannot attach
 *   bw_socket_filter  on the daemon's UDP sockets: only well-formed datagrams
 *   bw_sk_lookup      steers datagrams for valid (source, port) pairs to the
 *                     receiving socket of the worker that owns the pair
 *   bw_tun_steer      picks the TUN queue (worker) of a packet leaving the
 *                     virtual interface, by its destination (with workers > 1)
 *   bw_tun_nat        stream mode's NAT at TC egress of the virtual interface:
 *                     rewrites a flow's segment and hands it straight back in
 *
 * The checks live in filter_logic.bpf.h, the layouts in filter_abi.h, the
 * loader in src/daemon/ebpf/ebpf_programs.cc. */
/* Kernel types before the libbpf headers that use them. */
/* clang-format off */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
/* clang-format on */

#include "filter_abi.h"
#include "filter_logic.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int bw_xdp(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  __u64 frame_len = (__u64)((__u8*)data_end - (__u8*)data);
  return bw_filter_frame(ctx, data, data_end, frame_len, ctx->ingress_ifindex, BW_HOOK_XDP, 0, 1)
             ? XDP_PASS
             : XDP_DROP;
}

SEC("tc")
int bw_tc_ingress(struct __sk_buff* skb) {
  /* Headers may sit in paged fragments; bring what the checks read into the
   * linear area, but only when it is not there already (pulling may copy). */
  __u32 want = skb->len < BW_PULL_BYTES ? skb->len : BW_PULL_BYTES;
  if ((__u8*)(long)skb->data + want > (__u8*)(long)skb->data_end &&
      bpf_skb_pull_data(skb, want) != 0) {
    /* No memory to linearise: the checks could not see the header, and a
     * valid datagram must not be dropped for that. The socket filter and
     * sk_lookup still apply further up. */
    bw_count(BW_HOOK_TC, BW_CTR_PASS_UNPARSED);
    return TC_ACT_OK;
  }
  void* data = (void*)(long)skb->data;
  void* data_end = (void*)(long)skb->data_end;
  /* A GSO or GRO packet: one flow's datagrams (docs/architecture.md, "UDP
   * offloads"). */
  __u32 segments = skb->gso_segs > 1 ? skb->gso_segs : 1;
  __u32 segment_size = segments > 1 ? skb->gso_size : 0;
  return bw_filter_frame(skb, data, data_end, skb->len, skb->ifindex, BW_HOOK_TC, segment_size,
                         segments)
             ? TC_ACT_OK
             : TC_ACT_SHOT;
}

/* Reads the datagram's source address from the network header, for events. */
static __always_inline void bw_socket_source(struct __sk_buff* skb, struct bw_addr* source) {
  __u8 first = 0;
  if (bpf_skb_load_bytes_relative(skb, 0, &first, 1, BPF_HDR_START_NET) < 0) return;
  if ((first >> 4) == 4) {
    __u8 v4[4];
    if (bpf_skb_load_bytes_relative(skb, __builtin_offsetof(struct iphdr, saddr), v4, sizeof(v4),
                                    BPF_HDR_START_NET) == 0) {
      bw_map_v4(source, v4);
    }
  } else if ((first >> 4) == 6) {
    bpf_skb_load_bytes_relative(skb, __builtin_offsetof(struct ipv6hdr, saddr), source,
                                sizeof(*source), BPF_HDR_START_NET);
  }
}

/* On a UDP socket the filter runs with skb->data at the UDP header and
 * skb->len equal to the UDP length (the stack has already trimmed and checked
 * it). Returns the bytes to keep: all of them, or 0 to drop. */
SEC("socket")
int bw_socket_filter(struct __sk_buff* skb) {
  const struct bw_config* cfg = bw_config();
  if (!cfg) {
    bw_count(BW_HOOK_SOCKET, BW_CTR_NOT_OURS);
    return (int)skb->len;
  }
  __u8 buf[sizeof(struct udphdr) + BW_HEADER_SIZE];
  __u32 len = skb->len;
  /* A GRO packet (the socket asked for UDP_GRO; the daemon does so on this
   * path only while XDP in the driver judged each datagram before GRO): one
   * flow's datagrams, each gso_size bytes but the last. The rules apply to
   * the first; the verdict holds for all (one 4-tuple), and counts each. */
  __u32 segments = skb->gso_segs > 1 ? skb->gso_segs : 1;
  if (segments > 1 && len > sizeof(struct udphdr)) {
    len = (__u32)sizeof(struct udphdr) +
          bw_first_datagram(len - (__u32)sizeof(struct udphdr), skb->gso_size);
  }
  __u8 packet_type = 0;
  __u32 verdict;
  if (len < sizeof(struct udphdr)) {
    verdict = BW_CTR_DROP_TRUNCATED;
  } else {
    verdict = bw_check_size(len - (__u32)sizeof(struct udphdr));
  }
  if (verdict == BW_CTR_PASS) {
    if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)) < 0) {
      verdict = BW_CTR_DROP_TRUNCATED;
    } else {
      packet_type = buf[sizeof(struct udphdr) + BW_OFF_TYPE];
      verdict = bw_check_header(buf + sizeof(struct udphdr), len - (__u32)sizeof(struct udphdr));
    }
  }
  bw_count_n(BW_HOOK_SOCKET, verdict, segments);
  if (verdict == BW_CTR_PASS) return (int)skb->len;

  struct bw_datagram d;
  __builtin_memset(&d, 0, sizeof(d));
  bw_socket_source(skb, &d.source);
  __u8 ports[4];
  if (bpf_skb_load_bytes(skb, 0, ports, sizeof(ports)) == 0) {
    d.source_port = (__u16)bw_be16(ports);
    d.dest_port = (__u16)bw_be16(ports + 2);
  }
  bw_report(cfg, BW_HOOK_SOCKET, verdict, &d, skb->ifindex, packet_type);
  return 0;
}

/* The worker that receives discovery messages from `source` when no map
 * names one: a hash of the address, the same for every datagram from it. */
static __always_inline __u32 bw_source_worker(const struct bw_addr* source, __u32 workers) {
  __u32 w[4];
  __builtin_memcpy(w, source->bytes, sizeof(w));
  __u32 h = (w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9E3779B1u;
  h ^= h >> 16;
  return h % workers;
}

/* Hands the datagram to worker `slot`'s socket. NO_REUSEPORT: the workers'
 * sockets share their ports (SO_REUSEPORT), and the kernel must not pick
 * another member of the group by its own hash. */
static __always_inline int bw_steer(struct bpf_sk_lookup* ctx, __u32 slot, __u32 counter) {
  struct bpf_sock* sk = bpf_map_lookup_elem(&sock_map, &slot);
  if (!sk) {
    bw_count(BW_HOOK_SK_LOOKUP, BW_CTR_STEER_FAILED);
    return SK_PASS;
  }
  long err = bpf_sk_assign(ctx, sk, BPF_SK_LOOKUP_F_NO_REUSEPORT);
  bpf_sk_release(sk);
  bw_count(BW_HOOK_SK_LOOKUP, err == 0 ? counter : BW_CTR_STEER_FAILED);
  return SK_PASS;
}

/* Runs before the kernel's own socket lookup for every datagram to this
 * namespace (after its connected sockets: those keep their datagrams).
 * Datagrams whose (source, local port) is valid now go to the socket of the
 * worker that owns the pair, unless the frame filter marked their tuple as
 * another application's. With several workers, datagrams to the discovery
 * port go to the worker serving the source (peer_sources) or the one its
 * address hashes to, and other datagrams to one of our own ports to the
 * worker that bound it. Everything else continues to the normal lookup. */
SEC("sk_lookup")
int bw_sk_lookup(struct bpf_sk_lookup* ctx) {
  __u32 zero = 0;
  __u32* nested = bpf_map_lookup_elem(&in_filter_lookup, &zero);
  if (nested && *nested) return SK_PASS; /* the frame filter's own lookup */
  const struct bw_config* cfg = bw_config();
  if (!cfg || ctx->protocol != IPPROTO_UDP) {
    bw_count(BW_HOOK_SK_LOOKUP, BW_CTR_NOT_OURS);
    return SK_PASS;
  }
  struct bw_port_key key;
  __builtin_memset(&key, 0, sizeof(key));
  if (ctx->family == BW_AF_INET) {
    __u32 v4 = ctx->remote_ip4;
    bw_map_v4(&key.source, &v4);
  } else if (ctx->family == BW_AF_INET6) {
    /* The context only allows 4-byte loads of the address words. */
    __u32 w0 = ctx->remote_ip6[0], w1 = ctx->remote_ip6[1];
    __u32 w2 = ctx->remote_ip6[2], w3 = ctx->remote_ip6[3];
    __builtin_memcpy(&key.source.bytes[0], &w0, 4);
    __builtin_memcpy(&key.source.bytes[4], &w1, 4);
    __builtin_memcpy(&key.source.bytes[8], &w2, 4);
    __builtin_memcpy(&key.source.bytes[12], &w3, 4);
  } else {
    bw_count(BW_HOOK_SK_LOOKUP, BW_CTR_NOT_OURS);
    return SK_PASS;
  }
  key.port = (__u16)ctx->local_port;
  const struct bw_port_value* pair =
      bw_port_may_be_valid(key.port) ? bpf_map_lookup_elem(&valid_ports, &key) : NULL;
  if (!pair) {
    if (cfg->workers > 1) {
      if (key.port == cfg->discovery_port) {
        __u8* serving = bpf_map_lookup_elem(&peer_sources, &key.source);
        __u32 slot = serving && *serving > 0 ? (__u32)*serving - 1
                                             : bw_source_worker(&key.source, cfg->workers);
        return bw_steer(ctx, slot, BW_CTR_PASS_DISCOVERY);
      }
      __u8* bound = bpf_map_lookup_elem(&own_ports, &key.port);
      if (bound && *bound > 0) return bw_steer(ctx, (__u32)*bound - 1, BW_CTR_PASS_ROAM);
    }
    bw_count(BW_HOOK_SK_LOOKUP, BW_CTR_NOT_OURS);
    return SK_PASS;
  }
  /* The frame filter found this tuple's datagram to be another
   * application's (not of the pair's session, and a socket of that
   * application bound to the port): the kernel's own lookup finds it. */
  if (bw_port_maybe_foreign(key.port)) {
    struct bw_tuple_key tuple;
    __builtin_memset(&tuple, 0, sizeof(tuple));
    tuple.source = key.source;
    tuple.source_port = bpf_ntohs((__u16)ctx->remote_port);
    tuple.local_port = key.port;
    struct bw_seen* seen = bpf_map_lookup_elem(&foreign_tuples, &tuple);
    if (seen && bpf_ktime_get_ns() - seen->seen_ns < BW_FOREIGN_HOLD_NS) {
      bw_count(BW_HOOK_SK_LOOKUP, BW_CTR_PASS_FOREIGN);
      return SK_PASS;
    }
  }
  return bw_steer(ctx, pair->worker, BW_CTR_PASS);
}

/* TUNSETSTEERINGEBPF on the virtual interface: the queue, and so the worker,
 * a packet leaving it goes to (the kernel takes the result modulo the
 * queues). skb->data is the IP header (a TUN device has no link layer). */
SEC("socket")
int bw_tun_steer(struct __sk_buff* skb) {
  struct bw_route_key key;
  __builtin_memset(&key, 0, sizeof(key));
  __u8 first = 0;
  if (bpf_skb_load_bytes(skb, 0, &first, 1) < 0) return 0;
  if ((first >> 4) == 4) {
    __u8 v4[4];
    if (bpf_skb_load_bytes(skb, __builtin_offsetof(struct iphdr, daddr), v4, sizeof(v4)) < 0) return 0;
    bw_map_v4(&key.address, v4);
  } else if ((first >> 4) == 6) {
    if (bpf_skb_load_bytes(skb, __builtin_offsetof(struct ipv6hdr, daddr), &key.address,
                           sizeof(key.address)) < 0) {
      return 0;
    }
  } else {
    return 0;
  }
  key.prefix_len = 128;
  __u32* worker = bpf_map_lookup_elem(&tun_routes, &key);
  return worker ? (int)*worker : 0;
}

BW_INLINE void bw_nat_count(__u32 counter) {
  __u64* n = bpf_map_lookup_elem(&tun_nat_counters, &counter);
  if (n) *n += 1;
}

/* The TCP segment at `l4` is the flow's: rewrite its addresses (`size` bytes
 * of them at `addr_offset`, both together as in the header) and ports to the
 * rule's, fixing the checksums by difference. A segment whose TCP checksum
 * the kernel has yet to finish (CHECKSUM_PARTIAL) holds the pseudo-header's
 * sum there; BPF_F_PSEUDO_HDR updates it for the addresses and leaves it for
 * the ports, which the payload sum covers later. */
BW_INLINE int bw_nat_rewrite(struct __sk_buff* skb, __u32 addr_offset, const void* old_addr,
                             const void* new_addr, __u32 size, __u32 l4, int v4) {
  __s64 diff = bpf_csum_diff((__be32*)old_addr, size, (__be32*)new_addr, size, 0);
  if (diff < 0) return -1;
  if (v4 && bpf_l3_csum_replace(skb, __builtin_offsetof(struct iphdr, check), 0, (__u32)diff, 0) < 0) return -1;
  if (bpf_l4_csum_replace(skb, l4 + 16, 0, (__u32)diff, BPF_F_PSEUDO_HDR) < 0) return -1;
  if (bpf_skb_store_bytes(skb, addr_offset, new_addr, size, 0) < 0) return -1;
  return 0;
}

/* TC egress on the virtual interface (stream mode): a segment of a flow in
 * tun_nat is rewritten as the daemon's NAT would and handed back in on the
 * same interface (bpf_redirect to ingress of a device without a link layer
 * is netif_rx), so it reaches the local socket without a trip through the
 * daemon. Anything else goes on to the TUN queues as before: what is not
 * TCP, a SYN or RST (they change a flow's state, which the daemon tracks),
 * IPv6 with extension headers, fragments, and segments of no flow. */
SEC("tc")
int bw_tun_nat(struct __sk_buff* skb) {
  struct bw_nat_key key;
  __builtin_memset(&key, 0, sizeof(key));
  __u8 first = 0;
  if (bpf_skb_load_bytes(skb, 0, &first, 1) < 0) return TC_ACT_OK;
  __u32 l4 = 0;
  __u8 v4_addrs[8];
  __u8 v6_addrs[32];
  const int v4 = (first >> 4) == 4;
  if (v4) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0) return TC_ACT_OK;
    if (ip.protocol != IPPROTO_TCP) return TC_ACT_OK;
    if ((ip.frag_off & bpf_htons(0x3FFF)) != 0 || ip.ihl < 5) goto to_daemon;
    l4 = (__u32)ip.ihl * 4;
    __builtin_memcpy(v4_addrs, &ip.saddr, 4);
    __builtin_memcpy(v4_addrs + 4, &ip.daddr, 4);
    bw_map_v4(&key.source, &v4_addrs[0]);
    bw_map_v4(&key.dest, &v4_addrs[4]);
  } else if ((first >> 4) == 6) {
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0) return TC_ACT_OK;
    if (ip6.nexthdr != IPPROTO_TCP) return TC_ACT_OK;  /* extension headers included */
    l4 = sizeof(struct ipv6hdr);
    __builtin_memcpy(v6_addrs, &ip6.saddr, 16);
    __builtin_memcpy(v6_addrs + 16, &ip6.daddr, 16);
    __builtin_memcpy(&key.source, &v6_addrs[0], 16);
    __builtin_memcpy(&key.dest, &v6_addrs[16], 16);
  } else {
    return TC_ACT_OK;
  }
  __u8 tcp[14];
  if (bpf_skb_load_bytes(skb, l4, tcp, sizeof(tcp)) < 0) goto to_daemon;
  if (tcp[13] & (0x02 | 0x04)) goto to_daemon; /* SYN, RST */
  key.source_port = (__u16)((tcp[0] << 8) | tcp[1]);
  key.dest_port = (__u16)((tcp[2] << 8) | tcp[3]);
  struct bw_nat_value* rule = bpf_map_lookup_elem(&tun_nat, &key);
  if (!rule) goto to_daemon;

  __u8 new_ports[4] = {(__u8)(rule->source_port >> 8), (__u8)rule->source_port, (__u8)(rule->dest_port >> 8),
                       (__u8)rule->dest_port};
  int err;
  if (v4) {
    __u8 new_addrs[8];
    __builtin_memcpy(new_addrs, &rule->source.bytes[12], 4);
    __builtin_memcpy(new_addrs + 4, &rule->dest.bytes[12], 4);
    err = bw_nat_rewrite(skb, __builtin_offsetof(struct iphdr, saddr), v4_addrs, new_addrs, 8, l4, 1);
  } else {
    __u8 new_addrs[32];
    __builtin_memcpy(new_addrs, &rule->source, 16);
    __builtin_memcpy(new_addrs + 16, &rule->dest, 16);
    err = bw_nat_rewrite(skb, __builtin_offsetof(struct ipv6hdr, saddr), v6_addrs, new_addrs, 32, l4, 0);
  }
  if (err == 0) {
    __s64 diff = bpf_csum_diff((__be32*)tcp, 4, (__be32*)new_ports, 4, 0);
    if (diff < 0 || bpf_l4_csum_replace(skb, l4 + 16, 0, (__u32)diff, 0) < 0 ||
        bpf_skb_store_bytes(skb, l4, new_ports, 4, 0) < 0) {
      err = -1;
    }
  }
  if (err != 0) {
    /* Half rewritten is not a state to hand anyone: drop it, counted; the
     * sender's TCP repeats it. */
    bw_nat_count(BW_NAT_FAILED);
    return TC_ACT_SHOT;
  }
  bw_nat_count(BW_NAT_REWRITTEN);
  return bpf_redirect(skb->ifindex, BPF_F_INGRESS);

to_daemon:
  bw_nat_count(BW_NAT_TO_DAEMON);
  return TC_ACT_OK;
}
