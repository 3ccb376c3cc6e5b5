#include "core/crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/common/fatal.h"
#include "core/crypto/hmac.h"

namespace buckwild::crypto {
namespace {

// OpenSSL length arguments are int; stay well inside them.
constexpr std::size_t kMaxChunk = std::size_t{1} << 30;
constexpr std::size_t kChaChaBlock = 64;

}  // namespace

void SystemRandom::fill(MutableBytes out) {
  while (!out.empty()) {
    std::size_t n = std::min(out.size(), kMaxChunk);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
      fatal("RAND_bytes failed; refusing to continue without a working CSPRNG");
    }
    out = out.subspan(n);
  }
}

DeterministicRandom::DeterministicRandom(std::uint64_t seed) : seed_(seed) {}

// counter_ is the number of stream bytes already handed out. Each call rebuilds
// the cipher at block counter_/64 and discards the partial block in front, so
// the stream does not depend on how callers slice their reads. The 16-byte IV
// is the 64-bit little-endian block number followed by zeros: OpenSSL treats
// the first word as the block counter and carries into the second, so this is
// one 64-bit counter and the stream never repeats.
void DeterministicRandom::fill(MutableBytes out) {
  if (out.empty()) return;

  std::uint8_t seed_be[8];
  store_be64(seed_be, seed_);
  constexpr std::string_view kLabel = "buckwild deterministic random";
  Digest key = sha256({Bytes(reinterpret_cast<const std::uint8_t*>(kLabel.data()), kLabel.size()),
                       Bytes(seed_be, sizeof seed_be)});

  std::uint64_t block = counter_ / kChaChaBlock;
  std::uint8_t iv[16] = {};
  for (std::size_t i = 0; i < 8; ++i) iv[i] = static_cast<std::uint8_t>(block >> (8 * i));

  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr || EVP_EncryptInit_ex(ctx, EVP_chacha20(), nullptr, key.data(), iv) != 1) {
    fatal("cannot set up ChaCha20 for DeterministicRandom");
  }
  OPENSSL_cleanse(key.data(), key.size());

  int len = 0;
  std::uint8_t skip[kChaChaBlock] = {};
  auto skip_len = static_cast<int>(counter_ % kChaChaBlock);
  bool ok = skip_len == 0 || EVP_EncryptUpdate(ctx, skip, &len, skip, skip_len) == 1;
  // Keystream = ChaCha20 of zeros, produced in place.
  std::fill(out.begin(), out.end(), std::uint8_t{0});
  for (MutableBytes rest = out; ok && !rest.empty();) {
    std::size_t n = std::min(rest.size(), kMaxChunk);
    ok = EVP_EncryptUpdate(ctx, rest.data(), &len, rest.data(), static_cast<int>(n)) == 1;
    rest = rest.subspan(n);
  }
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) fatal("ChaCha20 failed in DeterministicRandom");
  counter_ += out.size();
}

}  // namespace buckwild::crypto
