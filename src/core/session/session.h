// One established session between two hosts, without I/O (docs/protocol.md §8,
// §10, §11): packet protection in both directions, the port schedule for
// sending and listening, heartbeats that negotiate the delay allowance, and
// liveness. The daemon feeds it datagrams and the clock; it answers with
// sealed datagrams, ports and events.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/common/time.h"
#include "core/crypto/packet_protection.h"
#include "core/discovery/established.h"
#include "core/hop/key_schedule.h"
#include "core/hop/port_schedule.h"
#include "core/session/delay_estimator.h"
#include "core/session/rekey.h"
#include "core/session/pmtu_search.h"
#include "core/session/time_sync.h"
#include "core/wire/messages.h"

namespace buckwild::session {

struct SessionConfig {
  int fixed_delay_allowance = 0;  // 1..16 to pin d; 0 = negotiate from measurements
  Duration heartbeat_interval = seconds(30);
  // The dead-peer timeout: a session that hears nothing for this long ends.
  Duration dead_after = seconds(180);
  // The most an answer may be overdue before the peer is probed: what we sent
  // since we last heard from the peer has gone unanswered for answer_wait()
  // (a few round trips, at least kMinAnswerWait) or this long, whichever is
  // shorter (docs/protocol.md §11.4).
  Duration probe_after = seconds(3);
  // Peer time sync: how often  // Peer time sync: how often, and the offset change that sets off a RESYNC.
  TimeSyncConfig time_sync;
  // The initiator sends a path keepalive in every window it has nothing else
  // to send in (docs/protocol.md §11.6): what keeps it reachable behind NAT.
  bool path_keepalive = true;
  // Rekey when the key in force is this old (0: only on the packet bound and
  // on request). key_rotation_interval_hours, or testing.rekey_interval_seconds.
  Duration rekey_interval = 0;
  // The largest datagram this host can send and receive (its interface MTU
  // less IP and UDP headers): what it advertises in PMTU_PROBE and PMTU_ACK
  // and the upper end of its own path MTU search (§11.10).
  std::size_t max_datagram = wire::kMaxDatagramSize;
  // false: no PMTU_PROBEs; the session keeps the base size (tests of the
  // other timers turn the search off to see those alone).
  bool path_mtu_search = true;
};

// Liveness (docs/protocol.md §11.4). An answer is overdue after
// answer_wait() = 4 RTT + the peer's ACK delay, within [kMinAnswerWait,
// probe_after]; the peer is then probed every answer_wait() (at most
// kMaxProbeInterval). One unanswered probe makes the peer *silent* (the owner
// checks by discovery whether it restarted); kProbes unanswered make it
// *suspect*, probed every kSuspectProbeInterval until it answers or
// dead_after passes.
inline constexpr int kProbes = 5;
inline constexpr Duration kMinAnswerWait = milliseconds(200);
inline constexpr Duration kMaxProbeInterval = seconds(1);
inline constexpr Duration kSuspectProbeInterval = seconds(2);
// The round trip assumed before anything has measured one.
inline constexpr Duration kDefaultRtt = milliseconds(100);

struct SessionStats {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t sent_bytes = 0;      // datagram bytes, header and tag included
  std::uint64_t received_bytes = 0;  // ... of authenticated datagrams
  std::uint64_t rejected = 0;  // failed authentication, replay, timestamp or header checks
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t heartbeats_received = 0;
  std::uint64_t path_keepalives_sent = 0;
  std::uint64_t pmtu_probes_sent = 0;
  std::uint64_t pmtu_acks_received = 0;
};

class Session {
 public:
  // `psk` is the selected PSK's bytes (for the port schedule). `now` and
  // `now_unix_ms` are the daemon's monotonic and (offset-adjusted) Unix clocks.
  // Fails only for malformed key material (kInvalidParameter).
  static Result<Session> create(discovery::Established established, const crypto::SecretBytes& psk,
                                const SessionConfig& config, TimePoint now);

  std::uint64_t id() const { return id_; }
  bool initiator() const { return initiator_; }
  std::uint16_t features() const { return features_; }
  std::int32_t clock_offset_ms() const { return clock_offset_ms_; }
  const wire::SequenceNegBody& sequence_confirm() const { return sequence_confirm_; }

