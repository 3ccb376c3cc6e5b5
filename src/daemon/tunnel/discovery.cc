// Discovery in both roles, and sessions coming and going (docs/protocol.md §7).
//
//   initiator   start_discovery → DISCOVERY to the peer's endpoint, repeated
//               on the initiator's own timer; on_response (from that
//               endpoint only) → the session is
//               added (its ports open first) → CONFIRM; on_sequence_confirm
//               → the responder's SEQUENCE_NEG completes it
//   silent      a session whose peer left a probe unanswered stays; the
//               initiator looks for the peer by discovery meanwhile, a new
//               attempt after each EMERGENCY backoff (on_session_timer →
//               start_discovery). A RESPONSE then is held while probes ask
//               the old session (on_held_response): answered, the path was
//               down; unanswered, the peer restarted and the new session
//               replaces the old. on_peer_back ends the search.
//   responder   on_discovery → RESPONSE (or silence: the core's Responder
//               counts why); on_confirm → which peer is this (Peers::identify)
//               → the session is added → SEQUENCE_NEG
//
// add_session applies the one-session-per-peer rule (session_table.h
// `succession`); remove_session resets the session's connections.
#include <spdlog/spdlog.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {
namespace {

// Sessions with peers that have no [[peer]] entry (accepted by their PSK's
// prefixes): capped, so a PSK holder cannot exhaust sockets and memory.
constexpr std::size_t kMaxUnlistedSessions = 256;

// The same UDP address, an IPv4-mapped IPv6 one equal to its IPv4 form.
bool same_address(const SocketAddress& a, const SocketAddress& b) {
  return a.port == b.port && a.ip.unmapped() == b.ip.unmapped();
}

// Why the responder stayed silent: the counter its refusal moved.
std::string_view refusal_reason(const discovery::ResponderCounters& a,
                                const discovery::ResponderCounters& b) {
  if (b.rate_limited != a.rate_limited) return "rate_limited";
  if (b.overloaded != a.overloaded) return "overloaded";
  if (b.malformed != a.malformed) return "malformed";
  if (b.stale != a.stale) return "stale";
  if (b.no_shared_psk != a.no_shared_psk) return "no_shared_psk";
  if (b.no_common_features != a.no_common_features) return "no_common_features";
  if (b.bad_cookie != a.bad_cookie) return "bad_cookie";
  if (b.bad_proof != a.bad_proof) return "bad_proof";
  if (b.replayed != a.replayed) return "replayed";
  return "refused";
}

// While the peer of our session is silent, discovery attempts follow the
// EMERGENCY backoff (session_state.h: 0.5 s doubling, jittered, at most 30 s):
// a restarted peer is found within about the current wait (plus the restart
// check) of being reachable, at once if anything of it arrives
// (on_path_activity).

// A RESPONSE that came while our session was silent is held while
// kRestartProbes probes, spread over the hold, ask that session whether the
// peer still knows it. The hold is 4 round trips (the larger of the session's
// and this discovery's) and 100 ms for the peer's turn, within
// [kMinRestartCheck, kMaxRestartCheck]: one lost probe or answer cannot make
// a live peer look restarted (docs/protocol.md §11.4).
constexpr int kRestartProbes = 3;
constexpr Duration kMinRestartCheck = milliseconds(300);
constexpr Duration kMaxRestartCheck = seconds(2);

Duration restart_check(Duration rtt) {
  return std::clamp(4 * rtt + milliseconds(100), kMinRestartCheck, kMaxRestartCheck);
}

bool awaiting_answer(const discovery::Initiator& i) {
  return i.state() == discovery::Initiator::State::kInitiated ||
         i.state() == discovery::Initiator::State::kResponded;
}

}  // namespace

// ---- as initiator ----

bool Tunnel::looking_for(const Peer& p) const {
  // Another worker holds a session with it: not ours to look for.
  if (claims_ != nullptr && p.session_id == 0 && claims_->held_elsewhere(p.config->name, worker_)) {
    return false;
  }
  // No session, or one whose peer stopped answering: discovery goes on.
  if (p.session_id == 0) return true;
  const SessionEntry* e = sessions_.find(p.session_id);
  return e != nullptr && e->session->silent();
}

