// Any sequence of packets, timer expiries and application calls fed to a
// connection: no crash, no sanitizer report, and Connection::check_invariants()
// holds after every step.
//
// The input's first byte picks the starting point: a connection in SYN_SENT, a
// responder made from a fuzzed SYN, or one side of a pair that completed a real
// handshake (as initiator or responder), so that fuzzed packets meet every
// state. The rest is a list of operations:
//   raw packet        a datagram for wire::decode_packet (as the session would
//                     hand it over after opening), redirected to the connection
//   shaped packet     type, flags, sequence and ack relative to the connection's
//                     own counters, SACK bitmap and blocks, payload: reaches the
//                     in-window paths that random bytes would miss
//   time              advance the clock, run on_expiry() when due
//   send / recv / shutdown_write / reset
// and every step ends by draining poll_transmit() and poll_event().
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "fuzz_input.h"
#include "core/conn/connection.h"
#include "core/crypto/random.h"
#include "core/wire/codec.h"

using namespace buckwild;

namespace {

using buckwild::fuzz::Input;

constexpr std::uint16_t kId = 9;

conn::ConnectionConfig config() {
  conn::ConnectionConfig c;
  c.id = kId;
  c.mss = 512;
  c.send_buffer = 64 * 1024;
  c.receive_buffer = 32 * 1024;
  c.time_wait = seconds(2);
  return c;
}

void check(const conn::Connection& c) {
  if (!c.check_invariants()) std::abort();
}

// Moves every packet from `from` to `to` (both real) until both are quiet.
void exchange(conn::Connection& a, conn::Connection& b, TimePoint now) {
  std::vector<std::uint8_t> body(wire::kMaxBodySize);
  for (int round = 0; round < 8; ++round) {
    bool any = false;
    for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
      wire::Header h;
      std::size_t len = 0;
      while (from->poll_transmit(now, h, body, len)) {
        any = true;
        h.session_id = 1;
        auto parsed = wire::parse_body(h, Bytes(body).first(len));
        if (!parsed) std::abort();  // the connection wrote a body its own codec rejects
        to->on_packet(h, *parsed, now);
      }
    }
    if (!any) return;
  }
}

std::optional<conn::Connection> start(Input& in, crypto::RandomSource& rng, TimePoint now) {
  const std::uint8_t mode = in.u8() % 4;
  if (mode == 0) {
    auto c = conn::Connection::connect(config(), rng, now);
    if (!c) return std::nullopt;
    return std::move(*c);
  }
  if (mode == 1) {
    wire::SynBody syn;
    const Bytes b = in.bytes(32);
    std::copy(b.begin(), b.end(), syn.commitment.begin());
    syn.params.initial_window = in.u32();
    syn.params.window_scale = static_cast<std::uint8_t>(in.u8() % (wire::kMaxWindowScale + 1));
    auto c = conn::Connection::accept(config(), rng, syn, now);
    if (!c) return std::nullopt;
    return std::move(*c);
  }
  // A real handshake; keep one side.
  auto a = conn::Connection::connect(config(), rng, now);
  if (!a) return std::nullopt;
  std::vector<std::uint8_t> body(wire::kMaxBodySize);
  wire::Header h;
  std::size_t len = 0;
  if (!a->poll_transmit(now, h, body, len)) std::abort();
  auto syn = wire::parse_body(h, Bytes(body).first(len));
  if (!syn) std::abort();
  auto b = conn::Connection::accept(config(), rng, std::get<wire::SynBody>(*syn), now);
  if (!b) return std::nullopt;
  exchange(*a, *b, now);
  if (a->state() != conn::State::kEstablished || b->state() != conn::State::kEstablished) {
    std::abort();  // a clean handshake must complete
  }
  return mode == 2 ? std::move(*a) : std::move(*b);
}