  // The delay allowance in force: the larger of ours and the peer's last advertised.
  int delay_allowance() const;

  // The port the peer listens on for connection `conn` right now: the schedule
  // of our sending direction at the window the peer's clock is in.
  std::uint16_t send_port(std::int64_t now_unix_ms, std::uint16_t conn = 0);

  // Appends the ports we must listen on for connection `conn`: windows w−d … w+d
  // of the incoming direction around our current window w. Opening w+d before it
  // is current and closing w−d−1 only after it has passed is what keeps a hop
  // from losing datagrams.
  void listen_ports(std::int64_t now_unix_ms, std::uint16_t conn, std::vector<std::uint16_t>& out);

  // Seals a packet for connection 0 whose body the caller wrote at out[44, 44 + body_len):
  // sets session id, timestamp, connection 0 sequence, ACK flag as given in `h`.
  // Returns the datagram size. Errors as PacketSealer::seal.
  Result<std::size_t> seal(wire::Header& h, MutableBytes out, std::size_t body_len,
                           std::int64_t now_unix_ms, TimePoint now);

  // Seals a DATAGRAM carrying the IP packet the caller placed at out[44, 44 + ip_len).
  Result<std::size_t> seal_datagram(MutableBytes out, std::size_t ip_len, std::int64_t now_unix_ms,
                                    TimePoint now);

  // Writes a HEARTBEAT into `out` (at least 76 bytes) and returns its size.
  // `probe` asks the peer to answer at once (SYN flag set). Both the regular
  // heartbeat and a probe await an answer (§11.4).
  Result<std::size_t> make_heartbeat(MutableBytes out, bool probe, std::int64_t now_unix_ms,
                                     TimePoint now);
  // The answer to a probe: a HEARTBEAT without SYN that awaits no answer
  // itself (it does not count as sending). Size as make_heartbeat.
  Result<std::size_t> make_heartbeat_answer(MutableBytes out, std::int64_t now_unix_ms,
                                            TimePoint now);

  // Writes a TIME_SYNC_REQUEST carrying `challenge` (random, from the
  // caller) into `out` (at least 76 bytes) and returns its size. `jitter`
  // (random too) jitters a RESYNC's wait for the next request.
  Result<std::size_t> make_time_sync_request(MutableBytes out, std::uint32_t challenge,
                                             std::int64_t now_unix_ms, TimePoint now,
                                             std::uint32_t jitter);
  // Writes the TIME_SYNC_RESPONSE to the peer's `request` into `out` (an
  // answer: it awaits none, so it does not count as sending).
  Result<std::size_t> make_time_sync_response(MutableBytes out,
                                              const wire::TimeSyncRequestBody& request,
                                              std::int64_t now_unix_ms, TimePoint now);

  // Our clock was stepped by `step_ms` (the daemon's NTP client): the peer's
  // clock is that much nearer ours than it was, and the offset is re-measured
  // at once (RESYNC).
  void on_clock_step(std::int32_t step_ms, TimePoint now);
  // Whether the initiator owes a path keepalive in the window of `now_unix_ms`
  // (docs/protocol.md §11.6): it is the initiator, path keepalives are on, and
  // it has sent nothing to connection 0's ports in this window yet. Behind a
  // NAT every window's port pair needs a datagram of ours to open the mapping
  // the responder answers along; a window with such traffic of its own needs
  // no keepalive (a connection's packets to its own ports do not count).
  // Before the responder has been heard, not within kMinAnswerWait of the
  // session's start (`now`): its first datagram normally arrives first, and
  // a keepalive right behind CONFIRM would reach the responder's frame filter
  // before it knows the session's ports. Behind a NAT that datagram cannot
  // arrive; the keepalive after the wait opens the path it then comes along.
  bool path_keepalive_due(std::int64_t now_unix_ms, TimePoint now) const;
  // Writes a path keepalive: a HEARTBEAT without SYN that the peer does not
  // answer and that, unlike other packets, does not count as sending while
  // awaiting an answer (it never starts liveness probes). Size as make_heartbeat.
  Result<std::size_t> make_path_keepalive(MutableBytes out, std::int64_t now_unix_ms, TimePoint now);

