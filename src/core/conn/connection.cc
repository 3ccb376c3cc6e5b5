#include "core/conn/connection.h"

#include <algorithm>
#include <cassert>
#include <variant>

#include "core/crypto/random.h"

namespace buckwild::conn {
namespace {

bool config_valid(const ConnectionConfig& c) {
  return c.id >= 1 && c.id <= wire::kMaxConnectionId && c.mss >= 1 &&
         c.mss <= wire::kMaxBodySize && c.send_buffer > 0 && c.receive_buffer > 0;
}

SenderConfig sender_config(const ConnectionConfig& c) {
  SenderConfig s;
  s.mss = c.send_mss != 0 ? std::min(c.send_mss, c.mss) : c.mss;
  s.buffer = c.send_buffer;
  s.initial_buffer = c.initial_send_buffer;
  s.memory = c.memory;
  s.rto = c.rto;
  s.algorithm = c.congestion;
  s.nagle = c.nagle;
  s.max_retransmissions = c.max_retransmissions;
  return s;
}

ReceiverConfig receiver_config(const ConnectionConfig& c) {
  ReceiverConfig r;
  r.mss = c.mss;
  r.buffer = c.receive_buffer;
  r.initial_window = c.initial_receive_window;
  r.memory = c.memory;
  r.ack_delay = c.ack_delay;
  return r;
}

bool has_flag(const wire::Header& h, std::uint8_t flag) { return (h.flags & flag) != 0; }

}  // namespace

std::string_view state_name(State s) {
  switch (s) {
    case State::kSynSent: return "SYN_SENT";
    case State::kSynReceived: return "SYN_RECEIVED";
    case State::kEstablished: return "ESTABLISHED";
    case State::kFinWait1: return "FIN_WAIT_1";
    case State::kFinWait2: return "FIN_WAIT_2";
    case State::kCloseWait: return "CLOSE_WAIT";
    case State::kClosing: return "CLOSING";
    case State::kLastAck: return "LAST_ACK";
    case State::kTimeWait: return "TIME_WAIT";
    case State::kClosed: return "CLOSED";
  }
  return "UNKNOWN";
}

// ---- creation ---------------------------------------------------------------------------

Connection::Connection(const ConnectionConfig& config, Handshake handshake, State initial,
                       TimePoint now)
    : config_(config),
      handshake_(std::move(handshake)),
      sender_(sender_config(config)),
      receiver_(receiver_config(config)),
      state_(initial),
      local_wscale_(Receiver::scale_for(config.receive_buffer)),
      created_(now) {
  arm_handshake_timer(now);
}

Result<Connection> Connection::connect(const ConnectionConfig& config, crypto::RandomSource& rng,
                                       TimePoint now) {
  if (!config_valid(config)) return fail(ErrorCode::kInvalidParameter, "connection config");
  auto hs = Handshake::create(rng);
  if (!hs) return std::unexpected(hs.error());
  Connection c(config, std::move(*hs), State::kSynSent, now);
  c.syn_due_ = true;
  return c;
}

Result<Connection> Connection::accept(const ConnectionConfig& config, crypto::RandomSource& rng,
                                      const wire::SynBody& syn, TimePoint now) {
  if (!config_valid(config)) return fail(ErrorCode::kInvalidParameter, "connection config");
  auto hs = Handshake::create(rng);
  if (!hs) return std::unexpected(hs.error());
  if (auto r = hs->consume_syn(syn); !r) return std::unexpected(r.error());
  Connection c(config, std::move(*hs), State::kSynReceived, now);
  c.peer_params_ = syn.params;
  c.syn_ack_due_ = true;
  return c;
}

wire::ConnectionParams Connection::local_params() const {
  wire::ConnectionParams p;
  p.initial_window = static_cast<std::uint32_t>(
      std::min<std::size_t>(receiver_.receive_space(), 0xFFFFFFFFu));
  p.initial_cwnd = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(sender_.congestion().congestion_window(), 0xFFFFFFFFu));
  p.time_offset_ms = config_.time_offset_ms;
  p.features = 0;
  p.window_scale = local_wscale_;
  return p;
}

// ---- input ---------------------------------------------------------------------------------