// A packet shaped from the input around the connection's current numbers.
void shaped_packet(Input& in, conn::Connection& c, TimePoint now) {
  static constexpr wire::PacketType kTypes[] = {
      wire::PacketType::kAck,  wire::PacketType::kData, wire::PacketType::kFin,
      wire::PacketType::kWindowUpdate, wire::PacketType::kSyn, wire::PacketType::kSynAck,
      wire::PacketType::kRst,  wire::PacketType::kFragment, wire::PacketType::kError,
  };
  wire::Header h;
  h.session_id = 1;
  h.connection_id = kId;
  h.type = kTypes[in.u8() % std::size(kTypes)];
  h.flags = static_cast<std::uint8_t>(in.u8() & 0x3F);
  h.window = in.u16();
  const auto seq_delta = static_cast<std::int16_t>(in.u16());
  const auto ack_delta = static_cast<std::int16_t>(in.u16());
  h.sequence = c.receiver().ack() + static_cast<std::uint32_t>(static_cast<std::int32_t>(seq_delta));
  h.ack = c.sender().first_unacked() + static_cast<std::uint32_t>(static_cast<std::int32_t>(ack_delta));
  h.sack_bitmap = in.u32();
  if (h.type == wire::PacketType::kFragment) {
    h.fragment_total = 2;
  }

  wire::Body body;
  switch (h.type) {
    case wire::PacketType::kData:
    case wire::PacketType::kFragment: {
      Bytes p = in.bytes(1 + in.u16() % 1200);
      if (p.empty()) return;
      body = wire::PayloadBody{p};
      break;
    }
    case wire::PacketType::kAck: {
      wire::AckBody a;
      a.has_opening = (h.flags & wire::flags::kSyn) != 0;
      a.sack_count = static_cast<std::uint8_t>(in.u8() % (wire::kMaxSackBlocks + 1));
      for (std::size_t i = 0; i < a.sack_count; ++i) {
        const conn::Seq start = c.sender().first_unacked() + in.u16();
        a.sack[i] = wire::SackBlock{start, start + 1 + in.u8()};
      }
      body = a;
      break;
    }
    case wire::PacketType::kFin: body = wire::FinBody{in.u8() % 2 ? h.sequence : in.u32()}; break;
    case wire::PacketType::kWindowUpdate: body = wire::WindowUpdateBody{in.u32()}; break;
    case wire::PacketType::kSyn: body = wire::SynBody{}; break;
    case wire::PacketType::kSynAck: body = wire::SynAckBody{}; break;
    case wire::PacketType::kRst: body = wire::RstBody{static_cast<std::uint8_t>(in.u8() % 0x18)}; break;
    default: body = wire::ErrorBody{}; break;
  }
  c.on_packet(h, body, now);
}


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  crypto::DeterministicRandom rng(size);
  TimePoint now = seconds(1);
  auto made = start(in, rng, now);
  if (!made) return 0;
  conn::Connection& c = *made;
  check(c);

  std::vector<std::uint8_t> body(wire::kMaxBodySize);
  std::vector<std::uint8_t> scratch(70000);
  for (int step = 0; step < 4096 && !in.empty(); ++step) {
    switch (in.u8() % 8) {
      case 0: {  // raw datagram, as decoded by the session
        const Bytes d = in.bytes(in.u16() % 1600);
        auto packet = wire::decode_packet(d);
        if (!packet) break;
        packet->header.connection_id = kId;
        c.on_packet(packet->header, packet->body, now);
        break;
      }
      case 1:
      case 2:
        shaped_packet(in, c, now);
        break;
      case 3: {  // time passes
        now += static_cast<Duration>(in.u16()) * 100;
        if (in.u8() % 4 == 0 && c.next_expiry() != kNever) now = std::max(now, c.next_expiry());
        if (now >= c.next_expiry()) c.on_expiry(now);
        break;
      }
      case 4: {
        const std::size_t n = in.u16() % scratch.size();
        std::fill_n(scratch.begin(), n, static_cast<std::uint8_t>(step));
        if (c.send(Bytes(scratch).first(n)) > c.send_capacity() + n) std::abort();
        break;
      }
      case 5: {
        const std::size_t want = in.u16() % scratch.size();
        const std::size_t had = c.readable();
        const std::size_t got = c.recv(MutableBytes(scratch).first(want));
        if (got > want || got > had) std::abort();
        break;
      }
      case 6:
        c.shutdown_write();
        break;
      default:
        if (in.u8() % 16 == 0) c.reset(static_cast<ErrorCode>(in.u8() % 0x18));
        break;
    }
    check(c);
    // Drain output: every packet must encode with the real codec.
    wire::Header h;
    std::size_t len = 0;
    int packets = 0;
    while (c.poll_transmit(now, h, body, len)) {
      h.session_id = 1;
      if (!wire::parse_body(h, Bytes(body).first(len))) std::abort();
      if (h.connection_id != kId || len > body.size()) std::abort();
      if (++packets > 100000) std::abort();  // poll_transmit must run dry
    }
    while (c.poll_event()) {
    }
    check(c);
    if (c.next_expiry() < now && c.state() != conn::State::kClosed) {
      // Past deadlines are allowed only until on_expiry runs; run it now.
      c.on_expiry(now);
      check(c);
    }
  }
  return 0;
}
