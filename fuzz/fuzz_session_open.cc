// Session::open against authenticated packets with fuzzed contents: heartbeats
// (probes, delay negotiation), time-sync requests and responses, and every
// other type, sealed by the genuine peer session so that they get past packet
// protection and reach the body handling; plus replays, tampering, raw bytes,
// the passing of time (probes, suspicion, death) and clock steps.
//
// Each input starts from a fresh session pair (a real discovery exchange) and
// is a list of operations; byte 0 of each: bit 0 which side receives, bits 1-4
// the operation.
//
// Checked: nothing crashes; a datagram opens at most once (replays fail);
// tampered or unauthenticated bytes never open; an opened body lies inside
// its datagram; the delay allowance stays within 1..16; ports stay in the
// hopping range; a dead session stays dead.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fuzz_input.h"
#include "core/session/session.h"
#include "support/session_pair.h"

using namespace buckwild;

namespace {

constexpr std::int64_t kStartUnix = 20'417ll * 86'400'000 + 52'225'123;

using buckwild::fuzz::Input;

struct Side {
  session::Session* s;
  std::int64_t skew_ms;  // this side's Unix clock minus the shared one
};

void check(const session::Session& s) {
  if (s.delay_allowance() < 1 || s.delay_allowance() > 16) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  TimePoint now = seconds(1000);
  std::int64_t unix_ms = kStartUnix;
  session::SessionConfig config;
  config.fixed_delay_allowance = in.u8() % 4 == 0 ? 1 + in.u8() % 16 : 0;
  auto pair = testing::make_session_pair(unix_ms, now, 0, config);
  Side sides[2] = {{pair.initiator.get(), 0}, {pair.responder.get(), 0}};
  std::vector<std::uint8_t> buf(wire::kMaxDatagramSize), last;
  std::vector<std::uint8_t> copy;
  int last_to = 0;           // the side `last` was sealed for
  bool last_opened = false;  // ... and whether that side opened it

  for (int step = 0; step < 64 && !in.empty(); ++step) {
    const std::uint8_t op = in.u8();
    Side& to = sides[op & 1];
    Side& from = sides[(op & 1) ^ 1];
    const std::int64_t to_unix = unix_ms + to.skew_ms;
    const std::int64_t from_unix = unix_ms + from.skew_ms;
    Result<std::size_t> sealed = std::unexpected(Error{});
    switch ((op >> 1) % 12) {
      case 0: {  // a packet of any type with a fuzzed header and body
        wire::Header h;
        h.type = static_cast<wire::PacketType>(in.u8());
        h.flags = in.u8();
        h.connection_id = static_cast<std::uint16_t>(in.u16() % 8);
        h.window = in.u16();
        h.sequence = in.u32();
        h.ack = in.u32();
        h.fragment_id = in.u16();
        h.fragment_index = in.u16();
        h.fragment_total = in.u16();
        h.sack_bitmap = in.u32();
        const std::size_t len = std::min<std::size_t>(in.u16() % 512, wire::kMaxBodySize);
        Bytes body = in.bytes(len);
        std::fill(buf.begin(), buf.end(), 0);
        std::copy(body.begin(), body.end(), buf.begin() + wire::kHeaderSize);
        h.payload_length = static_cast<std::uint16_t>(body.size());
        sealed = from.s->seal(h, buf, body.size(), from_unix, now);
        break;
      }
      case 1:
        sealed = from.s->make_heartbeat(buf, (op & 0x80) != 0, from_unix, now);
        break;
      case 2:
        sealed = from.s->make_path_keepalive(buf, from_unix, now);
        break;
      case 3:
        sealed = from.s->make_time_sync_request(buf, in.u32(), from_unix, now, in.u32());
        break;
      case 4: {  // a heartbeat or time-sync body of fuzzed content
        wire::Header h;
        const std::uint8_t t = in.u8() % 3;
        h.type = t == 0 ? wire::PacketType::kHeartbeat
                        : (t == 1 ? wire::PacketType::kTimeSyncRequest : wire::PacketType::kTimeSyncResponse);
        h.flags = in.u8();
        Bytes body = in.bytes(in.u8() % 64);
        std::fill(buf.begin(), buf.end(), 0);
        std::copy(body.begin(), body.end(), buf.begin() + wire::kHeaderSize);
        h.payload_length = static_cast<std::uint16_t>(body.size());
        sealed = from.s->seal(h, buf, body.size(), from_unix, now);
        break;
      }
      case 5: {  // the last datagram again: a replay never opens, nor a reflection
        if (last.empty()) break;
        copy = last;
        const bool opened = to.s->open(copy, to_unix, now).has_value();
        if (opened && ((op & 1) != last_to || last_opened)) {
          std::fprintf(stderr, "%s opened\n", (op & 1) != last_to ? "a reflected datagram" : "a replay");
          std::abort();
        }
        if (opened) last_opened = true;
        break;
      }
      case 6: {  // the last datagram with bytes changed
        if (last.empty()) break;
        copy = last;
        const std::uint8_t n = static_cast<std::uint8_t>(1 + in.u8() % 4);
        for (int i = 0; i < n; ++i) {
          const std::uint16_t at = in.u16();
          copy[at % copy.size()] ^= static_cast<std::uint8_t>(in.u8() | 1);
        }
        if (to.s->open(copy, to_unix, now)) std::abort();
        break;
      }
      case 7: {  // raw bytes with the session's id, or none
        Bytes raw = in.bytes(in.u16() % 1500);
        copy.assign(raw.begin(), raw.end());
        if (copy.size() >= 12 && (op & 0x80)) {
          const std::uint64_t id = to.s->id();
          for (int i = 0; i < 8; ++i) copy[4 + i] = static_cast<std::uint8_t>(id >> (56 - 8 * i));
        }
        if (to.s->open(copy, to_unix, now)) std::abort();
        break;
      }
      case 8: {  // time passes; timers of both sides run
        const std::uint32_t ms = in.u16() * (1u + (in.u8() & 3) * 100);
        now += milliseconds(ms);
        unix_ms += ms;
        for (Side& s : sides) {
          const bool was_dead = s.s->dead();
          if (now >= s.s->next_expiry()) (void)s.s->on_expiry(now);
          if (was_dead && !s.s->dead()) std::abort();
        }
        break;
      }
      case 9:  // a side's clock is stepped (within the allowance or beyond)
        to.skew_ms += static_cast<std::int16_t>(in.u16());
        to.s->on_clock_step(static_cast<std::int16_t>(in.u16()), now);
        break;
      case 10: {
        std::vector<std::uint16_t> ports;
        to.s->listen_ports(to_unix, static_cast<std::uint16_t>(in.u16() % 4096), ports);
        ports.push_back(to.s->send_port(to_unix, static_cast<std::uint16_t>(in.u16() % 4096)));
        for (std::uint16_t p : ports)
          if (p < wire::kMinPort) std::abort();
        break;
      }
      default: {  // a DATAGRAM carrying fuzzed bytes
        Bytes ip = in.bytes(in.u16() % 1500);
        std::copy(ip.begin(), ip.end(), buf.begin() + wire::kHeaderSize);
        sealed = from.s->seal_datagram(buf, ip.size(), from_unix, now);
        break;
      }
    }
    if (sealed) {
      last.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*sealed));
      last_to = op & 1;
      copy = last;
      auto r = to.s->open(copy, to_unix, now);
      last_opened = r.has_value();
      if (r) {
        if (r->body.data() < copy.data() || r->body.data() + r->body.size() > copy.data() + copy.size())
          std::abort();
        if (r->answer_time_sync) {
          std::vector<std::uint8_t> answer(wire::kMaxDatagramSize);
          auto n = to.s->make_time_sync_response(answer, *r->answer_time_sync, to_unix, now);
          if (n) {
            answer.resize(*n);
            (void)from.s->open(answer, from_unix, now);
          }
        }
        if (r->answer_heartbeat) {
          std::vector<std::uint8_t> answer(wire::kMaxDatagramSize);
          auto n = to.s->make_heartbeat(answer, false, to_unix, now);
          if (n) {
            answer.resize(*n);
            (void)from.s->open(answer, from_unix, now);
          }
        }
        copy = last;
        if (to.s->open(copy, to_unix, now)) std::abort();  // the same datagram again
      }
    }
    check(*sides[0].s);
    check(*sides[1].s);
  }
  return 0;
}
