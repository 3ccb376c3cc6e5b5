// Datagrams to a discovery responder from many sources and at varying times,
// against the limits the daemon runs it with (responder_limits of a default
// [security] section, not a wide-open test limit).
//
// Input: byte 0 picks the source (bit 7: IPv6; bits 0-5: one of 64 addresses;
// bit 6: a second port), byte 1 the mode, bytes 2-3 how many milliseconds
// passed since the previous input (big endian); the rest is
//   mode even: a datagram, given to the responder as DISCOVERY and as CONFIRM;
//   mode odd:  (position, xor) pairs applied to the CONFIRM of a genuine
//              exchange with an initiator that holds one of the responder's
//              PSKs (none: the CONFIRM is sent as is), then sent twice.
// Inputs of 4 bytes or fewer are a datagram from the first source.
//
// Nothing may crash; every answer fits one 1232-byte datagram; RESPONSEs and
// sessions stay within the global work budgets (rate · time + burst); a CONFIRM
// tampered with never establishes a session, an untouched one establishes the
// session the initiator derived, and the same CONFIRM never establishes twice.
#include <cstdlib>
#include <memory>

#include "core/crypto/random.h"
#include "core/discovery/features.h"
#include "core/discovery/initiator.h"
#include "core/discovery/responder.h"
#include "daemon/tunnel/responder_limits.h"

using namespace buckwild;

namespace {

// Unix time whose ms-of-day matches the seeds' header timestamp (14:30:25.123).
constexpr std::int64_t kNowUnix = 20'417ll * 86'400'000 + 52'225'123;

crypto::SecretBytes psk_bytes(std::uint32_t i) {
  crypto::DeterministicRandom rng(100 + i);
  return crypto::SecretBytes::random(32, rng);
}

discovery::PskSet make_psks(std::uint32_t first, std::uint32_t count) {
  std::vector<discovery::Psk> v;
  for (std::uint32_t i = first; i < first + count; ++i) v.push_back({"k" + std::to_string(i), psk_bytes(i)});
  return discovery::PskSet::create(std::move(v)).value();
}

Endpoint source(std::uint8_t selector) {
  const std::uint16_t port = (selector & 0x40) ? 40001 : 40000;
  if ((selector & 0x80) == 0) return Endpoint::ipv4(0x0AC80000u + (selector & 0x3f), port);
  Endpoint e;
  e.address = {0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(selector & 0x3f)};
  e.port = port;
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const discovery::ResponderLimits limits = daemon::responder_limits(daemon::SecurityConfig{});
  static discovery::PskSet psks = make_psks(0, 8);
  static discovery::PskSet initiator_psks = make_psks(3, 1);  // k3, which the responder holds
  static crypto::DeterministicRandom rng(7), initiator_rng(8);
  static discovery::Responder responder(psks, discovery::ResponderPolicy{}, limits, rng, 0);
  static TimePoint now = 0;
  static std::uint64_t responses = 0, sessions = 0;

  std::uint8_t selector = 0, mode = 0;
  std::uint32_t elapsed_ms = 1;
  Bytes in(data, size);
  if (size > 4) {
    selector = data[0];
    mode = data[1];
    elapsed_ms = static_cast<std::uint32_t>(data[2] << 8 | data[3]);
    in = Bytes(data + 4, size - 4);
  }
  now += milliseconds(elapsed_ms);
  // The Unix clock moves with the monotonic one, within the ±30 s the seeds'
  // timestamps stay fresh for.
  const std::int64_t unix_ms = kNowUnix + (now / milliseconds(1)) % 20'000;
  const Endpoint from = source(selector);

  if ((mode & 1) == 0) {
    if (auto response = responder.consume_discovery(in, from, unix_ms, now)) {
      ++responses;
      if (response->size() > wire::kMaxDiscoveryDatagram) std::abort();
    }
    if (responder.consume_confirm(in, from, unix_ms, now)) ++sessions;
  } else {
    discovery::Initiator initiator(initiator_psks,
                                   discovery::feature::kChaCha20Poly1305 |
                                       discovery::feature::kForwardSecrecy | discovery::feature::kDatagram,
                                   initiator_rng);
    auto response = responder.consume_discovery(initiator.start(unix_ms, now), from, unix_ms, now);
    if (response) {
      ++responses;
      if (response->size() > wire::kMaxDiscoveryDatagram) std::abort();
      auto outcome = initiator.consume_response(*response, unix_ms, now);
      if (!outcome) std::abort();  // a genuine RESPONSE must verify
      std::vector<std::uint8_t> confirm = outcome->confirm;
      const std::vector<std::uint8_t> genuine = confirm;
      for (std::size_t i = 0; i + 1 < in.size(); i += 2) confirm[in[i] % confirm.size()] ^= in[i + 1];
      const bool tampered = confirm != genuine;
      auto est = responder.consume_confirm(confirm, from, unix_ms, now);
      if (est) {
        ++sessions;
        if (tampered || est->session_id != outcome->session.session_id) std::abort();
      }
      if (responder.consume_confirm(confirm, from, unix_ms, now)) std::abort();  // a replay
    }
  }
  // Each DISCOVERY answered and each session made took a unit of its budget.
  const double seconds_passed = static_cast<double>(now) / 1e6;
  const double most = limits.work_per_second * seconds_passed + std::max(1.0, limits.work_per_second / 10) + 1;
  if (static_cast<double>(responses) > most || static_cast<double>(sessions) > most) std::abort();
  return 0;
}
