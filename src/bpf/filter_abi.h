/* The contract between the eBPF filter (src/bpf/filter.bpf.c) and the daemon
 * (src/daemon/ebpf/ebpf_programs.cc): map keys and values, counter indices, the
 * configuration record and the security-event record.
 *
 * Plain C with fixed-width kernel types, included by both the BPF program
 * (clang -target bpf) and user space (g++); no hand-copied structs anywhere
 * else. Every struct is naturally aligned with explicit padding, so both
 * compilers lay it out identically; the sizes are checked at the bottom.
 * Changing anything here changes the ABI: rebuild both sides together.
 */
#ifndef BUCKWILD_BPF_FILTER_ABI_H
#define BUCKWILD_BPF_FILTER_ABI_H

#include <linux/types.h>

/* ---- Buckwild wire facts the kernel checks (docs/protocol.md §2–§4) ---- */

#define BW_VERSION 0x01
#define BW_FIRST_TYPE 0x01
#define BW_LAST_TYPE 0x1C
#define BW_TYPE_FRAGMENT 0x08
#define BW_TYPE_DISCOVERY 0x0C
#define BW_TYPE_DISCOVERY_RESPONSE 0x0D
#define BW_HEADER_SIZE 44
#define BW_TAG_SIZE 16
#define BW_OVERHEAD (BW_HEADER_SIZE + BW_TAG_SIZE)
#define BW_MAX_DATAGRAM 9000
#define BW_MAX_CONNECTION_ID 4095
#define BW_MS_PER_DAY 86400000u
#define BW_MAX_FRAGMENTS 255
#define BW_FLAGS_RESERVED_MASK 0x80
/* Header field offsets. */
#define BW_OFF_VERSION 0
#define BW_OFF_TYPE 1
#define BW_OFF_FLAGS 2
#define BW_OFF_RESERVED 3
#define BW_OFF_SESSION_ID 4
#define BW_OFF_CONNECTION_ID 16
#define BW_OFF_TIMESTAMP 28
#define BW_OFF_FRAGMENT_ID 32
#define BW_OFF_FRAGMENT_INDEX 34
#define BW_OFF_FRAGMENT_TOTAL 36
#define BW_OFF_PAYLOAD_LENGTH 38

/* ---- Where a program runs: the first index of the counters ---- */

enum bw_hook {
  BW_HOOK_XDP = 0,       /* XDP on an underlay interface (driver or generic mode) */
  BW_HOOK_TC = 1,        /* TC ingress, where XDP could not attach */
  BW_HOOK_SOCKET = 2,    /* socket filter on the daemon's UDP sockets */
  BW_HOOK_SK_LOOKUP = 3, /* sk_lookup in the daemon's network namespace */
  BW_HOOK_COUNT = 4
};

/* ---- Verdicts and event statistics: the second index of the counters ----
 * Every datagram a hook sees increments exactly one of the verdicts
 * BW_CTR_PASS .. BW_CTR_STEER_FAILED. The BW_CTR_EVENTS_* entries count
 * security events instead, so they do not add up with the verdicts. */