void Tunnel::start_discovery(Peer& p, bool retry) {
  drop_held(p);
  if (p.session_id == 0) report(p, session::Cause::kDiscoveryStarted);  // CONNECTING
  p.initiator.emplace(*p.psks, offered_features_, rng_);
  p.discovery_started = now();
  // Looking for a silent peer: the wait before the next attempt.
  p.retry_wait = next_backoff(session::Strategy::kEmergency, p.state.attempts());
  send_discovery(p.initiator->start(unix_ms(), now()), *p.config->endpoint);
  if (!retry) {
    spdlog::info("discovery started towards {} ({})", p.config->name,
                 p.config->endpoint->to_string());
  }
  arm_discovery_timer(p);
}

void Tunnel::arm_discovery_timer(Peer& p) {
  if (p.discovery_timer != kNoTimer) loop_.cancel_timer(p.discovery_timer);
  p.discovery_timer = kNoTimer;
  if (!p.initiator) return;
  TimePoint due = kNever;
  const bool silent_session = p.session_id != 0 && looking_for(p);
  if (awaiting_answer(*p.initiator)) {
    due = p.initiator->next_expiry();
    // Looking for the peer of a silent session: the next attempt after the
    // EMERGENCY backoff, so a restarted peer is found soon after it is back.
    if (silent_session && p.initiator->state() == discovery::Initiator::State::kInitiated)
      due = std::min(due, p.discovery_started + p.retry_wait);
  } else if (p.initiator->state() == discovery::Initiator::State::kFailed && looking_for(p)) {
    // An attempt failed: the peer of a silent session is asked again after
    // its backoff; with no session, backing off from 2 s.
    due = silent_session ? std::max(now(), p.discovery_started + p.retry_wait)
                         : now() + p.retry_wait;
  }
  if (due == kNever) return;
  p.discovery_timer = loop_.add_timer_at(due, [this, &p] {
    p.discovery_timer = kNoTimer;
    on_discovery_timer(p);
  });
}

void Tunnel::on_discovery_timer(Peer& p) {
  if (!p.initiator) return;
  const bool silent_session = p.session_id != 0 && looking_for(p);
  if (silent_session && p.initiates() && now() >= p.discovery_started + p.retry_wait &&
      (p.initiator->state() == discovery::Initiator::State::kFailed ||
       p.initiator->state() == discovery::Initiator::State::kInitiated)) {
    // The attempt of the search went unanswered: the next one (EMERGENCY).
    ++p.discovery_failures;
    report(p, session::Cause::kAttemptFailed,
           fmt::format("session with a silent peer: {} discovery attempts (EMERGENCY) got no "
                       "answer; the session waits for it until the dead-peer timeout",
                       session::kMaxAttempts));
    start_discovery(p, true);
    return;
  }
  if (p.initiator->state() == discovery::Initiator::State::kFailed) {
    if (p.initiates() && looking_for(p)) start_discovery(p, p.session_id != 0);  // the retry
    return;
  }
  if (awaiting_answer(*p.initiator) && p.initiator->next_expiry() <= now()) {
    if (auto again = p.initiator->on_expiry(now())) send_discovery(*again, *p.config->endpoint);
    // CONFIRM unanswered to the last: the responder never took the session
    // (it refused it, or never got it), and ours, which sends nothing until
    // it hears from the responder (§6.3 step 9), ends as a failed attempt.
    if (p.initiator->state() == discovery::Initiator::State::kFailed && p.session_id != 0) {
      if (const SessionEntry* e = sessions_.find(p.session_id); e != nullptr && !e->session->heard()) {
        remove_session(p.session_id, "the peer never confirmed it", Connections::kKeep);
      }
    }
    if (p.initiator->state() == discovery::Initiator::State::kFailed && looking_for(p) &&
        p.session_id == 0) {
      ++p.discovery_failures;
      report(p, session::Cause::kAttemptFailed,
             fmt::format("{} discovery attempts in a row got no answer; still trying, every {} s "
                         "at most",
                         kRecoveryAttempts, session::kMaxBackoff / seconds(1)));
      p.retry_wait = next_backoff(session::Strategy::kNone, static_cast<int>(p.discovery_failures));
      warn_log_.log(now(), "discovery.failed", spdlog::level::warn,
                    "discovery towards {} got no answer; retrying in {} ms", p.config->name,
                    p.retry_wait / milliseconds(1));
    }
  }
  arm_discovery_timer(p);
}