  // Rekey (docs/protocol.md §9.5): asks for a fresh key from a new X25519
  // exchange. The exchange starts at the next on_expiry() that can (at once
  // unless one is under way or the previous key is still in its grace, then
  // as soon as that ends); on_expiry() then reports send_rekey. Idempotent;
  // the recovery strategy REKEY calls this. Make-before-break: no datagram is
  // rejected during the switch.
  void request_rekey(TimePoint now);
  // The same, the exchange starting no sooner than `at` (the recovery
  // strategy REKEY's backoff, rekey_recovery.h).
  void request_rekey_at(TimePoint at);
  // Writes the REKEY message due now (REQUEST, its retry, RESPONSE or
  // CONFIRM) into `out` (at least 112 bytes) and returns its size; 0 when none
  // is due. `rng` supplies the fresh X25519 key.
  Result<std::size_t> make_rekey(MutableBytes out, crypto::RandomSource& rng,
                                 std::int64_t now_unix_ms, TimePoint now);
  const SessionKeys& keys() const { return keys_; }
  // Path MTU (§11.10): the largest datagram to send the peer now, confirmed
  // by a PMTU_ACK (the base size before any). Every datagram of the session
  // (connection segments, DATAGRAMs, fragments) fits in it.
  std::size_t max_datagram() const { return pmtu_.current(); }
  const PmtuSearch& pmtu() const { return pmtu_; }
  // How long a PMTU_PROBE waits for its ACK: 3 RTT within [250 ms, 3 s].
  Duration pmtu_probe_timeout() const;
  // Writes the PMTU_PROBE `probe` (from Expiry::pmtu_probe) into `out`, which
  // must hold probe.size bytes, and returns its size (probe.size). It awaits
  // no answer as liveness goes (it does not count as sending).
  Result<std::size_t> make_pmtu_probe(MutableBytes out, const PmtuSearch::Probe& probe,
                                      std::int64_t now_unix_ms, TimePoint now);
  // Writes the PMTU_ACK `ack` (from Received::answer_pmtu) into `out` (at
  // least 68 bytes) and returns its size. Not counted as sending.
  Result<std::size_t> make_pmtu_ack(MutableBytes out, const wire::PmtuAckBody& ack,
                                    std::int64_t now_unix_ms, TimePoint now);
  // The probe `id` could not be sent (EMSGSIZE): its size fails at once.
  // Returns true when max_datagram() changed.
  bool on_pmtu_send_failed(std::uint32_t id, TimePoint now);

  // What an authenticated packet asks of the caller.
  struct Received {
    wire::Header header;
    MutableBytes body;            // plaintext, inside the datagram
    bool answer_heartbeat = false;  // a probe arrived: send a heartbeat now
    // A TIME_SYNC_REQUEST arrived: answer it now (make_time_sync_response).
    std::optional<wire::TimeSyncRequestBody> answer_time_sync;
    bool restored = false;  // the first packet from a silent peer: it is back
    bool send_rekey = false;  // a REKEY message is owed at once: make_rekey()
    // A PMTU_PROBE arrived: send this PMTU_ACK now (make_pmtu_ack).
    std::optional<wire::PmtuAckBody> answer_pmtu;
    bool pmtu_changed = false;  // a PMTU_ACK changed max_datagram()
    bool first = false;  // the first the initiator heard in this session: send what was held
  };

  // Authenticates and decrypts a datagram addressed to this session (its header
  // session id matched). Heartbeats are consumed here (delay negotiation,
  // liveness), and so are TIME_SYNC_RESPONSEs (the peer's clock offset);
  // every other type is handed back. Errors: those of
  // PacketOpener::open (the datagram is then to be dropped and counted).
  // `arrived_unix_ms` and `arrived` say when the datagram arrived (the
  // kernel's receive stamp on both clocks), for what is measured from it:
  // one-way delay, probe round trips, the peer's clock (time sync); the rest
  // runs at `now_unix_ms` / `now`.
  Result<Received> open(MutableBytes datagram, std::int64_t arrived_unix_ms, TimePoint arrived,
                        std::int64_t now_unix_ms, TimePoint now);
  // Processed as it arrives.
  Result<Received> open(MutableBytes datagram, std::int64_t now_unix_ms, TimePoint now) {
    return open(datagram, now_unix_ms, now, now_unix_ms, now);
  }