enum bw_counter {
  /* Verdicts that pass. */
  BW_CTR_PASS = 0,       /* well-formed, to a port valid for its source (sk_lookup: steered) */
  BW_CTR_PASS_DISCOVERY, /* well-formed, to the discovery port, within its rates */
  BW_CTR_NOT_OURS,       /* not UDP to our port range: passed untouched */
  BW_CTR_PASS_UNPARSED,  /* over-long IPv6 header chain, or TC could not linearise the
                          * headers: left to the stack (and the socket hooks) */
  BW_CTR_PASS_FOREIGN,   /* not a datagram of the pair's session (or to a port not valid for
                          * its source), and another application's socket takes it (a DNS
                          * reply to a resolver's ephemeral port); sk_lookup: not steered
                          * because the frame filter found it foreign */
  BW_CTR_PASS_ROAM,      /* connection 0, to a port valid for another source, within the
                          * roaming rate: a session's peer whose address changed, for the
                          * daemon to authenticate and challenge (docs/protocol.md §11.6) */
  /* Verdicts that drop. */
  BW_CTR_DROP_BAD_PORT,        /* destination port not valid for this source now */
  BW_CTR_DROP_BAD_VERSION,     /* version byte is not 0x01 */
  BW_CTR_DROP_UNKNOWN_TYPE,    /* type byte outside 0x01..0x1C */
  BW_CTR_DROP_BAD_HEADER,      /* reserved byte or flags, connection id, timestamp, session id or
                                * fragment fields (docs/protocol.md §4.3 rules 2, 4-7) */
  BW_CTR_DROP_TRUNCATED,       /* shorter than header + tag, or than its UDP length says */
  BW_CTR_DROP_BAD_LENGTH,      /* longer than 9000 bytes, or payload length != size - 60 */
  BW_CTR_DROP_RATE_LIMITED,    /* valid port, but the source is over its data-path rate */
  BW_CTR_DROP_DISCOVERY_RATE,  /* discovery port, source over its discovery rate */
  BW_CTR_DROP_DISCOVERY_TOTAL, /* discovery port, all sources together over the total rate */
  BW_CTR_DROP_ROAM_RATE,       /* connection 0, to a port valid for another source, over the
                                * roaming rate */
  BW_CTR_DROP_FRAGMENT,        /* the first IP fragment of a datagram to the hopping range or
                                * the discovery port, or one too short to show the ports */
  BW_CTR_DROP_FRAGMENT_TAIL,   /* a later IP fragment of a datagram whose first one was
                                * dropped */
  /* sk_lookup only: a valid pair, but no socket in the map or the assignment was refused. */
  BW_CTR_STEER_FAILED,
  /* Passes again (after the drops so that the drops stay one range). */
  BW_CTR_PASS_FRAGMENT, /* a later IP fragment not known to belong to a dropped datagram, or
                         * any fragment with BW_CONFIG_PASS_FRAGMENTS: left to the stack */
  /* Security-event statistics (not verdicts). */
  BW_CTR_EVENTS_SENT,       /* written to the ring buffer */
  BW_CTR_EVENTS_SUPPRESSED, /* not sent: per-source gap or global event rate */
  BW_CTR_EVENTS_LOST,       /* not sent: ring buffer full */
  BW_COUNTER_COUNT
};

/* Key of the per-CPU counter array. */
#define BW_COUNTER_INDEX(hook, counter) ((__u32)(hook) * (__u32)BW_COUNTER_COUNT + (__u32)(counter))
#define BW_COUNTER_ENTRIES ((__u32)BW_HOOK_COUNT * (__u32)BW_COUNTER_COUNT)

/* ---- Map sizes (user space may raise valid_ports before loading) ---- */

#define BW_VALID_PORTS_DEFAULT 65536
#define BW_BUCKETS_MAX 65536
#define BW_EVENT_SOURCES_MAX 16384
#define BW_L3_DEVICES_MAX 64
#define BW_OWN_PORTS_MAX 4096
#define BW_PEER_SOURCES_MAX 4096
#define BW_TUN_ROUTES_MAX 65536
/* Two rules a flow: room for the default 4 096 flows of every worker of 32. */
#define BW_TUN_NAT_MAX 262144
#define BW_FOREIGN_TUPLES_MAX 16384
#define BW_DROPPED_FRAGMENTS_MAX 16384
#define BW_EVENTS_RING_BYTES (256 * 1024)
/* valid_port_bits: one bit per UDP port, in 64-bit words. */
#define BW_PORT_BIT_WORDS (65536 / 64)

/* ---- Keys and values ---- */

/* A source address: IPv6, or IPv4 as ::ffff:a.b.c.d; network byte order. */
struct bw_addr {
  __u8 bytes[16];
};

/* valid_ports key: datagrams from `source` to local UDP `port` are expected now. */
struct bw_port_key {
  struct bw_addr source;
  __u16 port; /* host byte order */
  __u16 pad;  /* must be zero */
};

/* valid_ports value: the worker whose socket receives the pair (its
 * sock_map slot, bw_sk_lookup), and what user space knows about the entry
 * (the frame filter compares the session id). */
struct bw_port_value {
  __u64 session_id;
  __u32 window; /* the hop window the port belongs to (low 32 bits) */
  __u16 connection_id;
  __u16 worker; /* < bw_config.workers */
};

