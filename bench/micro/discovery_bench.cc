// The cost of discovery: what a responder spends per DISCOVERY and per
// handshake with 256 PSKs on each side (issue #3 target: ≤ 1 ms per handshake).
#include <benchmark/benchmark.h>

#include "core/crypto/random.h"
#include "core/discovery/features.h"
#include "core/discovery/initiator.h"
#include "core/discovery/responder.h"

namespace {

using namespace buckwild;
using namespace buckwild::discovery;

constexpr std::int64_t kUnix = 1'764'080'000'000;
const Endpoint kFrom = Endpoint::ipv4(0x0AC80001, 40000);
constexpr std::uint16_t kOffered = feature::kChaCha20Poly1305 | feature::kForwardSecrecy;
const ResponderLimits kUnlimited{1e12, 1e12, 1e12, 64};

// 256 PSKs; the one at `shared_at` is common to both sides, the others differ by `base`.
PskSet psks(std::uint64_t base, std::size_t shared_at) {
  std::vector<Psk> v;
  for (std::size_t i = 0; i < 256; ++i) {
    crypto::DeterministicRandom rng(i == shared_at ? 1 : base + i);
    v.push_back({std::string(1, 'k').append(std::to_string(i)), crypto::SecretBytes::random(32, rng)});
  }
  return PskSet::create(std::move(v)).value();
}

// Responder work for one DISCOVERY whose shared key is its last one (worst case: 256 tags).
void BM_ResponderDiscovery256(benchmark::State& state) {
  PskSet ip = psks(1000, 10), rp = psks(5000, 255);
  crypto::DeterministicRandom irng(1), rrng(2);
  Initiator init(ip, kOffered, irng);
  Responder resp(rp, ResponderPolicy{}, kUnlimited, rrng, 0);
  auto d = init.start(kUnix, 0);
  for (auto _ : state) benchmark::DoNotOptimize(resp.consume_discovery(d, kFrom, kUnix, 0));
}
BENCHMARK(BM_ResponderDiscovery256)->Unit(benchmark::kMicrosecond);

// Responder work for one CONFIRM (the last check, the replay filter, comes after
// all the cryptography, so re-submitting one CONFIRM measures the full cost).
void BM_ResponderConfirm256(benchmark::State& state) {
  PskSet ip = psks(1000, 10), rp = psks(5000, 255);
  crypto::DeterministicRandom irng(1), rrng(2);
  Initiator init(ip, kOffered, irng);
  Responder resp(rp, ResponderPolicy{}, kUnlimited, rrng, 0);
  auto r = resp.consume_discovery(init.start(kUnix, 0), kFrom, kUnix, 0);
  auto o = init.consume_response(*r, kUnix, 0);
  for (auto _ : state) benchmark::DoNotOptimize(resp.consume_confirm(o->confirm, kFrom, kUnix, 0));
}
BENCHMARK(BM_ResponderConfirm256)->Unit(benchmark::kMicrosecond);

// Both sides, all four steps, fresh values each time.
void BM_FullHandshake256(benchmark::State& state) {
  PskSet ip = psks(1000, 10), rp = psks(5000, 255);
  crypto::DeterministicRandom irng(1), rrng(2);
  Responder resp(rp, ResponderPolicy{}, kUnlimited, rrng, 0);
  for (auto _ : state) {
    Initiator init(ip, kOffered, irng);
    auto r = resp.consume_discovery(init.start(kUnix, 0), kFrom, kUnix, 0);
    auto o = init.consume_response(*r, kUnix, 0);
    benchmark::DoNotOptimize(resp.consume_confirm(o->confirm, kFrom, kUnix, 0));
  }
}
BENCHMARK(BM_FullHandshake256)->Unit(benchmark::kMicrosecond);

}  // namespace