void Connection::on_packet(const wire::Header& h, const wire::Body& body, TimePoint now) {
  ++stats_.packets_received;
  if (state_ == State::kClosed || h.connection_id != config_.id) {
    ++stats_.packets_ignored;
    return;
  }
  if (h.type == wire::PacketType::kRst) {
    on_rst(body);
    return;
  }
  if (h.type == wire::PacketType::kError) return;  // informational; never answered
  switch (state_) {
    case State::kSynSent: on_packet_syn_sent(h, body, now); break;
    case State::kSynReceived: on_packet_syn_received(h, body, now); break;
    default: on_packet_synchronized(h, body, now); break;
  }
  after_input(now);
}

void Connection::on_rst(const wire::Body& body) {
  // RFC 1337: TIME_WAIT ignores RST, so an old one cannot cut it short.
  if (state_ == State::kTimeWait) return;
  const auto* rst = std::get_if<wire::RstBody>(&body);
  const auto reason = rst ? static_cast<ErrorCode>(rst->reason) : ErrorCode::kStateInvalid;
  push_event(EventKind::kReset, reason);
  set_state(State::kClosed, 0);
}

// SYN_SENT: we sent a SYN and wait for the peer's commitment and opening.
void Connection::on_packet_syn_sent(const wire::Header& h, const wire::Body& body, TimePoint now) {
  if (const auto* syn = std::get_if<wire::SynBody>(&body); syn && h.type == wire::PacketType::kSyn) {
    // Simultaneous open: answer with our own commitment and opening.
    if (!handshake_.consume_syn(*syn)) {
      ++stats_.packets_ignored;
      return;
    }
    peer_params_ = syn->params;
    set_state(State::kSynReceived, now);
    syn_ack_due_ = true;
    handshake_attempts_ = 0;
    arm_handshake_timer(now);
    return;
  }
  if (const auto* sa = std::get_if<wire::SynAckBody>(&body);
      sa && h.type == wire::PacketType::kSynAck) {
    if (auto r = handshake_.consume_syn_ack(*sa); !r) {
      give_up(r.error().code, true, now);
      return;
    }
    if (!handshake_resent_ && handshake_first_sent_ != kNever) {
      sender_.on_rtt_sample(now - handshake_first_sent_);
    }
    peer_params_ = sa->params;
    complete_handshake(now);
    return;
  }
  // Nothing else can legitimately reach a connection that has not heard from
  // its peer (reference: CONNECTING answers anything else with RST).
  ++stats_.packets_ignored;
  queue_reply(Reply::kRst, ErrorCode::kStateInvalid, static_cast<std::uint32_t>(h.type));
}

// SYN_RECEIVED: we have the peer's commitment and sent our SYN-ACK; we wait for
// its opening.
void Connection::on_packet_syn_received(const wire::Header& h, const wire::Body& body,
                                        TimePoint now) {
  switch (h.type) {
    case wire::PacketType::kSyn: {
      const auto* syn = std::get_if<wire::SynBody>(&body);
      if (syn && handshake_.consume_syn(*syn)) {
        syn_ack_due_ = true;  // our SYN-ACK was lost
      } else {
        ++stats_.packets_ignored;
        queue_reply(Reply::kError, ErrorCode::kStateInvalid, static_cast<std::uint32_t>(h.type));
      }
      return;
    }
    case wire::PacketType::kSynAck: {  // simultaneous open
      const auto* sa = std::get_if<wire::SynAckBody>(&body);
      if (!sa) break;
      if (auto r = handshake_.consume_syn_ack(*sa); !r) {
        give_up(r.error().code, true, now);
        return;
      }
      complete_handshake(now);
      return;
    }
    case wire::PacketType::kAck: {
      const auto* ack = std::get_if<wire::AckBody>(&body);
      if (!ack || !ack->has_opening || !has_flag(h, wire::flags::kSyn)) break;
      if (auto r = handshake_.consume_opening(ack->opening); !r) {
        give_up(r.error().code, true, now);
        return;
      }
      if (!handshake_resent_ && handshake_first_sent_ != kNever) {
        sender_.on_rtt_sample(now - handshake_first_sent_);
      }
      // The peer sends its opening only after it has ours.
      complete_handshake(now);
      opening_due_ = false;
      opening_confirmed_ = true;
      handshake_deadline_ = kNever;
      receiver_.request_ack();  // confirms to the peer that we have its opening
      on_acknowledgment(h, body, now);
      return;
    }
    default:
      break;
  }
  // Data or acknowledgments before the peer's opening: the peer is established
  // but our SYN-ACK or its opening was lost. Drop it and repeat the SYN-ACK,
  // at most once per minimum RTO, so the peer resends its opening.
  ++stats_.packets_ignored;
  if (syn_ack_last_sent_ == kNever || now - syn_ack_last_sent_ >= config_.rto.min) {
    syn_ack_due_ = true;
  }
}

