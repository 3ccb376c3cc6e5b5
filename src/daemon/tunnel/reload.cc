// A reload put in force while packets flow (docs/control.md "reload"): the
// sessions of peers and PSKs that did not change, their connections, ports and
// counters carry on untouched; only what changed is ended or started.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "daemon/config/config_diff.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const PskConfig* find_psk(const Config& config, const std::string& id) {
  for (const PskConfig& p : config.psks) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

// The ids of the PSKs a peer of `config` may use, in order.
std::vector<std::string> psk_ids(const Config& config, const std::vector<std::size_t>& indices) {
  std::vector<std::string> ids;
  for (std::size_t i : indices) ids.push_back(config.psks[i].id);
  return ids;
}

}  // namespace

SysResult<ReloadSummary> Tunnel::reconfigure(const Config& next) {
  const ConfigDiff diff = diff_config(*config_, next);
  if (!diff.fixed.empty()) {
    return sys_fail_plain(EINVAL, fixed_key_problems(diff).front());
  }
  // The eBPF valid-port map was sized for max_connections at start.
  if (ebpf_ != nullptr && next.security.max_connections > config_->security.max_connections) {
    return sys_fail_plain(EINVAL, "security.max_connections cannot grow while running on the eBPF "
                                  "receive path (its port map is sized at start, for " +
                                      std::to_string(config_->security.max_connections) +
                                      "); restart buckwild to raise it");
  }
  // Everything that can fail comes first, so a failure changes nothing.
  std::vector<discovery::Psk> all;
  for (const PskConfig& p : next.psks) all.push_back({p.id, crypto::SecretBytes::copy_of(p.key.view())});
  auto set = discovery::PskSet::create(std::move(all));
  if (!set) return sys_fail_plain(EINVAL, std::string("PSK set: ") + set.error().what);
  auto fresh = Peers::create(next);
  if (!fresh) return std::unexpected(fresh.error());
  if (ebpf_ != nullptr) {
    if (auto r = ebpf_->set_limits(next.security); !r) {
      return sys_fail_plain(r.error().sys_errno, "eBPF rate limits: " + r.error().message);
    }
  }

  ReloadSummary summary;
  summary.psks_added = diff.psks_added;
  summary.psks_removed = diff.psks_removed;
  summary.psks_changed = diff.psks_changed;
  summary.peers_added = diff.peers_added;
  summary.peers_removed = diff.peers_removed;
  summary.peers_changed = diff.peers_changed;
  summary.settings_changed = diff.settings;

  // A changed PSK is rekeyed when its key differs; otherwise only its
  // allowed_prefixes did, which matter to peers without an entry alone.
  std::vector<std::string> rekeyed;
  for (const std::string& id : diff.psks_changed) {
    const PskConfig* a = find_psk(*config_, id);
    const PskConfig* b = find_psk(next, id);
    if (a == nullptr || b == nullptr || !same_psk_key(*a, *b)) {
      rekeyed.push_back(id);
    }
  }

  // 1. Sessions that proved a PSK that is gone or rekeyed (or, for a peer
  //    without an entry, whose prefixes changed), or belong to a peer that is
  //    gone or changed, end (with the old configuration still in place, so
  //    their audit records and logs name them as they were).
  std::vector<std::pair<std::uint64_t, const char*>> ending;
  sessions_.for_each([&](SessionEntry& e) {
    if (contains(diff.psks_removed, e.psk_id)) {
      ending.emplace_back(e.id, "its PSK was removed by a reload");
    } else if (contains(rekeyed, e.psk_id) || (!e.peer && contains(diff.psks_changed, e.psk_id))) {
      ending.emplace_back(e.id, "its PSK was changed by a reload");
    } else if (e.peer && contains(diff.peers_removed, peers_[*e.peer].config->name)) {
      ending.emplace_back(e.id, "its peer was removed by a reload");
    } else if (e.peer && contains(diff.peers_changed, peers_[*e.peer].config->name)) {
      ending.emplace_back(e.id, "its peer was changed by a reload");
    }
  });
  std::sort(ending.begin(), ending.end());
  for (const auto& [id, why] : ending) remove_session(id, why);
  summary.sessions_ended = ending.size();

  // 2. The peers: an unchanged one is carried over whole (session, discovery,
  //    timer); one whose PSK choice widened or narrowed keeps its session but
  //    discovers with the new set; the rest are new.
  std::unordered_map<std::uint64_t, std::size_t> moved;  // session id → new peer index
  std::vector<std::size_t> discover;                       // new indices to start discovery for
  for (std::size_t i = 0; i < fresh->size(); ++i) {
    Peer& np = (*fresh)[i];
    const std::string& name = np.config->name;
    const std::optional<std::size_t> old = peers_.find(name);
    if (!old || contains(diff.peers_changed, name)) {
      if (np.initiates()) discover.push_back(i);
      continue;
    }
    std::unique_ptr<Peer> kept = peers_.release(*old);
    const bool same_psks = psk_ids(*config_, kept->psk_index) == psk_ids(next, np.psk_index) &&
                           std::none_of(rekeyed.begin(), rekeyed.end(), [&](const std::string& id) {
                             return contains(psk_ids(next, np.psk_index), id);
                           });
    if (!same_psks) {
      // Its discovery used the old set: start over with the new one.
      if (kept->discovery_timer != kNoTimer) loop_.cancel_timer(kept->discovery_timer);
      kept->discovery_timer = kNoTimer;
      if (kept->held_timer != kNoTimer) loop_.cancel_timer(kept->held_timer);
      kept->held_timer = kNoTimer;
      kept->held.reset();
      kept->initiator.reset();
      kept->psks = std::move(np.psks);
      // The kept Peer's own initiates(): its administrative state came with it.
      if (kept->session_id == 0 && kept->initiates()) discover.push_back(i);
    }
    if (kept->session_id != 0) moved[kept->session_id] = i;
    fresh->adopt(i, std::move(kept));
  }
  // What is left of the old peers was removed or changed: their sessions
  // ended above; their timers go with them.
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    std::unique_ptr<Peer> gone = peers_.release(i);
    if (gone != nullptr && gone->discovery_timer != kNoTimer) loop_.cancel_timer(gone->discovery_timer);
    if (gone != nullptr && gone->held_timer != kNoTimer) loop_.cancel_timer(gone->held_timer);
    if (gone != nullptr) drop_parked(*gone);  // its kept connections are reset
  }

  // 3. The new configuration in force.
  psks_ = std::move(*set);  // the responder holds a reference to this member
  peers_ = std::move(*fresh);
  for (std::size_t i = 0; i < peers_.size(); ++i) peers_[i].elsewhere = elsewhere(i);
  config_ = &next;
  sessions_.set_config(&next);
  sessions_.for_each([&](SessionEntry& e) {
    if (!e.peer) return;
    auto it = moved.find(e.id);
    e.peer = it == moved.end() ? std::nullopt : std::optional<std::size_t>(it->second);
  });
  // A peer without an entry may have claimed an address that a configured
  // peer (or its routes) now owns: that session ends.
  std::vector<std::uint64_t> conflicting;
  sessions_.for_each([&](SessionEntry& e) {
    if (!e.peer && e.claimed && sessions_.configured_address(*e.claimed)) conflicting.push_back(e.id);
  });
  for (std::uint64_t id : conflicting) {
    remove_session(id, "its address now belongs to a configured peer");
  }
  summary.sessions_ended += conflicting.size();
  responder_->set_limits(responder_limits(next.security), now());
  responder_->set_reserved(peers_.psk_indices(), now());
  bridge_->set_limits(worker_share(next.security.max_connections, workers_),
                      next.security.max_connections_per_source);
  bridge_->set_memory_limit(worker_share(std::size_t{next.security.stream_memory_mb} << 20, workers_));

  // 4. Discovery towards new and changed peers; ports follow the sessions.
  for (std::size_t i : discover) start_discovery(peers_[i]);
  hop_ports_->update(HopPorts::Closing::kCloseUnneeded);
  return summary;
}

void Tunnel::end_sessions(const char* why) {
  for (std::uint64_t id : sessions_.ids()) remove_session(id, why);
  flush_sends();  // the connections' last packets: the loop may not turn again
}

}  // namespace buckwild::daemon