/* foreign_tuples key: datagrams from (source, source_port) to local_port
 * that the frame filter last found to be another application's. */
struct bw_tuple_key {
  struct bw_addr source;
  __u16 source_port; /* host byte order */
  __u16 local_port;  /* host byte order */
};

/* dropped_fragments key: one IP datagram being fragmented (RFC 791 / RFC
 * 8200 identification, with both addresses; IPv4 ids are 16 bits). */
struct bw_fragment_key {
  struct bw_addr source;
  struct bw_addr dest;
  __u32 id;
  __u32 v6; /* 1 for IPv6, so that the two families' ids never meet */
};

/* Value of both: when the frame filter last wrote the entry. */
struct bw_seen {
  __u64 seen_ns;
};

/* How long sk_lookup honours a foreign mark, and the frame filter a dropped
 * first fragment (the kernel's own reassembly timeout, ipfrag_time, is 30 s). */
#define BW_FOREIGN_HOLD_NS 1000000000ull
#define BW_FRAGMENT_HOLD_NS 30000000000ull

/* Token-bucket state of one source, kept as a GCRA "theoretical arrival
 * time": the source conforms while tat - now <= tolerance. One 64-bit word,
 * updated with compare-and-swap, so CPUs never tear it. */
struct bw_bucket {
  __u64 tat_ns;
};

/* Event limiter state of one source. */
struct bw_event_source {
  __u64 last_ns;        /* when the last event about this source was sent */
  __u64 suppressed;     /* events about it not sent since then */
  __u32 latest_reason;  /* enum bw_counter of the latest of those (for the
                         * count user space takes when it stops) */
  __u32 pad;
};

/* Global limiter state (array of one). */
struct bw_global {
  __u64 discovery_tat_ns; /* all discovery-port traffic together */
  __u64 event_tat_ns;     /* all security events together */
};

/* ---- Configuration (array of one, written by user space at any time) ---- */

#define BW_CONFIG_ENABLED (1u << 0) /* clear: every program passes everything */
/* Set: IP fragments pass the frame filter to the stack (which reassembles
 * them, the socket hooks checking the whole datagram); clear: fragments of
 * datagrams to the hopping range or the discovery port are dropped. */
#define BW_CONFIG_PASS_FRAGMENTS (1u << 1)

/* A rate is a GCRA pair: interval = 1 s / rate, tolerance = (burst - 1) *
 * interval. interval 0 means unlimited. */
struct bw_rate {
  __u64 interval_ns;
  __u64 tolerance_ns;
};

struct bw_config {
  __u32 flags;    /* BW_CONFIG_* */
  __u16 port_low; /* hopping range, inclusive, host byte order */
  __u16 port_high;
  __u16 discovery_port;
  __u16 pad0;
  __u32 workers; /* receiving sockets in sock_map, one per worker, 1..BW_MAX_WORKERS */
  struct bw_rate data;            /* per source, datagrams to valid ports */
  struct bw_rate discovery;       /* per source, datagrams to the discovery port */
  struct bw_rate discovery_total; /* all sources, datagrams to the discovery port */
  struct bw_rate events;          /* all security events together */
  struct bw_rate roam;            /* per source, connection-0 datagrams to a port valid for
                                   * another source (roaming candidates) */
  __u64 event_source_gap_ns;      /* at most one event per source per gap */
};

/* ---- Interfaces without a link-layer header (tun, wireguard, ipip) ----
 * l3_devices: ifindex -> 1. Frames on these start at the IP header; on every
 * other interface at an Ethernet header. */

/* ---- The daemon's own ports ----
 * own_ports: local UDP port (host byte order, __u16) -> 1 + the worker that
 * bound it, for every socket the daemon has bound. A datagram to a port that
 * is not valid for its source is passed when a socket of another application
 * would receive it, and dropped when that socket is one of these. With
 * several workers, bw_sk_lookup steers such a datagram (a roaming candidate)
 * to that worker's socket. */

/* ---- Peers' addresses ----
 * peer_sources: address -> 1 + the worker that serves the configured peer at
 * that address. Its discovery messages skip the all-sources cap, and with
 * several workers bw_sk_lookup steers them (and the answers to our own
 * DISCOVERY) to that worker; other sources' go to worker
 * bw_source_worker(source). */