// ESTABLISHED and every later state.
void Connection::on_packet_synchronized(const wire::Header& h, const wire::Body& body,
                                        TimePoint now) {
  switch (h.type) {
    case wire::PacketType::kSyn: {
      const auto* syn = std::get_if<wire::SynBody>(&body);
      // A late duplicate of the SYN that opened us is harmless; any other SYN
      // is a protocol error on this id (reference: ERROR STATE_INVALID).
      if (!syn || syn->commitment != handshake_.peer_commitment()) {
        queue_reply(Reply::kError, ErrorCode::kStateInvalid, static_cast<std::uint32_t>(h.type));
      }
      ++stats_.packets_ignored;
      return;
    }
    case wire::PacketType::kSynAck: {
      const auto* sa = std::get_if<wire::SynAckBody>(&body);
      if (sa && handshake_.consume_syn_ack(*sa)) {
        // The peer is still in SYN_RECEIVED: it never got our opening.
        opening_due_ = true;
      } else {
        ++stats_.packets_ignored;
        queue_reply(Reply::kError, ErrorCode::kStateInvalid, static_cast<std::uint32_t>(h.type));
      }
      return;
    }
    case wire::PacketType::kAck:
    case wire::PacketType::kData:
    case wire::PacketType::kFin:
    case wire::PacketType::kWindowUpdate:
      on_acknowledgment(h, body, now);
      return;
    default:
      // FRAGMENT, DATAGRAM and session-level types do not belong to a
      // connection (reference: ERROR STATE_INVALID in ESTABLISHED).
      ++stats_.packets_ignored;
      queue_reply(Reply::kError, ErrorCode::kStateInvalid, static_cast<std::uint32_t>(h.type));
      return;
  }
}

// ACK, DATA, FIN and WINDOW_UPDATE in a synchronized state: the acknowledgment
// first (it may ack our FIN), then the payload or FIN.
void Connection::on_acknowledgment(const wire::Header& h, const wire::Body& body, TimePoint now) {
  const auto* ack_body = std::get_if<wire::AckBody>(&body);
  if (h.type == wire::PacketType::kAck && !ack_body) {
    ++stats_.packets_ignored;
    return;
  }
  if (ack_body && ack_body->has_opening) {
    // A repeated opening: the peer has not seen an ACK from us yet.
    if (!handshake_.consume_opening(ack_body->opening)) {
      ++stats_.packets_ignored;
      return;
    }
    receiver_.request_ack();
  } else if (has_flag(h, wire::flags::kAck)) {
    // Only an established peer sends a plain acknowledgment, and only after it
    // verified our opening.
    opening_confirmed_ = true;
    if (opening_due_ || handshake_deadline_ != kNever) {
      opening_due_ = false;
      handshake_deadline_ = kNever;
    }
  }

  if (has_flag(h, wire::flags::kAck)) {
    AckInfo info;
    info.ack = h.ack;
    info.bitmap = h.sack_bitmap;
    if (ack_body) info.blocks = std::span(ack_body->sack.data(), ack_body->sack_count);
    info.packet_sequence = h.sequence;
    info.window = std::uint64_t{h.window} << peer_params_.window_scale;
    if (const auto* wu = std::get_if<wire::WindowUpdateBody>(&body)) info.window = wu->window;
    if (seq_gt(h.ack, sender_.next_seq())) {
      // RFC 793: an ACK for something never sent is answered and dropped.
      ++stats_.packets_ignored;
      receiver_.request_ack();
      return;
    }
    const AckOutcome outcome = sender_.on_ack(info, now);
    if (outcome.fin_acked) {
      switch (state_) {
        case State::kFinWait1: set_state(State::kFinWait2, now); break;
        case State::kClosing: set_state(State::kTimeWait, now); break;
        case State::kLastAck: set_state(State::kClosed, now); return;
        default: break;
      }
    }
  }

  if (h.type == wire::PacketType::kData) {
    const auto* payload = std::get_if<wire::PayloadBody>(&body);
    if (!payload || payload->bytes.empty()) {
      ++stats_.packets_ignored;
      return;
    }
    receiver_.on_data(h.sequence, payload->bytes, now);
  } else if (h.type == wire::PacketType::kFin) {
    const auto* fin = std::get_if<wire::FinBody>(&body);
    if (!fin || fin->final_sequence != h.sequence) {
      ++stats_.packets_ignored;
      return;
    }
    const auto arrival = receiver_.on_fin(h.sequence, now);
    if (state_ == State::kTimeWait && arrival == Receiver::Arrival::kDuplicate) {
      // The peer missed our ACK of its FIN: ACK again and wait anew.
      time_wait_deadline_ = now + config_.time_wait;
    }
  }
}