void Tunnel::on_response(Bytes datagram, const SocketAddress& source, const ArrivedAt& at) {
  bool from_an_endpoint = false;
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    Peer& p = peers_[i];
    // Only the address our DISCOVERY went to may answer it (§11.5): a
    // RESPONSE from anywhere else, authentic or not, would make us send our
    // traffic there. Checked before any cryptography.
    if (!p.config->endpoint || !same_address(source, *p.config->endpoint)) continue;
    from_an_endpoint = true;
    if (p.admin_down || !p.initiator ||
        p.initiator->state() != discovery::Initiator::State::kInitiated) {
      continue;
    }
    // A silent session of ours with the peer: the CONFIRM is held for the
    // restart check (below) and sent when it ends, unless the old session
    // answers. Its stamp is that sending time: the responder measures our
    // clock from it (§6.3 step 8), and a CONFIRM stamped `hold` before it
    // left put a restarted peer hold/2 off.
    SessionEntry* old = p.session_id != 0 ? sessions_.find(p.session_id) : nullptr;
    if (old != nullptr && !old->session->silent()) old = nullptr;
    const Duration hold =
        old == nullptr ? 0 : restart_check(std::max(old->session->rtt(), now() - p.discovery_started));
    auto outcome =
        p.initiator->consume_response(datagram, at.unix_ms, unix_ms() + hold / 1000, now());
    if (!outcome) {
      if (outcome.error().code != ErrorCode::kSessionNotFound) {
        warn_log_.log(now(), "discovery.bad_response", spdlog::level::warn,
                      "discovery response from {} refused: {}", source.to_string(),
                      outcome.error().what);
      }
      continue;
    }
    const std::size_t psk_index = p.psk_index[outcome->session.psk_index];
    outcome->session.psk_index = psk_index;
    auto s = session::Session::create(std::move(outcome->session), psks_.key(psk_index),
                                      session_config_, now());
    if (!s) return;
    auto made = std::make_unique<session::Session>(std::move(*s));
    if (SessionEntry* current = p.session_id != 0 ? sessions_.find(p.session_id) : nullptr) {
      if (old == nullptr) {
        // Our session answered meanwhile: the path was down, not the peer.
        p.initiator.reset();
        arm_discovery_timer(p);
        return;
      }
      // The peer answers discovery. Does it still know our session? Probes
      // tell: held until one is answered or the check's time passes.
      // Nothing of this discovery may leave meanwhile: a CONFIRM repeated now
      // would make a peer that is only back from an outage replace (and
      // reset) the session we are about to keep.
      if (p.discovery_timer != kNoTimer) loop_.cancel_timer(p.discovery_timer);
      p.discovery_timer = kNoTimer;
      p.held = Peer::HeldResponse{std::move(made), std::move(outcome->confirm), source, psk_index,
                                  now() + hold, kRestartProbes - 1, hold / kRestartProbes};
      send_heartbeat(*current, Heartbeat::kProbe);
      arm_held_timer(p, now() + p.held->probe_every);
      return;
    }
    // Open the session's ports first: the responder answers CONFIRM at once, on them.
    add_session(std::move(made), source, i, psk_index);
    send_discovery(outcome->confirm, source);
    arm_discovery_timer(p);  // CONFIRM is repeated until SEQUENCE_NEG arrives
    return;
  }
  if (!from_an_endpoint) {
    ++stats_.response_wrong_source;
    audit_drop("discovery_refused", source, "response_from_other_address");
    warn_log_.log(now(), "discovery.response_source", spdlog::level::warn,
                  "discovery response from {} refused: it is no peer's endpoint",
                  source.to_string());
  }
}

void Tunnel::arm_held_timer(Peer& p, TimePoint at) {
  if (p.held_timer != kNoTimer) loop_.cancel_timer(p.held_timer);
  p.held_timer = loop_.add_timer_at(at, [this, &p] {
    p.held_timer = kNoTimer;
    on_held_response(p);
  });
}