  // Timers: heartbeat every heartbeat_interval, probes, death, rekeys.
  TimePoint next_expiry() const;
  struct Expiry {
    bool send_heartbeat = false;
    bool probe = false;
    bool silent = false;   // the peer just became silent (a probe went unanswered)
    bool suspect = false;  // the peer just became suspect (kProbes went unanswered)
    bool dead = false;
    bool send_time_sync = false;  // send make_time_sync_request now
    bool send_rekey = false;      // send make_rekey now
    // Send this PMTU_PROBE now (make_pmtu_probe).
    std::optional<PmtuSearch::Probe> pmtu_probe;
    bool pmtu_changed = false;  // max_datagram() changed (a black hole was found)
  };
  Expiry on_expiry(TimePoint now);

  bool dead() const { return dead_; }
  // Whether the peer has spoken in this session: a responder's session starts
  // heard (the initiator's CONFIRM made it); an initiator's when the first
  // authenticated datagram arrives. Until then the responder may not yet have
  // the session, nor listen on its ports (its frame filter drops what
  // arrives there first), so the session sends nothing of its own accord
  // (heartbeats, time sync, PMTU probes, rekeys, path keepalives) and the
  // owner holds its traffic (docs/protocol.md §6.3).
  bool heard() const { return heard_; }
  // A probe went unanswered for answer_wait() and nothing has arrived since.
  bool silent() const { return silent_; }
  // kProbes probes went unanswered and nothing has arrived since.
  bool suspect() const { return suspect_; }
  // The round trip to the peer: smoothed over the answers to our probes;
  // before any, twice the measured one-way delay; before that, kDefaultRtt.
  Duration rtt() const;
  // How long an answer may take before it is overdue: 4 RTT + the peer's ACK
  // delay, within [kMinAnswerWait, probe_after].
  Duration answer_wait() const;
  const SessionStats& stats() const { return stats_; }
  // When it last authenticated a packet from the peer (its start before any).
  TimePoint last_received() const { return last_received_; }
  // The median measured one-way delay, ms (corrected by the clock offset);
  // nullopt before the first sample.
  std::optional<std::int32_t> one_way_delay_ms() const { return delay_.median_ms(); }
  const PeerTimeSync& time_sync() const { return time_sync_; }

 private:
  enum class Counts : std::uint8_t { kAsSending, kNot };
  Result<std::size_t> seal_as(wire::Header& h, MutableBytes out, std::size_t body_len,
                              std::int64_t now_unix_ms, TimePoint now, Counts counts);
  Result<std::size_t> heartbeat(MutableBytes out, std::uint8_t flags, std::int64_t now_unix_ms,
                                TimePoint now, Counts counts);

  Session(discovery::Established e, hop::PortSchedule ports, SessionKeys keys,
          const SessionConfig& config, TimePoint now);
  // Puts a new peer clock offset in force; the delay samples measured with
  // the old one are moved with it.
  void set_clock_offset(std::int32_t offset_ms);

  std::uint64_t id_;
  bool initiator_;
  std::uint16_t features_;
  std::int32_t clock_offset_ms_;
  wire::SequenceNegBody sequence_confirm_;
  hop::PortSchedule ports_;
  SessionKeys keys_;
  SessionConfig config_;
  hop::Direction out_dir_;
  hop::Direction in_dir_;
  std::uint32_t next_sequence_;  // connection 0, outgoing

  DelayEstimator delay_;
  PeerTimeSync time_sync_;
  int peer_delay_allowance_ = 1;
  std::uint16_t negotiation_seq_ = 0;
  PmtuSearch pmtu_;

  TimePoint last_received_;
  TimePoint last_sent_;
  TimePoint awaiting_since_ = kNever;  // our first counted send since we last heard
  TimePoint last_probe_ = kNever;      // when the latest probe was due
  Duration probe_rtt_ = 0;             // smoothed; 0 before the first answered probe
  std::int64_t last_path_window_ = -1;  // the window of our last datagram on connection 0's ports
  TimePoint last_heartbeat_;
  TimePoint next_probe_ = kNever;
  int probes_sent_ = 0;
  bool heard_;
  bool silent_ = false;
  bool suspect_ = false;
  bool dead_ = false;
  SessionStats stats_;
};

}  // namespace buckwild::session
