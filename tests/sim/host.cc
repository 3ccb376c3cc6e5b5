#include "sim/host.h"

#include <algorithm>
#include <variant>

#include "core/wire/codec.h"

namespace buckwild::sim {

Host::Host(Simulator& sim, std::string name, bool session_initiator,
           const conn::ConnectionConfig& config, std::uint64_t seed)
    : sim_(sim),
      name_(std::move(name)),
      rng_(seed),
      table_(session_initiator, config, rng_),
      config_(config),
      body_(std::max(config.mss, conn::kMaxControlBody)) {}

std::uint16_t Host::open(std::unique_ptr<App> app) {
  auto c = table_.open(sim_.now());
  if (!c) return 0;
  const std::uint16_t id = (*c)->id();
  apps_[id] = std::move(app);
  service();
  return id;
}

std::uint16_t Host::open_with_id(std::uint16_t id, std::unique_ptr<App> app) {
  conn::ConnectionConfig c = config_;
  c.id = id;
  auto made = conn::Connection::connect(c, rng_, sim_.now());
  if (!made) return 0;
  manual_[id] = std::make_unique<conn::Connection>(std::move(*made));
  apps_[id] = std::move(app);
  service();
  return id;
}

App* Host::app(std::uint16_t id) {
  auto it = apps_.find(id);
  return it == apps_.end() ? nullptr : it->second.get();
}

void Host::receive(std::vector<std::uint8_t> datagram) {
  if (silent_) return;
  ++stats_.datagrams_received;
  auto packet = wire::decode_packet(datagram);
  if (!packet) {
    ++stats_.decode_errors;
    return;
  }
  const std::uint16_t id = packet->header.connection_id;
  if (auto it = manual_.find(id); it != manual_.end()) {
    it->second->on_packet(packet->header, packet->body, sim_.now());
  } else {
    conn::Connection* c = table_.on_packet(packet->header, packet->body, sim_.now());
    if (c && !apps_.contains(c->id())) {
      apps_[c->id()] = accept_ ? accept_(c->id()) : nullptr;
    }
  }
  service();
}

void Host::transmit(const wire::Header& h, Bytes body) {
  if (!out_) return;
  wire::Header header = h;
  header.session_id = 1;
  header.payload_length = static_cast<std::uint16_t>(body.size());
  std::vector<std::uint8_t> datagram(wire::kHeaderSize + body.size() + wire::kTagSize, 0);
  wire::write_header(header, datagram);
  std::copy(body.begin(), body.end(), datagram.begin() + wire::kHeaderSize);
  ++stats_.datagrams_sent;
  out_->send(std::move(datagram));
}

void Host::service() {
  if (in_service_) return;
  in_service_ = true;
  const TimePoint now = sim_.now();
  std::vector<conn::Connection*> conns;
  auto collect = [&] {
    conns.clear();
    for (std::uint16_t id : table_.ids()) conns.push_back(table_.find(id));
    for (auto& [id, c] : manual_) conns.push_back(c.get());
  };
  for (int round = 0; round < 4; ++round) {
    collect();
    for (conn::Connection* c : conns) {
      if (App* a = app(c->id())) a->on_service(*c, now);
    }
    // Round-robin: one packet per connection per pass.
    bool any = true;
    while (any) {
      any = false;
      wire::Header h;
      std::size_t len = 0;
      for (conn::Connection* c : conns) {
        if (c->poll_transmit(now, h, body_, len)) {
          transmit(h, Bytes(body_).first(len));
          any = true;
        }
      }
      while (table_.poll_transmit(h, body_, len)) transmit(h, Bytes(body_).first(len));
    }
    bool events = false;
    std::vector<std::uint16_t> closed;
    for (conn::Connection* c : conns) {
      if (check_ && !c->check_invariants()) ++stats_.invariant_failures;
      while (auto e = c->poll_event()) {
        events = true;
        if (App* a = app(c->id())) a->on_event(*c, *e, now);
        if (e->kind == conn::EventKind::kClosed) closed.push_back(c->id());
      }
    }
    for (std::uint16_t id : closed) {
      if (manual_.erase(id) == 0) table_.remove(id, now);
    }
    if (!events) break;
  }
  in_service_ = false;
  arm_timer();
}

void Host::arm_timer() {
  TimePoint t = kNever;
  for (std::uint16_t id : table_.ids()) t = std::min(t, table_.find(id)->next_expiry());
  for (auto& [id, c] : manual_) t = std::min(t, c->next_expiry());
  if (t == kNever) return;
  if (t <= sim_.now()) {
    // Due now: fine once (an arrival at the very time a timer falls due); due
    // again right after the timer ran means a connection did not act on it.
    if (last_timer_at_ == sim_.now()) {
      ++stats_.timer_spins;
      t = sim_.now() + 1;
    } else {
      t = sim_.now();
    }
  }
  if (wake_at_ != kNever && wake_at_ <= t && wake_at_ >= sim_.now()) return;
  wake_at_ = t;
  const std::uint64_t gen = ++wake_generation_;
  sim_.schedule(t, [this, gen] { on_timer(gen); });
}

void Host::on_timer(std::uint64_t generation) {
  if (generation != wake_generation_) return;
  wake_at_ = kNever;
  const TimePoint now = sim_.now();
  last_timer_at_ = now;
  std::vector<conn::Connection*> conns;
  for (std::uint16_t id : table_.ids()) conns.push_back(table_.find(id));
  for (auto& [id, c] : manual_) conns.push_back(c.get());
  for (conn::Connection* c : conns) {
    if (c->next_expiry() <= now) c->on_expiry(now);
  }
  service();
}

}  // namespace buckwild::sim