void Tunnel::on_held_response(Peer& p) {
  if (!p.held) return;
  if (!looking_for(p)) {  // the old session answered a probe
    p.held.reset();
    p.initiator.reset();
    arm_discovery_timer(p);
    return;
  }
  if (p.held->probes_left > 0) {  // the next probe of the check
    --p.held->probes_left;
    if (SessionEntry* old = sessions_.find(p.session_id)) send_heartbeat(*old, Heartbeat::kProbe);
    arm_held_timer(p, std::min(p.held->until, now() + p.held->probe_every));
    return;
  }
  if (now() < p.held->until) {
    arm_held_timer(p, p.held->until);
    return;
  }
  Peer::HeldResponse held = std::move(*p.held);
  p.held.reset();
  // Unanswered: the peer restarted and lost our session. The new one
  // replaces it (and resets its connections: the peer no longer has their
  // other ends).
  std::size_t index = 0;
  while (index < peers_.size() && &peers_[index] != &p) ++index;
  if (index == peers_.size()) return;
  spdlog::info("{} answers discovery but not our session: it restarted", p.config->name);
  report(p, session::Cause::kPeerRestarted);  // CLOSING: its connections are reset
  add_session(std::move(held.session), held.source, index, held.psk_index);
  send_discovery(held.confirm, held.source);
  arm_discovery_timer(p);
}

void Tunnel::drop_held(Peer& p) {
  if (p.held_timer != kNoTimer) loop_.cancel_timer(p.held_timer);
  p.held_timer = kNoTimer;
  p.held.reset();
}

void Tunnel::on_peer_back(SessionEntry& e) {
  // A silent session heard from its peer: the path is back. Connections
  // whose retransmissions backed off meanwhile resend now, so do the
  // packet-mode TCP segments stranded meanwhile, and whatever discovery was
  // looking for the peer is moot.
  const std::size_t resent = bridge_->on_peer_back(e.id);
  replay_stranded(e);
  if (!e.peer) return;
  Peer& p = peers_[*e.peer];
  if (p.session_id != e.id) return;
  report(p, session::Cause::kRecovered);
  spdlog::info("session {} with {}: the peer answers again{}", short_id(e.id), p.config->name,
               resent == 0 ? std::string() : fmt::format("; {} connection(s) resend now", resent));
  drop_held(p);
  if (p.initiator && awaiting_answer(*p.initiator)) {
    p.initiator.reset();
    arm_discovery_timer(p);
  }
}

void Tunnel::on_sequence_confirm(SessionEntry& e, const wire::Body& body) {
  if (!e.peer) return;
  Peer& p = peers_[*e.peer];
  const auto* confirm = std::get_if<wire::SequenceNegBody>(&body);
  if (confirm != nullptr && p.initiator &&
      p.initiator->state() == discovery::Initiator::State::kResponded &&
      p.initiator->consume_sequence_confirm(*confirm)) {
    spdlog::info("session {} confirmed by {}", short_id(e.id), p.config->name);
    arm_discovery_timer(p);
  }
}

// ---- as responder ----

void Tunnel::on_discovery(Bytes datagram, const SocketAddress& source) {
  const discovery::ResponderCounters before = responder_->counters();
  auto response = responder_->consume_discovery(datagram, to_endpoint(source), unix_ms(), now());
  if (!response) {  // silence; the responder counted why
    audit_drop("discovery_refused", source, refusal_reason(before, responder_->counters()));
    return;
  }
  send_discovery(*response, source);
}

void Tunnel::on_confirm(Bytes datagram, const SocketAddress& source, const ArrivedAt& at) {
  const discovery::ResponderCounters before = responder_->counters();
  auto est = responder_->consume_confirm(datagram, to_endpoint(source), at.unix_ms, now());
  if (!est) {
    if (est.error().code == ErrorCode::kReplayAttack) {
      // The initiator did not hear our confirmation: say it again (a
      // retransmission, not an attack: not for the audit trail).
      if (SessionEntry* e = sessions_.find(responder_->replayed_session())) {
        send_sequence_confirm(*e);
        return;
      }
    }
    audit_drop("discovery_refused", source, refusal_reason(before, responder_->counters()));
    return;
  }
  // Which peer: the one bound to the PSK it proved, wherever it came from.
  const std::optional<std::size_t> peer = peers_.identify(est->psk_index);
  if (peer && peers_[*peer].admin_down) {
    audit_drop("discovery_refused", source, "admin_down");
    return;
  }
  if (!peer) {
    // A restarted peer without an entry replaces its own earlier session:
    // one from the same address that proved the same PSK (a holder of
    // another PSK behind the same NAT address is someone else).
    const std::vector<std::uint64_t> stale = sessions_.unlisted_from(source.ip);
    for (std::uint64_t id : stale) {
      const SessionEntry* old = sessions_.find(id);
      if (old == nullptr || old->psk_id != psks_.id(est->psk_index)) continue;
      remove_session(id, "replaced by a new session from the same address");
    }
    if (sessions_.unlisted() >= kMaxUnlistedSessions) {
      warn_log_.log(now(), "discovery.unlisted_cap", spdlog::level::warn,
                    "{}: refused, already {} sessions with peers that have no [[peer]] entry",
                    source.to_string(), kMaxUnlistedSessions);
      return;
    }
    if (config_->psks[est->psk_index].allowed_prefixes.empty()) {
      warn_log_.log(
          now(), "discovery.unknown_peer", spdlog::level::warn,
          "{} proved PSK {} but has no [[peer]] entry and that PSK allows no prefixes: refused",
          source.to_string(), psks_.id(est->psk_index));
      return;
    }
  }
  const std::size_t psk_index = est->psk_index;
  auto s = session::Session::create(std::move(*est), psks_.key(psk_index), session_config_, now());
  if (!s) return;
  add_session(std::make_unique<session::Session>(std::move(*s)), source, peer, psk_index);
}

