// The peers' session state machines (core/session/session_state.h,
// docs/protocol.md §11.9). The machine decides the state; this file reports
// what happened to it, logs each change with its cause, and does what ERROR
// and a returning path ask: discovery and time sync do the work.
#include <spdlog/spdlog.h>

#include <array>
#include <cstring>

#include <nlohmann/json.hpp>

#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {
namespace {

// A returning path restarts a waiting search at most this often: a flood of
// datagrams from the peer's address cannot make us flood it with DISCOVERY.
constexpr Duration kPathReturnGap = milliseconds(500);

}  // namespace

void Tunnel::report(Peer& p, session::Cause cause, std::string_view reason) {
  const session::State before = p.state.state();
  const session::Strategy strategy_before = p.state.strategy();
  // Every session of ours can rekey: a key failure is REKEY's (§11.9).
  const auto changed = p.state.transition(cause, now(), /*rekey_available=*/true);
  if (!changed) return;
  const session::State after = *changed;
  if (after == session::State::kError && before != session::State::kError) {
    p.error_reason = std::string(reason);
    recovery_failed(p, reason);
    return;
  }
  if (after == before && p.state.strategy() == strategy_before &&
      cause == session::Cause::kAttemptFailed) {
    spdlog::debug("{}: {} {} attempt {}", p.config->name, session::name(after),
                  session::name(p.state.strategy()), p.state.attempts());
    return;
  }
  if (after != session::State::kError) p.error_reason.clear();
  if (after == session::State::kRecovering) {
    spdlog::info("{}: {} -> recovering ({}), cause {}", p.config->name, session::name(before),
                 session::name(p.state.strategy()), session::name(p.state.cause()));
  } else {
    spdlog::info("{}: {} -> {}, cause {}", p.config->name, session::name(before),
                 session::name(after), session::name(p.state.cause()));
  }
}

Duration Tunnel::next_backoff(session::Strategy s, int attempt) {
  std::array<std::uint8_t, 4> b{};
  rng_.fill(b);
  std::uint32_t r = 0;
  std::memcpy(&r, b.data(), sizeof r);
  return session::backoff(s, attempt, r);
}

void Tunnel::recovery_failed(const Peer& p, std::string_view reason) {
  spdlog::warn("{}: error: {}", p.config->name, reason);
  if (audit_ != nullptr) {
    audit_->record("recovery_failed", "warning",
                   {{"peer", p.config->name},
                    {"details",
                     {{"reason", reason}, {"strategy", session::name(p.state.strategy())}}}});
  }
  if (on_event_) {
    on_event_(TunnelEvent{TunnelEvent::Kind::kRecoveryFailed, p.config->name, p.session_id,
                          p.config->endpoint, std::string(reason)});
  }
}

void Tunnel::on_path_activity(const SocketAddress& source) {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    Peer& p = peers_[i];
    if (!p.initiates() || !p.initiator || p.held) continue;
    if (p.config->endpoint->ip.unmapped() != source.ip.unmapped()) continue;
    if (!looking_for(p) || now() < p.discovery_started + kPathReturnGap) continue;
    // Only a search that waits: one whose attempt is out is answered anyway.
    const bool waiting = p.initiator->state() == discovery::Initiator::State::kFailed ||
                         (p.session_id != 0 &&
                          p.initiator->state() == discovery::Initiator::State::kInitiated);
    if (!waiting) continue;
    spdlog::info("{}: a datagram from {}: its path is back, discovery again now", p.config->name,
                 source.to_string());
    report(p, session::Cause::kPathReturned);
    start_discovery(p, true);
  }
}

void Tunnel::track_time_sync(SessionEntry& e) {
  if (!e.peer) return;
  Peer& p = peers_[*e.peer];
  if (p.session_id != e.id) return;
  e.resync.observe(e.session->time_sync(), p.state, [&](session::Cause c) {
    report(p, c,
           c == session::Cause::kAttemptsExhausted
               ? fmt::format("clock offset unconfirmed after {} time sync requests (RESYNC); the "
                             "regular measurement goes on",
                             session::kMaxResyncRequests)
               : std::string());
  });
}

bool Tunnel::track_rekey(SessionEntry& e) {
  if (!e.peer) return true;  // a peer without an entry has no machine: its key's triggers retry
  Peer& p = peers_[*e.peer];
  if (p.session_id != e.id) return true;
  const session::Strategy before = p.state.strategy();
  e.rekey_recovery.observe(e.session->keys(), p.state, [&](session::Cause c) {
    if (c == session::Cause::kRecovered) ++stats_.rekey_recoveries;
    report(p, c);
  });
  if (before == session::Strategy::kRekey && p.state.state() == session::State::kRecovering &&
      p.state.strategy() == session::Strategy::kEmergency) {
    // REKEY spent: the key cannot be renewed in the session. New keys by
    // discovery, the connections kept for the next session (§11.9).
    ++stats_.rekey_exhausted;
    spdlog::warn("session {} with {}: {} rekey attempts (REKEY) went unanswered; new keys by "
                 "discovery (EMERGENCY), its connections kept",
                 short_id(e.id), p.config->name, session::kMaxAttempts);
    const bool initiates = p.initiates();
    remove_session(e.id, "REKEY attempts spent: new keys by discovery; its connections are kept",
                   Connections::kKeep);
    if (initiates) start_discovery(p);
    return false;
  }
  std::array<std::uint8_t, 4> b{};
  rng_.fill(b);
  std::uint32_t r = 0;
  std::memcpy(&r, b.data(), sizeof r);
  if (const auto at = e.rekey_recovery.schedule(*e.session, p.state, now(), r)) {
    spdlog::info("session {} with {}: REKEY attempt {} in {} ms", short_id(e.id), p.config->name,
                 p.state.attempts(), (*at - now()) / milliseconds(1));
    arm_session_timer(e);
  }
  return true;
}

void Tunnel::park_connections(Peer& p, std::uint64_t id) {
  drop_parked(p);
  p.parked_session = id;
  p.parked_timer = loop_.add_timer_at(now() + session_config_.dead_after, [this, &p] {
    p.parked_timer = kNoTimer;
    spdlog::info("{}: no new session within {} s: the connections kept for it are reset",
                 p.config->name, session_config_.dead_after / seconds(1));
    drop_parked(p);
    if (p.session_id == 0) {
      report(p, session::Cause::kSessionEnded);
      if (!p.initiates()) report(p, session::Cause::kAwaitingPeer);
    }
  });
}

void Tunnel::adopt_connections(Peer& p, SessionEntry& e) {
  if (p.parked_session == 0) return;
  const std::uint64_t old = p.parked_session;
  if (p.parked_timer != kNoTimer) loop_.cancel_timer(p.parked_timer);
  p.parked_timer = kNoTimer;
  p.parked_session = 0;
  if (!bridge_->move_session(old, e.id)) {
    bridge_->remove_session(old);
    return;
  }
  const std::size_t resent = bridge_->on_peer_back(e.id);
  spdlog::info("session {} with {} takes over the connections of session {} (EMERGENCY){}",
               short_id(e.id), p.config->name, short_id(old),
               resent == 0 ? std::string() : fmt::format("; {} resend now", resent));
}

void Tunnel::drop_parked(Peer& p) {
  if (p.parked_timer != kNoTimer) loop_.cancel_timer(p.parked_timer);
  p.parked_timer = kNoTimer;
  if (p.parked_session != 0) bridge_->remove_session(p.parked_session);
  p.parked_session = 0;
}

}  // namespace buckwild::daemon
