/* The maps of the filter object, shared by all of its programs. Layouts are in
 * filter_abi.h; user space reaches these through the generated skeleton
 * (skel->maps.<name>), never by name strings. Included once, by
 * filter_logic.bpf.h. */
#ifndef BUCKWILD_BPF_FILTER_MAPS_BPF_H
#define BUCKWILD_BPF_FILTER_MAPS_BPF_H

/* Kernel types before the libbpf headers that use them. */
/* clang-format off */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* clang-format on */

#include "filter_abi.h"

/* (source, local port) pairs valid now; rewritten by user space every hop
 * window, make-before-break. Only user space writes it, so entries are
 * allocated as they are written (BPF_F_NO_PREALLOC) rather than all at map
 * creation: preallocating the default 141 440 cost about 23 ms of the
 * daemon's start. A full map still refuses a new key (E2BIG) as a
 * preallocated one does; lookups never allocate either way. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, BW_VALID_PORTS_DEFAULT);
  __type(key, struct bw_port_key);
  __type(value, struct bw_port_value);
} valid_ports SEC(".maps");

/* Bit p of word p / 64 is set while some source has local port p in
 * valid_ports: a summary user space keeps beside the map (through the
 * skeleton's mapping of .bss). A datagram to a port whose bit is clear is not
 * valid for anyone, which 8 KiB that stay in cache tell without a hash lookup:
 * a flood to random ports never touches valid_ports. A set bit only means
 * "look in the map", so user space sets bits before adding entries and clears
 * them after removing the last one. */
__u64 valid_port_bits[BW_PORT_BIT_WORDS];

/* One struct bw_config at key 0. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct bw_config);
} config_map SEC(".maps");

/* BW_COUNTER_INDEX(hook, counter) -> packets, per CPU. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, BW_COUNTER_ENTRIES);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* Per-source token buckets. LRU: a flood of spoofed sources evicts the
 * oldest entries instead of failing inserts. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, BW_BUCKETS_MAX);
  __type(key, struct bw_addr);
  __type(value, struct bw_bucket);
} data_buckets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, BW_BUCKETS_MAX);
  __type(key, struct bw_addr);
  __type(value, struct bw_bucket);
} disc_buckets SEC(".maps");

/* Roaming candidates: sources sending to a port valid for another source. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, BW_BUCKETS_MAX);
  __type(key, struct bw_addr);
  __type(value, struct bw_bucket);
} roam_buckets SEC(".maps");

/* Per-source event limiter. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, BW_EVENT_SOURCES_MAX);
  __type(key, struct bw_addr);
  __type(value, struct bw_event_source);
} event_sources SEC(".maps");

/* One struct bw_global at key 0. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct bw_global);
} global_state SEC(".maps");

/* Security events (struct bw_event) to user space. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, BW_EVENTS_RING_BYTES);
} events SEC(".maps");

/* The workers' receiving sockets, worker w's at slot w; sized to the
 * workers at load (ebpf_programs.cc). */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKMAP);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} sock_map SEC(".maps");

/* Local ports of the daemon's own sockets: port -> 1 + worker (filter_abi.h). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BW_OWN_PORTS_MAX);
  __type(key, __u16);
  __type(value, __u8);
} own_ports SEC(".maps");

/* Addresses of the configured peers (their endpoints, and where their
 * sessions last came from): address -> 1 + the worker serving the peer.
 * Their discovery messages skip the all-sources discovery cap, which a flood
 * from spoofed sources empties; their per-source bucket still applies
 * (filter_logic.bpf.h, bw_admit). With several workers bw_sk_lookup steers
 * their discovery messages to that worker (filter_abi.h). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BW_PEER_SOURCES_MAX);
  __type(key, struct bw_addr);
  __type(value, __u8);
} peer_sources SEC(".maps");

/* Where packets leaving the TUN device go: prefix -> worker (filter_abi.h). */
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, BW_TUN_ROUTES_MAX);
  __type(key, struct bw_route_key);
  __type(value, __u32);
} tun_routes SEC(".maps");

/* Stream mode's NAT rules (filter_abi.h), written by user space only. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, BW_TUN_NAT_MAX);
  __type(key, struct bw_nat_key);
  __type(value, struct bw_nat_value);
} tun_nat SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, BW_NAT_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} tun_nat_counters SEC(".maps");

/* Per CPU, 1 while the frame filter itself asks the kernel for a socket
 * (bw_foreign_socket): that lookup runs bw_sk_lookup too, which then has
 * nothing to decide (the pair is not valid) and nothing to count. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} in_filter_lookup SEC(".maps");

/* Tuples whose last datagram to a valid pair the frame filter found to be
 * another application's (struct bw_tuple_key -> when): bw_sk_lookup leaves
 * those to the kernel's own lookup. LRU: a flood evicts the oldest. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, BW_FOREIGN_TUPLES_MAX);
  __type(key, struct bw_tuple_key);
  __type(value, struct bw_seen);
} foreign_tuples SEC(".maps");

/* Bit p set once foreign_tuples has held an entry for local port p: the
 * data path looks in foreign_tuples only for those ports. */
__u64 foreign_port_bits[BW_PORT_BIT_WORDS];

/* IP datagrams whose first fragment the frame filter dropped (struct
 * bw_fragment_key -> when): their later fragments are dropped too. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, BW_DROPPED_FRAGMENTS_MAX);
  __type(key, struct bw_fragment_key);
  __type(value, struct bw_seen);
} dropped_fragments SEC(".maps");

/* Interfaces whose frames start at the IP header: ifindex -> 1. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BW_L3_DEVICES_MAX);
  __type(key, __u32);
  __type(value, __u8);
} l3_devices SEC(".maps");

#endif /* BUCKWILD_BPF_FILTER_MAPS_BPF_H */