void Connection::complete_handshake(TimePoint now) {
  sender_.start(handshake_.send_isn(), peer_params_.initial_window);
  receiver_.start(handshake_.receive_isn(), local_wscale_);
  set_state(sender_.close_requested() ? State::kFinWait1 : State::kEstablished, now);
  push_event(EventKind::kEstablished);
  syn_due_ = false;
  syn_ack_due_ = false;
  // Until the peer shows it has our opening, repeat it (on a timer, and
  // whenever the peer repeats its SYN-ACK).
  opening_due_ = true;
  opening_confirmed_ = false;
  handshake_attempts_ = 0;
  arm_handshake_timer(now);
}

// Checks that span several packets: the peer's FIN may have become in-order
// through a retransmitted segment rather than with the FIN itself.
void Connection::after_input(TimePoint now) {
  if (!peer_fin_reported_ && receiver_.fin_received()) {
    peer_fin_reported_ = true;
    push_event(EventKind::kPeerFinished);
    switch (state_) {
      case State::kEstablished: set_state(State::kCloseWait, now); break;
      case State::kFinWait1: set_state(State::kClosing, now); break;
      case State::kFinWait2: set_state(State::kTimeWait, now); break;
      default: break;
    }
  }
}

// ---- the application side ------------------------------------------------------------------

std::size_t Connection::send_capacity() const {
  return state_ == State::kClosed ? 0 : sender_.capacity();
}

std::size_t Connection::send(Bytes data) {
  if (state_ == State::kClosed) return 0;
  return sender_.write(data);
}

std::size_t Connection::recv(MutableBytes out) {
  const std::size_t n = receiver_.read(out);
  // The last bytes of a stream that is over: its storage goes now, not after
  // TIME_WAIT.
  if (n > 0 && (state_ == State::kTimeWait || state_ == State::kClosed)) release_idle_buffers();
  return n;
}

void Connection::release_idle_buffers() {
  sender_.release_idle_buffers();
  receiver_.release_idle_buffers();
}

void Connection::shutdown_write() {
  if (state_ == State::kClosed || sender_.close_requested()) return;
  sender_.close();
  if (state_ == State::kEstablished) set_state(State::kFinWait1, 0);
  if (state_ == State::kCloseWait) set_state(State::kLastAck, 0);
}

void Connection::reset(ErrorCode reason) {
  if (state_ == State::kClosed) return;
  queue_reply(Reply::kRst, reason, 0);
  set_state(State::kClosed, 0);
}

void Connection::give_up(ErrorCode reason, bool send_rst, TimePoint now) {
  if (send_rst) queue_reply(Reply::kRst, reason, 0);
  push_event(EventKind::kFailed, reason);
  set_state(State::kClosed, now);
}

void Connection::queue_reply(Reply kind, ErrorCode code, std::uint32_t details) {
  // One pending reply at most; an RST outranks an ERROR.
  if (reply_ == Reply::kRst && kind == Reply::kError) return;
  reply_ = kind;
  reply_code_ = code;
  reply_details_ = details & 0xFFFFFF;
}

// ---- transitions and events ---------------------------------------------------------------------

void Connection::set_state(State next, TimePoint now) {
  if (next == state_) return;
  // The transitions of RFC 793 §3.2, plus CLOSED from anywhere (RST, failure).
  [[maybe_unused]] const bool allowed = [&] {
    switch (next) {
      case State::kClosed: return true;
      case State::kSynReceived: return state_ == State::kSynSent;
      case State::kEstablished:
        return state_ == State::kSynSent || state_ == State::kSynReceived;
      case State::kFinWait1:
        return state_ == State::kEstablished || state_ == State::kSynSent ||
               state_ == State::kSynReceived;
      case State::kFinWait2: return state_ == State::kFinWait1;
      case State::kCloseWait: return state_ == State::kEstablished;
      case State::kClosing: return state_ == State::kFinWait1;
      case State::kLastAck: return state_ == State::kCloseWait;
      case State::kTimeWait: return state_ == State::kFinWait2 || state_ == State::kClosing;
      case State::kSynSent: return false;
    }
    return false;
  }();
  assert(allowed);
  state_ = next;
  if (next == State::kTimeWait) time_wait_deadline_ = now + config_.time_wait;
  if (next == State::kTimeWait || next == State::kClosed) release_idle_buffers();
  if (next == State::kClosed) {
    handshake_deadline_ = kNever;
    time_wait_deadline_ = kNever;
    syn_due_ = syn_ack_due_ = opening_due_ = false;
  }
}