// ---- sessions ----

void Tunnel::add_session(std::unique_ptr<session::Session> s, const SocketAddress& remote,
                         std::optional<std::size_t> peer, std::size_t psk_index) {
  const std::uint64_t id = s->id();
  if (sessions_.find(id) != nullptr) return;
  auto e = std::make_unique<SessionEntry>();
  e->id = id;
  e->remote = remote;
  e->peer = peer;
  e->psk_id = psks_.id(psk_index);
  e->established_at = now();
  std::optional<IpAddress> address;
  if (peer) {
    Peer& p = peers_[*peer];
    const PeerConfig& pc = *p.config;
    e->allowed.push_back(
        Cidr{pc.virtual_address, static_cast<std::uint8_t>(pc.virtual_address.bits())});
    for (const Cidr& r : pc.routes) e->allowed.push_back(r);
    if (p.session_id != 0 && p.session_id != id) {
      const SessionEntry* existing = sessions_.find(p.session_id);
      if (existing != nullptr &&
          succession(*existing, p.session_since, *s, now()) == Succession::kKeepExisting) {
        spdlog::info("session {} with {} not kept: both sides started at once and {} stays",
                     short_id(id), pc.name, short_id(p.session_id));
        return;
      }
      remove_session(p.session_id, "replaced by a new session");
    }
    p.session_id = id;
    p.session_since = now();
    p.discovery_failures = 0;
    report(p, session::Cause::kSessionEstablished);
    // One session per peer across workers: the one another worker held ends.
    if (claims_ != nullptr) {
      if (auto before = claims_->claim(pc.name, worker_); before && post_to_worker_) {
        post_to_worker_(*before, [name = pc.name](Tunnel& t) { t.peer_moved(name); });
      }
    }
    address = pc.virtual_address;
    // Our own discovery towards this peer is moot now.
    if (p.initiator && p.initiator->state() == discovery::Initiator::State::kInitiated) {
      p.initiator.reset();
      arm_discovery_timer(p);
    }
  } else {
    e->claimable = config_->psks[psk_index].allowed_prefixes;
  }
  const bool initiator = s->initiator();
  const std::int32_t offset = s->clock_offset_ms();
  // The round trip discovery measured the offset over: it is within half of it.
  const auto& first = s->time_sync().samples();
  const std::string measured_over =
      !first.empty() && first.front().from_discovery
          ? fmt::format(" (measured over a {} ms round trip)", first.front().rtt_ms)
          : std::string();
  // The responder answers along the paths the initiator's datagrams open (§11.6).
  if (!initiator) {
    e->paths.emplace(remote.ip);
    e->validation.emplace(remote.ip);  // ... and to a new address once it proves itself
  }
  e->session = std::move(s);
  SessionEntry& entry = sessions_.insert(std::move(e), address);
  update_tun_routes();
  bridge_->add_session(id, initiator ? SessionRole::kInitiator : SessionRole::kResponder);
  // Until the path MTU search confirms more, segments fit the base size (§11.10).
  bridge_->set_send_mss(id, std::min<std::size_t>(entry.session->max_datagram() - wire::kOverhead, mtu_));
  if (peer) adopt_connections(peers_[*peer], entry);
  ++stats_.sessions_established;
  spdlog::info("session {} established with {} ({}) using PSK {} as {}, clock offset {:+d} ms{}",
               short_id(id), remote.ip.to_string(),
               peer ? peers_[*peer].config->name : std::string("a peer without an entry"),
               psks_.id(psk_index), initiator ? "initiator" : "responder", offset,
               measured_over);
  audit("session_established", entry, "info",
        {{"psk", psks_.id(psk_index)},
         {"role", initiator ? "initiator" : "responder"},
         {"clock_offset_ms", offset}});
  notify(TunnelEvent::Kind::kSessionUp, entry, "");
  hop_ports_->update(HopPorts::Closing::kKeepAll);  // its ports open now, not at the next tick
  arm_session_timer(entry);
  if (!initiator) send_sequence_confirm(entry);
}

