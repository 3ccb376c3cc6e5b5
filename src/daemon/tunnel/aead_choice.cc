#include "daemon/tunnel/aead_choice.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <optional>
#include <system_error>
#include <chrono>
#include <future>
#include <mutex>
#include <vector>

namespace buckwild::daemon {
namespace {

constexpr std::size_t kDatagram = 1400;
constexpr int kRounds = 3;
constexpr auto kRoundTime = std::chrono::milliseconds(5);

std::string_view name_of(crypto::AeadAlgorithm a) {
  return a == crypto::AeadAlgorithm::kAes256Gcm ? "aes-256-gcm" : "chacha20-poly1305";
}

// Gbit/s sealing kDatagram-byte buffers for about kRoundTime; 0 if the
// algorithm cannot be used here.
double seal_rate(crypto::AeadAlgorithm algorithm) {
  // A fixed key: nothing sealed here leaves the process or is secret.
  std::array<std::uint8_t, crypto::kAeadKeySize> key{};
  key.fill(0x5a);
  auto aead = crypto::Aead::create(algorithm, key);
  if (!aead) return 0;
  std::vector<std::uint8_t> data(kDatagram, 0x42);
  std::array<std::uint8_t, 16> aad{};
  crypto::AeadNonce nonce{};
  crypto::AeadTag tag{};
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto until = start + kRoundTime;
  std::uint64_t sealed = 0;
  auto now = start;
  // Bounded by time, and by count should the clock stall.
  for (int i = 0; i < 1'000'000 && now < until; ++i) {
    for (int j = 0; j < 16; ++j) {
      nonce[0] = static_cast<std::uint8_t>(sealed);
      nonce[1] = static_cast<std::uint8_t>(sealed >> 8);
      if (!aead->seal(nonce, aad, data, tag)) return 0;
      ++sealed;
    }
    now = Clock::now();
  }
  const double seconds = std::chrono::duration<double>(now - start).count();
  return seconds > 0 ? static_cast<double>(sealed * kDatagram * 8) / seconds / 1e9 : 0;
}

}  // namespace

AeadMeasurement measure_aeads() {
  AeadMeasurement m;
  for (int round = 0; round < kRounds; ++round) {
    m.chacha20_poly1305_gbps =
        std::max(m.chacha20_poly1305_gbps, seal_rate(crypto::AeadAlgorithm::kChaCha20Poly1305));
    m.aes_256_gcm_gbps = std::max(m.aes_256_gcm_gbps, seal_rate(crypto::AeadAlgorithm::kAes256Gcm));
  }
  m.faster = m.aes_256_gcm_gbps > m.chacha20_poly1305_gbps ? crypto::AeadAlgorithm::kAes256Gcm
                                                           : crypto::AeadAlgorithm::kChaCha20Poly1305;
  return m;
}

namespace {

// The process's one measurement. begin() starts it on a thread of its own
// (a thread that cannot be started measures here, when first asked).
class ProcessMeasurement {
 public:
  void begin() {
    std::lock_guard lock(mutex_);
    if (pending_.valid() || result_) return;
    try {
      pending_ = std::async(std::launch::async, measure_aeads);
    } catch (const std::system_error&) {
      result_ = measure_aeads();
    }
  }
  const AeadMeasurement& get() {
    std::lock_guard lock(mutex_);
    if (!result_) result_ = pending_.valid() ? pending_.get() : measure_aeads();
    return *result_;
  }

 private:
  std::mutex mutex_;
  std::future<AeadMeasurement> pending_;
  std::optional<AeadMeasurement> result_;
};

ProcessMeasurement& process_measurement() {
  static ProcessMeasurement m;
  return m;
}

const AeadMeasurement& measured() { return process_measurement().get(); }

}  // namespace

void begin_aead_measurement(const CryptoConfig& c) {
  if (c.protection == crypto::ProtectionMode::kAead && c.aead == AeadChoice::kAuto) {
    process_measurement().begin();
  }
}

crypto::AeadAlgorithm preferred_aead(AeadChoice choice) {
  switch (choice) {
    case AeadChoice::kChaCha20Poly1305:
      return crypto::AeadAlgorithm::kChaCha20Poly1305;
    case AeadChoice::kAes256Gcm:
      return crypto::AeadAlgorithm::kAes256Gcm;
    case AeadChoice::kAuto:
      break;
  }
  return measured().faster;
}

std::string describe_aead_choice(AeadChoice choice) {
  if (choice != AeadChoice::kAuto) {
    return fmt::format("AEAD preferred as responder: {} ([crypto] aead)", name_of(preferred_aead(choice)));
  }
  const AeadMeasurement& m = measured();
  return fmt::format(
      "AEAD preferred as responder: {}, the faster here (sealing 1400-byte datagrams: "
      "aes-256-gcm {:.1f} Gbit/s, chacha20-poly1305 {:.1f} Gbit/s; [crypto] aead = \"auto\")",
      name_of(m.faster), m.aes_256_gcm_gbps, m.chacha20_poly1305_gbps);
}

void log_aead_choice(const CryptoConfig& c) {
  if (c.protection == crypto::ProtectionMode::kAead) spdlog::info("{}", describe_aead_choice(c.aead));
}

}  // namespace buckwild::daemon