void Connection::push_event(EventKind kind, ErrorCode reason) {
  if (event_count_ == kEventCapacity) return;  // cannot happen: at most four events precede kClosed
  events_[(event_head_ + event_count_) % kEventCapacity] = Event{kind, reason};
  ++event_count_;
}

std::optional<Event> Connection::poll_event() {
  if (event_count_ > 0) {
    const Event e = events_[event_head_];
    event_head_ = (event_head_ + 1) % kEventCapacity;
    --event_count_;
    return e;
  }
  // kClosed comes last, once a pending RST has been handed out.
  if (state_ == State::kClosed && reply_ == Reply::kNone && !closed_reported_) {
    closed_reported_ = true;
    return Event{EventKind::kClosed, ErrorCode::kSuccess};
  }
  return std::nullopt;
}

// ---- timers -----------------------------------------------------------------------------------------

bool Connection::opening() const {
  return state_ == State::kSynSent || state_ == State::kSynReceived;
}

void Connection::arm_handshake_timer(TimePoint now) {
  Duration interval = sender_.rtt().rto();
  for (unsigned i = 0; i < handshake_attempts_ && interval < config_.rto.max; ++i) interval *= 2;
  handshake_deadline_ = now + std::min(interval, config_.rto.max);
  // The reference's CONNECTION_TIMEOUT bounds the whole open.
  if (opening()) handshake_deadline_ = std::min(handshake_deadline_, created_ + config_.connect_timeout);
}

void Connection::on_handshake_timer(TimePoint now) {
  if (handshake_attempts_ >= config_.max_retransmissions ||
      (opening() && now >= created_ + config_.connect_timeout)) {
    // SYN or SYN-ACK unanswered: nobody to tell. An unconfirmed opening: the
    // peer exists but never completed, so reset it.
    give_up(ErrorCode::kTimeout, state_ != State::kSynSent && state_ != State::kSynReceived, now);
    return;
  }
  ++handshake_attempts_;
  handshake_resent_ = true;
  switch (state_) {
    case State::kSynSent: syn_due_ = true; break;
    case State::kSynReceived: syn_ack_due_ = true; break;
    default: opening_due_ = !opening_confirmed_; break;
  }
  if (state_ == State::kSynSent || state_ == State::kSynReceived || !opening_confirmed_) {
    arm_handshake_timer(now);
  } else {
    handshake_deadline_ = kNever;
  }
}

TimePoint Connection::next_expiry() const {
  if (state_ == State::kClosed) return kNever;
  TimePoint t = std::min(handshake_deadline_, time_wait_deadline_);
  if (sender_.started()) t = std::min(t, sender_.next_expiry());
  if (receiver_.started()) t = std::min(t, receiver_.ack_deadline());
  return std::min(t, idle_deadline_);
}

bool Connection::buffers_idle() const {
  if (!sender_.started() || !receiver_.started()) return false;
  if (sender_.buffered() != 0 || receiver_.readable() != 0) return false;
  return sender_.idle_storage() || receiver_.idle_storage();
}

void Connection::watch_idle(TimePoint now) {
  const std::uint64_t mark = receiver_.consumed() + sender_.stats().bytes_delivered;
  if (mark != idle_mark_ || !buffers_idle()) {
    idle_mark_ = mark;
    idle_deadline_ = kNever;
  }
  if (idle_deadline_ == kNever && buffers_idle()) idle_deadline_ = now + config_.idle_release;
}