void Tunnel::remove_session(std::uint64_t id, const char* why, Connections c) {
  std::unique_ptr<SessionEntry> e = sessions_.remove(id);
  if (e == nullptr) return;
  Peer* peer = peers_.with_session(id);
  spdlog::info("session {} with {} closed: {}", short_id(id), e->remote.ip.to_string(), why);
  audit("session_ended", *e, "info", {{"reason", why}});
  notify(TunnelEvent::Kind::kSessionDown, *e, why);
  if (Peer* p = peer) {
    p->session_id = 0;
    if (claims_ != nullptr) claims_->release(p->config->name, worker_);
    if (c == Connections::kKeep) {
      park_connections(*p, id);
    } else if (p->state.state() != session::State::kClosing) {
      report(*p, session::Cause::kSessionEnded);
    }
    // A peer we do not initiate to is waited for; one we do, looked for by
    // whoever removed the session (start_discovery: CONNECTING).
    if (!p->initiates()) report(*p, session::Cause::kAwaitingPeer);
  }
  if (e->timer != kNoTimer) loop_.cancel_timer(e->timer);
  // Its applications' connections are reset, unless kept for the peer's next session.
  if (peer == nullptr || c == Connections::kReset) bridge_->remove_session(id);
  ++stats_.sessions_lost;
  update_tun_routes();
  // The Session's keys are wiped by their owners' destructors as `e` goes.
}

void Tunnel::peer_moved(const std::string& name) {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    Peer& p = peers_[i];
    if (p.config->name != name || p.session_id == 0) continue;
    remove_session(p.session_id, "the peer's new session is on another worker");
    // Not looked for while the other worker holds it (looking_for).
    p.initiator.reset();
    return;
  }
}

void Tunnel::audit(std::string_view event, const SessionEntry& e, std::string_view severity,
                   const nlohmann::json& details) {
  if (audit_ == nullptr) return;
  // docs/architecture.md "The audit log": never a key, only a PSK's id.
  audit_->record(event, severity,
                 {{"peer", e.peer ? nlohmann::json(peers_[*e.peer].config->name) : nlohmann::json(nullptr)},
                  {"source_address", e.remote.ip.to_string()},
                  {"source_port", e.remote.port},
                  {"session_id", fmt::format("{:016x}", e.id)},
                  {"details", details}});
}

std::string Tunnel::peer_name(const SessionEntry& e) const {
  if (e.peer) return peers_[*e.peer].config->name;
  return e.claimed ? e.claimed->to_string() : e.remote.to_string();
}

void Tunnel::notify(TunnelEvent::Kind kind, const SessionEntry& e, std::string_view reason) {
  if (!on_event_) return;
  on_event_(TunnelEvent{kind, peer_name(e), e.id, e.remote, std::string(reason)});
}

std::optional<bool> Tunnel::admin_up(std::string_view name) const {
  const std::optional<std::size_t> i = peers_.find(name);
  if (!i) return std::nullopt;
  return !peers_[*i].admin_down;
}

bool Tunnel::set_admin_up(std::string_view name, bool up) {
  const std::optional<std::size_t> i = peers_.find(name);
  if (!i) return false;
  Peer& p = peers_[*i];
  if (p.admin_down == !up) return true;
  p.admin_down = !up;
  spdlog::info("peer {} administratively {}", p.config->name, up ? "up" : "down");
  if (!up) {
    if (p.session_id != 0) remove_session(p.session_id, "administratively down");
    p.initiator.reset();
    arm_discovery_timer(p);  // cancels it
  } else if (p.session_id == 0 && p.initiates()) {
    p.discovery_failures = 0;
    start_discovery(p);
  }
  return true;
}

void Tunnel::audit_drop(std::string_view event, const SocketAddress& source, std::string_view reason) {
  if (audit_ != nullptr) audit_->count(event, source.ip.unmapped(), reason);
}

}  // namespace buckwild::daemon
