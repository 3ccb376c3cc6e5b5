// Micro-benchmarks of the protocol core's per-packet and per-window work.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/crypto/packet_protection.h"
#include "core/crypto/random.h"
#include "core/hop/port_schedule.h"
#include "core/wire/codec.h"

namespace {

using namespace buckwild;

constexpr std::size_t kBody = 1400 - wire::kOverhead;  // a 1400-byte datagram
constexpr std::uint32_t kNow = 52'225'123;

std::vector<std::uint8_t> key_bytes(std::size_t n, std::uint8_t start) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(start + i);
  return v;
}

const std::vector<std::uint8_t> kKey = key_bytes(32, 0x80);
const std::vector<std::uint8_t> kIv = key_bytes(12, 0x07);

wire::Header data_header() {
  wire::Header h;
  h.type = wire::PacketType::kData;
  h.session_id = 0x9F3C5A7E11223344ull;
  h.timestamp_ms = kNow;
  h.flags = wire::flags::kAck | wire::flags::kPsh;
  return h;
}

// Seal then open one 1400-byte datagram per iteration; bytes counted once per pair.
void BM_SealOpen(benchmark::State& state) {
  auto mode = static_cast<crypto::ProtectionMode>(state.range(0));
  auto alg = static_cast<crypto::AeadAlgorithm>(state.range(1));
  crypto::PacketKeyMaterial keys{kKey, kIv, kKey};
  auto sealer = crypto::PacketSealer::create(mode, alg, keys).value();
  auto opener = crypto::PacketOpener::create(mode, alg, keys).value();
  std::vector<std::uint8_t> buf(wire::kOverhead + kBody, 0x5A);
  for (auto _ : state) {
    wire::Header h = data_header();
    auto n = sealer.seal(h, buf, kBody);
    auto opened = opener.open(MutableBytes(buf.data(), *n), kNow);
    if (!opened) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(opened);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_SealOpen)
    ->ArgNames({"mode", "alg"})
    ->Args({1, 1})   // AEAD ChaCha20-Poly1305
    ->Args({1, 2})   // AEAD AES-256-GCM
    ->Args({2, 1});  // HMAC-SHA256-128

void BM_Seal(benchmark::State& state) {
  auto mode = static_cast<crypto::ProtectionMode>(state.range(0));
  auto alg = static_cast<crypto::AeadAlgorithm>(state.range(1));
  auto sealer = crypto::PacketSealer::create(mode, alg, {kKey, kIv, kKey}).value();
  std::vector<std::uint8_t> buf(wire::kOverhead + kBody, 0x5A);
  for (auto _ : state) {
    wire::Header h = data_header();
    benchmark::DoNotOptimize(sealer.seal(h, buf, kBody));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_Seal)->ArgNames({"mode", "alg"})->Args({1, 1})->Args({1, 2})->Args({2, 1});

hop::PortSchedule schedule() {
  auto psk = crypto::SecretBytes::copy_of(key_bytes(32, 0x00));
  return hop::PortSchedule::create(psk, 0x0123456789ABCDEFull).value();
}

// A port for a new window: one HMAC-SHA256 (the cache misses every time).
void BM_PortNewWindow(benchmark::State& state) {
  auto s = schedule();
  std::int64_t w = 82'000'000;
  for (auto _ : state) benchmark::DoNotOptimize(s.port(w++, hop::Direction::kInitiatorToResponder, 7));
}
BENCHMARK(BM_PortNewWindow);

// The per-packet case: the window's base is cached.
void BM_PortCached(benchmark::State& state) {
  auto s = schedule();
  const std::int64_t w = 82'000'000;
  std::uint16_t c = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.port(w, hop::Direction::kInitiatorToResponder, c));
    c = static_cast<std::uint16_t>((c + 1) & 0xFFF);
  }
}
BENCHMARK(BM_PortCached);

// The valid-port set w-d … w+d for one connection, from a cold cache each time.
void BM_ValidPorts(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  auto s = schedule();
  std::vector<std::uint16_t> out;
  std::int64_t w = 82'000'000;
  for (auto _ : state) {
    out.clear();
    s.valid_ports(w, d, hop::Direction::kResponderToInitiator, 3, out);
    w += 2 * d + 1;  // never reuse a cached window
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_ValidPorts)->Arg(1)->Arg(4)->Arg(16);

}  // namespace