void Connection::on_expiry(TimePoint now) {
  if (state_ == State::kClosed) return;
  if (now >= time_wait_deadline_) {
    time_wait_served_ = true;
    set_state(State::kClosed, now);
    return;
  }
  if (now >= handshake_deadline_) {
    on_handshake_timer(now);
    if (state_ == State::kClosed) return;
  }
  if (now >= idle_deadline_) {
    // Nothing moved for idle_release: the storage goes back (to the
    // allocator and the memory budget) until traffic needs it again.
    idle_deadline_ = kNever;
    if (buffers_idle()) release_idle_buffers();
  }
  if (sender_.started() && now >= sender_.next_expiry()) {
    if (sender_.on_expiry(now) == Sender::TimerOutcome::kFailed) {
      give_up(ErrorCode::kTimeout, true, now);
    }
  }
}

bool Connection::on_path_restored(TimePoint now) {
  if (state_ == State::kClosed || !sender_.started()) return false;
  return sender_.on_path_restored(now);
}

// ---- inspection --------------------------------------------------------------------------------------

const ConnectionStats& Connection::stats() const {
  stats_.sender = sender_.stats();
  stats_.receiver = receiver_.stats();
  return stats_;
}

MemoryUsage Connection::memory() const {
  return MemoryUsage{sizeof(Connection), sender_.allocated() + receiver_.allocated()};
}

bool Connection::check_invariants() const {
  if (!sender_.check_invariants() || !receiver_.check_invariants()) return false;
  const bool synchronized = state_ != State::kSynSent && state_ != State::kSynReceived;
  if (synchronized && state_ != State::kClosed &&
      (!sender_.started() || !receiver_.started() || !handshake_.complete())) {
    return false;
  }
  switch (state_) {
    case State::kFinWait1:
    case State::kLastAck:
    case State::kClosing:
      if (!sender_.close_requested()) return false;
      break;
    case State::kFinWait2:
    case State::kTimeWait:
      if (!sender_.fin_acked()) return false;
      break;
    default:
      break;
  }
  const bool peer_closed_state = state_ == State::kCloseWait || state_ == State::kLastAck ||
                                 state_ == State::kClosing || state_ == State::kTimeWait;
  if (peer_closed_state && !receiver_.fin_received()) return false;
  if (state_ == State::kTimeWait && time_wait_deadline_ == kNever) return false;
  if (event_count_ > kEventCapacity) return false;
  if (sender_.buffered() > config_.send_buffer) return false;
  if (receiver_.readable() > config_.receive_buffer) return false;
  return true;
}

}  // namespace buckwild::conn

