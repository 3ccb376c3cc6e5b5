#include "core/session/session.h"

#include <algorithm>

#include "core/discovery/features.h"
#include "core/hop/time_window.h"
#include "core/wire/codec.h"

namespace buckwild::session {
namespace {

// This host's largest datagram, within what the wire allows: a host whose
// interface carries less than the base size searches (and stays) below it.
std::size_t local_max(const SessionConfig& c) {
  return std::clamp(c.max_datagram, wire::kOverhead + wire::kPmtuProbeBodyMinSize,
                    wire::kMaxDatagramSize);
}

// Discovery's measurement of the peer's clock, the time sync filter's first sample.
std::optional<OffsetSample> discovery_sample(const discovery::Established& e, TimePoint now) {
  if (!e.clock_rtt_ms || *e.clock_rtt_ms < 0 || *e.clock_rtt_ms > kTimeSyncMaxRttMs) {
    return std::nullopt;
  }
  return OffsetSample{e.clock_offset_ms, *e.clock_rtt_ms, now, true};
}

}  // namespace

Result<Session> Session::create(discovery::Established e, const crypto::SecretBytes& psk,
                                const SessionConfig& config, TimePoint now) {
  auto keys = SessionKeys::create(e.session_key, e.session_id, e.initiator, e.features, now);
  if (!keys) return std::unexpected(keys.error());
  auto ports = hop::PortSchedule::create(psk, e.session_id);
  if (!ports) return std::unexpected(ports.error());
  return Session(std::move(e), std::move(*ports), std::move(*keys), config, now);
}

Session::Session(discovery::Established e, hop::PortSchedule ports, SessionKeys keys,
                 const SessionConfig& config, TimePoint now)
    : id_(e.session_id),
      initiator_(e.initiator),
      features_(e.features),
      clock_offset_ms_(e.clock_offset_ms),
      sequence_confirm_(e.sequence_confirm),
      ports_(std::move(ports)),
      keys_(std::move(keys)),
      config_(config),
      out_dir_(e.initiator ? hop::Direction::kInitiatorToResponder : hop::Direction::kResponderToInitiator),
      in_dir_(e.initiator ? hop::Direction::kResponderToInitiator : hop::Direction::kInitiatorToResponder),
      next_sequence_(e.initiator ? e.initial_sequence_i2r : e.initial_sequence_r2i),
      time_sync_(config.time_sync, now, discovery_sample(e, now)),
      pmtu_(wire::kBaseDatagramSize, local_max(config), now),
      last_received_(now),
      last_sent_(now),
      last_heartbeat_(now),
      heard_(!e.initiator) {}

int Session::delay_allowance() const {
  if (config_.fixed_delay_allowance > 0) return std::clamp(config_.fixed_delay_allowance, 1, 16);
  return std::clamp(std::max(delay_.desired(), peer_delay_allowance_), 1, 16);
}

std::uint16_t Session::send_port(std::int64_t now_unix_ms, std::uint16_t conn) {
  // The peer's clock reads ours plus the measured offset: aim at its window.
  return ports_.port(hop::window_at(now_unix_ms + clock_offset_ms_), out_dir_, conn);
}

void Session::listen_ports(std::int64_t now_unix_ms, std::uint16_t conn,
                           std::vector<std::uint16_t>& out) {
  ports_.valid_ports(hop::window_at(now_unix_ms), delay_allowance(), in_dir_, conn, out);
}

Result<std::size_t> Session::seal(wire::Header& h, MutableBytes out, std::size_t body_len,
                                  std::int64_t now_unix_ms, TimePoint now) {
  return seal_as(h, out, body_len, now_unix_ms, now, Counts::kAsSending);
}

Result<std::size_t> Session::seal_as(wire::Header& h, MutableBytes out, std::size_t body_len,
                                     std::int64_t now_unix_ms, TimePoint now, Counts counts) {
  h.session_id = id_;
  h.timestamp_ms = hop::ms_since_midnight(now_unix_ms);
  if (h.connection_id == 0) h.sequence = next_sequence_++;
  auto n = keys_.seal(h, out, body_len);
  if (n) {
    // The packet bound of the AEAD (§9.5): rekey before it is reached.
    if (keys_.sent_under_key() >= keys_.packet_bound() && !keys_.in_progress()) {
      keys_.request_automatic(now);
    }
    if (counts == Counts::kAsSending) {
      last_sent_ = now;
      if (awaiting_since_ == kNever) awaiting_since_ = now;
    }
    // Connection 0's ports carry its own packets and every SYN (§10.3): only
    // those open the port pair a responder answers along (§11.6).
    if (h.connection_id == 0 || h.type == wire::PacketType::kSyn) {
      last_path_window_ = hop::window_at(now_unix_ms);
    }
    ++stats_.sent;
    stats_.sent_bytes += *n;
  }
  return n;
}

Result<std::size_t> Session::seal_datagram(MutableBytes out, std::size_t ip_len,
                                           std::int64_t now_unix_ms, TimePoint now) {
  wire::Header h;
  h.type = wire::PacketType::kDatagram;
  return seal(h, out, ip_len, now_unix_ms, now);
}

Result<std::size_t> Session::make_heartbeat(MutableBytes out, bool probe, std::int64_t now_unix_ms,
                                            TimePoint now) {
  auto n = heartbeat(out,
                     static_cast<std::uint8_t>(wire::flags::kAck | (probe ? wire::flags::kSyn : 0)),
                     now_unix_ms, now, Counts::kAsSending);
  if (n) last_heartbeat_ = now;
  return n;
}

Result<std::size_t> Session::make_heartbeat_answer(MutableBytes out, std::int64_t now_unix_ms,
                                                   TimePoint now) {
  // Not counted as sending: an answer that awaited an answer of its own would
  // make the peer's answer to our probe set off our next probe, and so on.
  auto n = heartbeat(out, wire::flags::kAck, now_unix_ms, now, Counts::kNot);
  if (n) last_heartbeat_ = now;
  return n;
}

bool Session::path_keepalive_due(std::int64_t now_unix_ms, TimePoint now) const {
  // Unheard, last_received_ is still the session's start.
  return initiator_ && config_.path_keepalive && !dead_ &&
         (heard_ || now - last_received_ >= kMinAnswerWait) &&
         last_path_window_ != hop::window_at(now_unix_ms);
}

Result<std::size_t> Session::make_path_keepalive(MutableBytes out, std::int64_t now_unix_ms,
                                                 TimePoint now) {
  auto n = heartbeat(out, wire::flags::kAck, now_unix_ms, now, Counts::kNot);
  if (n) ++stats_.path_keepalives_sent;
  return n;
}

Result<std::size_t> Session::heartbeat(MutableBytes out, std::uint8_t flags,
                                       std::int64_t now_unix_ms, TimePoint now, Counts counts) {
  wire::HeartbeatBody b;
  b.current_time_ms = hop::ms_since_midnight(now_unix_ms);
  b.time_drift_ms = static_cast<std::int16_t>(std::clamp(clock_offset_ms_, -32768, 32767));
  b.delay.delay_windows = static_cast<std::uint8_t>(
      config_.fixed_delay_allowance > 0 ? delay_allowance() : delay_.desired());
  b.delay.jitter_ms = delay_.jitter_ms();
  b.delay.sample_count = delay_.sample_count();
  b.delay.negotiation_seq = negotiation_seq_;
  negotiation_seq_ = static_cast<std::uint16_t>((negotiation_seq_ + 1) & 0x3FF);
  b.delay.adaptation_enabled = config_.fixed_delay_allowance == 0;
  wire::Header h;
  h.type = wire::PacketType::kHeartbeat;
  h.flags = flags;
  if (out.size() < wire::kOverhead + wire::kHeartbeatBodySize) {
    return fail(ErrorCode::kInvalidParameter, "buffer too small for a heartbeat");
  }
  auto written = wire::write_body(h, b, out.subspan(wire::kHeaderSize, wire::kHeartbeatBodySize));
  if (!written) return std::unexpected(written.error());
  ++stats_.heartbeats_sent;
  return seal_as(h, out, *written, now_unix_ms, now, counts);
}

Duration Session::pmtu_probe_timeout() const {
  return std::clamp(3 * rtt(), milliseconds(250), seconds(3));
}

Result<std::size_t> Session::make_pmtu_probe(MutableBytes out, const PmtuSearch::Probe& probe,
                                             std::int64_t now_unix_ms, TimePoint now) {
  if (probe.size < wire::kOverhead + wire::kPmtuProbeBodyMinSize || probe.size > out.size()) {
    return fail(ErrorCode::kInvalidParameter, "buffer too small for the probe");
  }
  wire::PmtuProbeBody b;
  b.probe_id = probe.id;
  b.max_datagram = static_cast<std::uint16_t>(local_max(config_));
  b.padding = static_cast<std::uint16_t>(probe.size - wire::kOverhead - wire::kPmtuProbeBodyMinSize);
  wire::Header h;
  h.type = wire::PacketType::kPmtuProbe;
  const std::size_t body_len = probe.size - wire::kOverhead;
  auto written = wire::write_body(h, b, out.subspan(wire::kHeaderSize, body_len));
  if (!written) return std::unexpected(written.error());
  auto n = seal_as(h, out, *written, now_unix_ms, now, Counts::kNot);
  if (n) ++stats_.pmtu_probes_sent;
  return n;
}

Result<std::size_t> Session::make_pmtu_ack(MutableBytes out, const wire::PmtuAckBody& ack,
                                           std::int64_t now_unix_ms, TimePoint now) {
  if (out.size() < wire::kOverhead + wire::kPmtuAckBodySize) {
    return fail(ErrorCode::kInvalidParameter, "buffer too small for a PMTU_ACK");
  }
  wire::Header h;
  h.type = wire::PacketType::kPmtuAck;
  h.flags = wire::flags::kAck;
  auto written = wire::write_body(h, ack, out.subspan(wire::kHeaderSize, wire::kPmtuAckBodySize));
  if (!written) return std::unexpected(written.error());
  return seal_as(h, out, *written, now_unix_ms, now, Counts::kNot);
}

bool Session::on_pmtu_send_failed(std::uint32_t id, TimePoint now) {
  return pmtu_.on_send_failed(id, now);
}

Result<std::size_t> Session::make_time_sync_request(MutableBytes out, std::uint32_t challenge,
                                                    std::int64_t now_unix_ms, TimePoint now,
                                                    std::uint32_t jitter) {
  if (out.size() < wire::kOverhead + wire::kTimeSyncRequestBodySize) {
    return fail(ErrorCode::kInvalidParameter, "buffer too small for a time sync request");
  }
  const wire::TimeSyncRequestBody b = time_sync_.make_request(challenge, now_unix_ms, now, jitter);
  wire::Header h;
  h.type = wire::PacketType::kTimeSyncRequest;
  auto written = wire::write_body(h, b, out.subspan(wire::kHeaderSize, wire::kTimeSyncRequestBodySize));
  if (!written) return std::unexpected(written.error());
  return seal(h, out, *written, now_unix_ms, now);
}

Result<std::size_t> Session::make_time_sync_response(MutableBytes out,
                                                     const wire::TimeSyncRequestBody& request,
                                                     std::int64_t now_unix_ms, TimePoint now) {
  if (out.size() < wire::kOverhead + wire::kTimeSyncResponseBodySize) {
    return fail(ErrorCode::kInvalidParameter, "buffer too small for a time sync response");
  }
  const wire::TimeSyncResponseBody b = time_sync_.make_response(request, now_unix_ms);
  wire::Header h;
  h.type = wire::PacketType::kTimeSyncResponse;
  h.flags = wire::flags::kAck;
  auto written = wire::write_body(h, b, out.subspan(wire::kHeaderSize, wire::kTimeSyncResponseBodySize));
  if (!written) return std::unexpected(written.error());
  return seal_as(h, out, *written, now_unix_ms, now, Counts::kNot);  // an answer awaits none
}

void Session::on_clock_step(std::int32_t step_ms, TimePoint now) {
  // The peer's clock minus ours: ours moved forward by step_ms.
  // Offsets are circular over the day, as discovery measures them.
  constexpr std::int64_t kDayMs = 86'400'000;
  std::int64_t offset = (static_cast<std::int64_t>(clock_offset_ms_) - step_ms) % kDayMs;
  if (offset > kDayMs / 2) offset -= kDayMs;
  if (offset < -kDayMs / 2) offset += kDayMs;
  set_clock_offset(static_cast<std::int32_t>(offset));
  time_sync_.resync(now);
}

void Session::set_clock_offset(std::int32_t offset_ms) {
  delay_.shift(offset_ms - clock_offset_ms_);
  clock_offset_ms_ = offset_ms;
}

Result<Session::Received> Session::open(MutableBytes datagram, std::int64_t arrived_unix_ms,
                                        TimePoint arrived, std::int64_t now_unix_ms,
                                        TimePoint now) {
  const std::uint32_t now_ms = hop::ms_since_midnight(now_unix_ms);
  const std::uint32_t arrived_ms = hop::ms_since_midnight(arrived_unix_ms);
  auto opened = keys_.open(datagram, now_ms, now);
  if (!opened) {
    ++stats_.rejected;
    return std::unexpected(opened.error());
  }
  ++stats_.received;
  stats_.received_bytes += datagram.size();
  last_received_ = now;
  awaiting_since_ = kNever;
  if (probes_sent_ > 0 && last_probe_ != kNever && arrived >= last_probe_ &&
      opened->header.type == wire::PacketType::kHeartbeat &&
      (opened->header.flags & wire::flags::kSyn) == 0) {
    // The answer to our latest probe (or a heartbeat sent meanwhile: an
    // underestimate only widens nothing, answer_wait() has its floor).
    const Duration sample = arrived - last_probe_;
    probe_rtt_ = probe_rtt_ == 0 ? sample : (7 * probe_rtt_ + sample) / 8;
  }
  probes_sent_ = 0;
  next_probe_ = kNever;
  last_probe_ = kNever;
  const bool restored = silent_;
  const bool first = !heard_;
  heard_ = true;
  silent_ = false;
  suspect_ = false;
  // One-way delay on our clock: arrival minus (sender's stamp minus the offset).
  delay_.add_sample(hop::circular_delta_ms(arrived_ms, opened->header.timestamp_ms) +
                    clock_offset_ms_);

  Received r{opened->header, opened->body, false, std::nullopt, restored, false, std::nullopt, false, first};
  if (opened->header.type == wire::PacketType::kHeartbeat) {
    auto body = wire::parse_body(opened->header, opened->body);
    if (!body) {
      ++stats_.rejected;
      return std::unexpected(body.error());
    }
    const auto& hb = std::get<wire::HeartbeatBody>(*body);
    peer_delay_allowance_ = hb.delay.delay_windows;
    ++stats_.heartbeats_received;
    r.answer_heartbeat = (opened->header.flags & wire::flags::kSyn) != 0;
  } else if (opened->header.type == wire::PacketType::kTimeSyncRequest ||
             opened->header.type == wire::PacketType::kTimeSyncResponse) {
    auto body = wire::parse_body(opened->header, opened->body);
    if (!body) {
      ++stats_.rejected;
      return std::unexpected(body.error());
    }
    std::optional<PeerTimeSync::Update> u;
    if (const auto* req = std::get_if<wire::TimeSyncRequestBody>(&*body)) {
      u = time_sync_.on_request(*req, clock_offset_ms_, arrived_unix_ms, arrived);
      r.answer_time_sync = *req;
    } else {
      u = time_sync_.on_response(std::get<wire::TimeSyncResponseBody>(*body), clock_offset_ms_,
                                 arrived_unix_ms, arrived);
    }
    if (u) set_clock_offset(u->offset_ms);
  } else if (opened->header.type == wire::PacketType::kRekeyRequest ||
             opened->header.type == wire::PacketType::kRekeyResponse) {
    auto body = wire::parse_body(opened->header, opened->body);
    if (!body) {
      ++stats_.rejected;
      return std::unexpected(body.error());
    }
    switch (keys_.on_message(opened->header, *body, now)) {
      case SessionKeys::Answer::kRekeyMessage: r.send_rekey = true; break;
      case SessionKeys::Answer::kHeartbeat: r.answer_heartbeat = true; break;
      case SessionKeys::Answer::kNone: break;
    }
  } else if (opened->header.type == wire::PacketType::kPmtuProbe ||
             opened->header.type == wire::PacketType::kPmtuAck) {
    auto body = wire::parse_body(opened->header, opened->body);
    if (!body) {
      ++stats_.rejected;
      return std::unexpected(body.error());
    }
    if (const auto* probe = std::get_if<wire::PmtuProbeBody>(&*body)) {
      // PMTU_PROBE: the peer's maximum bounds our search too; answer with
      // the size that arrived and our own maximum.
      pmtu_.on_peer_max(probe->max_datagram);
      r.answer_pmtu = wire::PmtuAckBody{
          probe->probe_id, static_cast<std::uint16_t>(datagram.size()),
          static_cast<std::uint16_t>(local_max(config_))};
    } else {
      const auto& ack = std::get<wire::PmtuAckBody>(*body);
      ++stats_.pmtu_acks_received;
      r.pmtu_changed = pmtu_.on_ack(ack.probe_id, ack.probe_size, ack.max_datagram, now);
    }
  }
  return r;
}

void Session::request_rekey(TimePoint now) {
  (void)now;  // the exchange starts at the next on_expiry (next_expiry() says when)
  keys_.request();
}

void Session::request_rekey_at(TimePoint at) { keys_.request_at(at); }

Result<std::size_t> Session::make_rekey(MutableBytes out, crypto::RandomSource& rng,
                                        std::int64_t now_unix_ms, TimePoint now) {
  if (dead_) return 0;
  if (out.size() < wire::kOverhead + wire::kRekeyResponseBodySize) {
    return fail(ErrorCode::kInvalidParameter, "buffer too small for a rekey message");
  }
  auto m = keys_.make_message(rng, answer_wait(), now);
  if (!m) return 0;
  wire::Header h;
  h.type = m->type;
  h.flags = m->flags;
  auto written = wire::write_body(h, m->body, out.subspan(wire::kHeaderSize, wire::body_size(m->body)));
  if (!written) return std::unexpected(written.error());
  // A REQUEST or CONFIRM awaits an answer; a RESPONSE is one.
  return seal_as(h, out, *written, now_unix_ms, now,
                 m->type == wire::PacketType::kRekeyRequest ? Counts::kAsSending : Counts::kNot);
}

Duration Session::rtt() const {
  if (probe_rtt_ > 0) return probe_rtt_;
  if (const auto one_way = delay_.median_ms()) return milliseconds(2 * std::max(*one_way, 0));
  return kDefaultRtt;
}

Duration Session::answer_wait() const {
  const Duration wait = 4 * rtt() + milliseconds(wire::kAckDelayMs);
  return std::clamp(wait, kMinAnswerWait, std::max(kMinAnswerWait, config_.probe_after));
}

TimePoint Session::next_expiry() const {
  if (dead_) return kNever;
  if (!heard_) return last_received_ + config_.dead_after;  // nothing else until the peer speaks
  TimePoint t = std::min({last_received_ + config_.dead_after,
                          last_heartbeat_ + config_.heartbeat_interval, time_sync_.next_expiry(),
                          config_.path_mtu_search ? pmtu_.next_expiry(pmtu_probe_timeout()) : kNever});
  t = std::min(t, keys_.next_expiry());
  if (config_.rekey_interval > 0 && !keys_.in_progress() && !keys_.wanted()) {
    t = std::min(t, std::max(keys_.key_since() + config_.rekey_interval, keys_.automatic_from()));
  }
  if (probes_sent_ > 0) {
    t = std::min(t, next_probe_);
  } else if (awaiting_since_ != kNever) {
    t = std::min(t, awaiting_since_ + answer_wait());
  }
  return t;
}

Session::Expiry Session::on_expiry(TimePoint now) {
  Expiry e;
  if (dead_) return e;
  if (now - last_received_ >= config_.dead_after) {
    dead_ = e.dead = true;
    return e;
  }
  if (!heard_) return e;
  const Duration interval = std::min(answer_wait(), kMaxProbeInterval);
  if (probes_sent_ > 0) {
    if (now >= next_probe_) {
      // A probe went unanswered: the peer is silent (the owner may look for
      // a restarted peer meanwhile); after kProbes, suspect. Neither ends the
      // session (an outage may last minutes): the peer is probed less often
      // until dead_after.
      if (!silent_) silent_ = e.silent = true;
      if (probes_sent_ >= kProbes && !suspect_) suspect_ = e.suspect = true;
      ++probes_sent_;
      next_probe_ = now + (suspect_ ? kSuspectProbeInterval : interval);
      last_probe_ = now;
      e.probe = true;
    }
  } else if (awaiting_since_ != kNever && now - awaiting_since_ >= answer_wait()) {
    // What we sent went unanswered: ask the peer to prove it is there.
    probes_sent_ = 1;
    next_probe_ = now + interval;
    last_probe_ = now;
    e.probe = true;
  }
  if (!e.probe && now - last_heartbeat_ >= config_.heartbeat_interval) e.send_heartbeat = true;
  if (config_.rekey_interval > 0 && !keys_.in_progress() &&
      now - keys_.key_since() >= config_.rekey_interval) {
    keys_.request_automatic(now);
  }
  keys_.on_expiry(now);
  e.send_rekey = keys_.message_due(now);
  if (now >= time_sync_.next_expiry()) {
    e.send_time_sync = true;
    // Should the caller fail to send, the next try comes in a second, not at once.
    time_sync_.postpone(now);
  }
  // Path MTU search: a probe lost, or one due.
  if (const Duration timeout = pmtu_probe_timeout();
      config_.path_mtu_search && now >= pmtu_.next_expiry(timeout)) {
    const std::size_t before = pmtu_.current();
    e.pmtu_probe = pmtu_.poll(now, timeout);
    e.pmtu_changed = pmtu_.current() != before;
  }
  return e;
}

}  // namespace buckwild::session