/* ---- The virtual interface's queues ----
 * tun_routes: (prefix length, address) -> worker, an LPM trie over
 * bw_addr (IPv4 as ::ffff:a.b.c.d, its prefix length + 96): the workers'
 * established sessions' addresses and routes. bw_tun_steer sends a packet
 * leaving the TUN device to the queue of the worker serving its
 * destination, worker 0's when none does. */
struct bw_route_key {
  __u32 prefix_len; /* 0..128 */
  struct bw_addr address;
};

/* ---- Stream mode's NAT in the kernel (bw_tun_nat) ----
 * tun_nat: a TCP segment leaving the virtual interface with the key's
 * addresses is rewritten to the value's and handed back in on the same
 * interface, as the daemon would write it (docs/architecture.md "Transparent
 * TCP"). Only user space writes it: the rules of the stream bridge's NAT
 * table, one per direction of a flow. Ports in host byte order. */
struct bw_nat_key {
  struct bw_addr source;
  struct bw_addr dest;
  __u16 source_port;
  __u16 dest_port;
};

struct bw_nat_value {
  struct bw_addr source;
  struct bw_addr dest;
  __u16 source_port;
  __u16 dest_port;
};

/* tun_nat_counters (per CPU), by index. */
enum bw_nat_counter {
  BW_NAT_REWRITTEN = 0, /* rewritten and handed back in, never reaching the daemon */
  BW_NAT_TO_DAEMON,     /* TCP with no rule, a SYN or RST, or a header not parsed: to the daemon */
  BW_NAT_FAILED,        /* a rule, but a checksum or store helper failed: dropped (TCP resends) */
  BW_NAT_COUNTER_COUNT
};

/* ---- Socket map ----
 * Slot w: worker w's receiving UDP socket (its discovery socket). */

#define BW_MAX_WORKERS 64

/* ---- Security events (ring buffer) ---- */

struct bw_event {
  __u64 timestamp_ns;    /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
  struct bw_addr source; /* as in bw_port_key */
  __u64 suppressed;      /* events about this source suppressed before this one */
  __u32 ifindex;         /* arriving interface (0 when the hook does not know it) */
  __u16 source_port;     /* host byte order */
  __u16 dest_port;       /* host byte order */
  __u8 hook;             /* enum bw_hook */
  __u8 reason;           /* enum bw_counter: the drop verdict */
  __u8 packet_type;      /* Buckwild type byte, 0 when not read */
  __u8 pad[5];
};

/* ---- Layout checks ---- */

#ifdef __cplusplus
#define BW_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define BW_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

BW_STATIC_ASSERT(sizeof(struct bw_addr) == 16, "bw_addr");
BW_STATIC_ASSERT(sizeof(struct bw_port_key) == 20, "bw_port_key");
BW_STATIC_ASSERT(sizeof(struct bw_port_value) == 16, "bw_port_value");
BW_STATIC_ASSERT(sizeof(struct bw_bucket) == 8, "bw_bucket");
BW_STATIC_ASSERT(sizeof(struct bw_tuple_key) == 20, "bw_tuple_key");
BW_STATIC_ASSERT(sizeof(struct bw_fragment_key) == 40, "bw_fragment_key");
BW_STATIC_ASSERT(sizeof(struct bw_seen) == 8, "bw_seen");
BW_STATIC_ASSERT(sizeof(struct bw_event_source) == 24, "bw_event_source");
BW_STATIC_ASSERT(sizeof(struct bw_global) == 16, "bw_global");
BW_STATIC_ASSERT(sizeof(struct bw_rate) == 16, "bw_rate");
BW_STATIC_ASSERT(sizeof(struct bw_config) == 16 + 5 * 16 + 8, "bw_config");
BW_STATIC_ASSERT(sizeof(struct bw_event) == 48, "bw_event");
BW_STATIC_ASSERT(sizeof(struct bw_route_key) == 20, "bw_route_key");
BW_STATIC_ASSERT(sizeof(struct bw_nat_key) == 36, "bw_nat_key");
BW_STATIC_ASSERT(sizeof(struct bw_nat_value) == 36, "bw_nat_value");

#endif /* BUCKWILD_BPF_FILTER_ABI_H */
