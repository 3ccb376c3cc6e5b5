// Opening protected packets: arbitrary datagrams against fixed session keys in
// each protection mode. Nothing may crash, and nothing forged may open.
#include <cstdlib>
#include <optional>
#include <vector>

#include "core/crypto/packet_protection.h"

using namespace buckwild;

namespace {

const std::uint8_t kKey[32] = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
                               0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
                               0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f};
const std::uint8_t kIv[12] = {7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47};

crypto::PacketOpener make(crypto::ProtectionMode mode, crypto::AeadAlgorithm alg) {
  auto o = crypto::PacketOpener::create(mode, alg, {Bytes(kKey), Bytes(kIv), Bytes(kKey)});
  if (!o) std::abort();
  return std::move(*o);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static crypto::PacketOpener openers[] = {
      make(crypto::ProtectionMode::kAead, crypto::AeadAlgorithm::kChaCha20Poly1305),
      make(crypto::ProtectionMode::kAead, crypto::AeadAlgorithm::kAes256Gcm),
      make(crypto::ProtectionMode::kHmac, crypto::AeadAlgorithm::kChaCha20Poly1305),
  };
  if (size < 1) return 0;
  std::vector<std::uint8_t> datagram(data + 1, data + size);
  auto& opener = openers[data[0] % 3];
  // Guessing a 128-bit tag is not something a fuzzer does: an open that
  // succeeds means verification is broken.
  if (opener.open(datagram, 52'225'123).has_value()) std::abort();
  return 0;
}
