#include "core/conn/connection_table.h"

#include <algorithm>
#include <variant>

#include "core/crypto/random.h"

namespace buckwild::conn {

ConnectionTable::ConnectionTable(bool session_initiator, const ConnectionConfig& config,
                                 crypto::RandomSource& rng)
    : initiator_(session_initiator),
      config_(config),
      rng_(rng),
      quarantine_(config.time_wait),
      next_id_(session_initiator ? 1 : 2) {}

void ConnectionTable::remember_rtt(const Connection& c) {
  const RttEstimator& rtt = c.sender().rtt();
  if (rtt.has_sample()) path_srtt_ = rtt.smoothed();
}

ConnectionConfig ConnectionTable::config_for(std::uint16_t id) {
  // The newest live connection with a sample knows the path best; else the
  // last one removed.
  for (auto it = active_.rbegin(); it != active_.rend(); ++it) {
    if (slots_[*it]->sender().rtt().has_sample()) {
      remember_rtt(*slots_[*it]);
      break;
    }
  }
  ConnectionConfig c = config_;
  c.id = id;
  if (path_srtt_ > 0) {
    const Duration seeded = path_srtt_ + std::max(2 * path_srtt_, config_.rto.min);
    c.rto.initial = std::min(config_.rto.initial, seeded);
  }
  return c;
}

Connection* ConnectionTable::insert(Result<Connection> c) {
  if (!c) return nullptr;
  const std::uint16_t id = c->id();
  slots_[id] = std::make_unique<Connection>(std::move(*c));
  active_.push_back(id);
  return slots_[id].get();
}

Result<Connection*> ConnectionTable::open(TimePoint now, const std::optional<wire::StreamTarget>& target) {
  // Ids of our parity: 1, 3, ..., 4095 or 2, 4, ..., 4094. Allocation moves on
  // round-robin so a freed id is the last to be reused.
  const std::size_t count = initiator_ ? 2048 : 2047;
  for (std::size_t tries = 0; tries < count; ++tries) {
    const std::uint16_t id = next_id_;
    next_id_ = static_cast<std::uint16_t>(next_id_ + 2);
    if (next_id_ > wire::kMaxConnectionId) next_id_ = initiator_ ? 1 : 2;
    if (slots_[id] || resting_until_[id] > now) continue;
    ConnectionConfig c = config_for(id);
    c.target = target;
    Connection* conn = insert(Connection::connect(c, rng_, now));
    if (!conn) return fail(ErrorCode::kPedersenCommitmentFailed, "connection handshake setup");
    return conn;
  }
  return fail(ErrorCode::kMemoryExhausted, "no free connection id");
}

Connection* ConnectionTable::find(std::uint16_t id) {
  return id < kSlots ? slots_[id].get() : nullptr;
}

const Connection* ConnectionTable::find(std::uint16_t id) const {
  return id < kSlots ? slots_[id].get() : nullptr;
}

void ConnectionTable::remove(std::uint16_t id, TimePoint now) {
  if (id >= kSlots || !slots_[id]) return;
  // A connection that waited out its TIME_WAIT has sent nothing for as long
  // as the rest would last, and the peer's last packets (its FIN, repeated
  // ones restarting the wait) are older still: its id is free at once. Any
  // other end (the passive close, a reset, a failure) rests the id.
  const bool served = slots_[id]->time_wait_served();
  remember_rtt(*slots_[id]);
  slots_[id].reset();
  active_.erase(std::find(active_.begin(), active_.end(), id));
  if (ours(id)) resting_until_[id] = served ? now : now + quarantine_;
}

Connection* ConnectionTable::on_packet(const wire::Header& h, const wire::Body& body,
                                       TimePoint now) {
  const std::uint16_t id = h.connection_id;
  if (id == 0 || id >= kSlots) return nullptr;
  Connection* conn = slots_[id].get();
  const auto* syn = std::get_if<wire::SynBody>(&body);
  const bool is_syn = h.type == wire::PacketType::kSyn && syn != nullptr;
  // A new SYN on an id whose old connection is in TIME_WAIT: the peer's
  // quarantine has passed, so the old connection is over.
  if (conn && is_syn && conn->state() == State::kTimeWait &&
      syn->commitment != conn->peer_commitment()) {
    remove(id, now);
    conn = nullptr;
  }
  if (conn) {
    conn->on_packet(h, body, now);
    return conn;
  }
  if (is_syn && !ours(id)) {
    return insert(Connection::accept(config_for(id), rng_, *syn, now));
  }
  if (h.type == wire::PacketType::kRst || h.type == wire::PacketType::kError) return nullptr;
  if (reset_count_ < kMaxPendingResets) resets_[reset_count_++] = PendingReset{id, h.sequence};
  return nullptr;
}

bool ConnectionTable::poll_transmit(wire::Header& h, MutableBytes body_out, std::size_t& body_len) {
  if (reset_count_ == 0) return false;
  const PendingReset r = resets_[--reset_count_];
  h = wire::Header{};
  h.type = wire::PacketType::kRst;
  h.flags = wire::flags::kRst;
  h.connection_id = r.id;
  h.ack = r.ack;
  auto n = wire::write_body(
      h, wire::Body{wire::RstBody{static_cast<std::uint8_t>(ErrorCode::kStateInvalid)}}, body_out);
  body_len = n.value_or(0);
  return n.has_value();
}

}  // namespace buckwild::conn