namespace buckwild::conn {

// ---- output ------------------------------------------------------------------------------------------

bool Connection::poll_transmit(TimePoint now, wire::Header& h, MutableBytes body_out,
                               std::size_t& body_len) {
  assert(body_out.size() >= std::max(config_.mss, kMaxControlBody));
  h = wire::Header{};
  h.connection_id = config_.id;
  body_len = 0;
  bool wrote = false;
  // Autotuning measures per round trip: the sender's RTT (the handshake gave
  // the first sample), or, where the handshake was retransmitted and no data
  // of ours has been acknowledged since, the receiver's own estimate. Without
  // it a connection that only receives would keep its initial window.
  if (receiver_.started()) {
    receiver_.tune_window(now, sender_.rtt().has_sample() ? sender_.rtt().smoothed()
                                                           : receiver_.rtt_estimate());
  }
  watch_idle(now);
  if (reply_ != Reply::kNone) {
    write_reply(h, body_out, body_len);
    wrote = true;
  } else if (state_ == State::kClosed) {
    return false;
  } else if (state_ == State::kSynSent || state_ == State::kSynReceived) {
    if (state_ == State::kSynSent ? syn_due_ : syn_ack_due_) {
      if (state_ == State::kSynSent) {
        write_syn(h, body_out, body_len);
      } else {
        write_syn_ack(h, body_out, body_len);
        syn_ack_last_sent_ = now;
      }
      // Karn's rule for the handshake's RTT sample.
      if (handshake_first_sent_ != kNever) handshake_resent_ = true;
      if (handshake_first_sent_ == kNever) handshake_first_sent_ = now;
      wrote = true;
    }
  } else if (opening_due_) {
    write_ack(h, body_out, body_len, true);
    opening_due_ = false;
    wrote = true;
  } else if (auto t = sender_.next_transmission(now)) {
    write_segment(*t, h, body_out, body_len);
    wrote = true;
  } else if (receiver_.window_update_due() && !receiver_.fin_received()) {
    write_window_update(h, body_out, body_len);
    wrote = true;
  } else if (receiver_.ack_due(now)) {
    write_ack(h, body_out, body_len, false);
    wrote = true;
  }
  if (wrote) ++stats_.packets_sent;
  return wrote;
}

void Connection::write_syn(wire::Header& h, MutableBytes out, std::size_t& len) {
  h.type = wire::PacketType::kSyn;
  h.flags = wire::flags::kSyn;
  // Windows in SYN and SYN-ACK are unscaled (the scale is not agreed yet) and
  // only informative: the body's initial window is authoritative.
  h.window = static_cast<std::uint16_t>(std::min<std::size_t>(receiver_.receive_space(), 0xFFFF));
  wire::SynBody syn = handshake_.create_syn(local_params());
  syn.target = config_.target;
  auto n = wire::write_body(h, wire::Body{syn}, out);
  assert(n);
  len = n.value_or(0);
  syn_due_ = false;
}

void Connection::write_syn_ack(wire::Header& h, MutableBytes out, std::size_t& len) {
  h.type = wire::PacketType::kSynAck;
  h.flags = wire::flags::kSyn | wire::flags::kAck;
  h.window = static_cast<std::uint16_t>(std::min<std::size_t>(receiver_.receive_space(), 0xFFFF));
  auto n = wire::write_body(h, wire::Body{handshake_.create_syn_ack(local_params())}, out);
  assert(n);
  len = n.value_or(0);
  syn_ack_due_ = false;
}

void Connection::fill_ack_fields(wire::Header& h) {
  h.flags |= wire::flags::kAck;
  h.ack = receiver_.ack();
  h.sack_bitmap = receiver_.sack_bitmap();
  h.window = receiver_.take_window_field();
}

void Connection::write_ack(wire::Header& h, MutableBytes out, std::size_t& len,
                           bool with_opening) {
  wire::AckBody body = with_opening ? handshake_.create_opening_ack() : wire::AckBody{};
  h.type = wire::PacketType::kAck;
  if (with_opening) h.flags |= wire::flags::kSyn;
  h.sequence = sender_.next_seq();
  fill_ack_fields(h);
  body.sack_count = static_cast<std::uint8_t>(receiver_.sack_blocks(body.sack));
  auto n = wire::write_body(h, wire::Body{body}, out);
  assert(n);
  len = n.value_or(0);
  receiver_.on_ack_sent(true);
}

void Connection::write_segment(const Transmission& t, wire::Header& h, MutableBytes out,
                               std::size_t& len) {
  h.sequence = t.seq;
  fill_ack_fields(h);
  if (t.fin) {
    h.type = wire::PacketType::kFin;
    h.flags |= wire::flags::kFin;
    auto n = wire::write_body(h, wire::Body{wire::FinBody{t.seq}}, out);
    assert(n);
    len = n.value_or(0);
  } else {
    h.type = wire::PacketType::kData;
    // PSH marks the segment that empties what the application handed in.
    if (!t.retransmission && sender_.unsent_bytes() == 0) h.flags |= wire::flags::kPsh;
    sender_.copy_payload(t, out);
    len = t.length;
  }
  receiver_.on_ack_sent(false);
}

void Connection::write_window_update(wire::Header& h, MutableBytes out, std::size_t& len) {
  h.type = wire::PacketType::kWindowUpdate;
  h.sequence = sender_.next_seq();
  fill_ack_fields(h);
  auto n = wire::write_body(h, wire::Body{wire::WindowUpdateBody{receiver_.take_window_bytes()}}, out);
  assert(n);
  len = n.value_or(0);
  receiver_.on_ack_sent(false);
}

void Connection::write_reply(wire::Header& h, MutableBytes out, std::size_t& len) {
  if (sender_.started()) h.sequence = sender_.next_seq();
  if (receiver_.started()) {
    h.flags |= wire::flags::kAck;
    h.ack = receiver_.ack();
  }
  Result<std::size_t> n = 0;
  if (reply_ == Reply::kRst) {
    h.type = wire::PacketType::kRst;
    h.flags |= wire::flags::kRst;
    n = wire::write_body(h, wire::Body{wire::RstBody{static_cast<std::uint8_t>(reply_code_)}}, out);
  } else {
    h.type = wire::PacketType::kError;
    wire::ErrorBody e;
    e.code = static_cast<std::uint8_t>(reply_code_);
    e.details = reply_details_;
    n = wire::write_body(h, wire::Body{e}, out);
  }
  assert(n);
  len = n.value_or(0);
  reply_ = Reply::kNone;
}

}  // namespace buckwild::conn
