#include "daemon/config/secret_base64.h"

#include <sodium.h>

namespace buckwild::daemon {
namespace {

bool is_space(std::uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

std::expected<crypto::SecretBytes, Base64Problem> decode_base64_secret(Bytes text) {
  while (!text.empty() && is_space(text.front())) text = text.subspan(1);
  while (!text.empty() && is_space(text.back())) text = text.first(text.size() - 1);
  if (text.empty()) return std::unexpected(Base64Problem::kEmpty);

  // libsodium 1.0.18 (Debian 12) decodes every byte from 0x80 up as if it
  // were a base64 character, so "q83v\xc2..." would give some key instead of
  // a refusal. Refuse those bytes first, without a branch on each one (the
  // text is key material; only the verdict is revealed).
  unsigned high = 0;
  for (std::uint8_t c : text) high |= c;
  if ((high & 0x80u) != 0) return std::unexpected(Base64Problem::kInvalid);

  crypto::ensure_sodium();
  const int variant = text.size() % 4 == 0 ? sodium_base64_VARIANT_ORIGINAL
                                           : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  crypto::SecretBytes scratch(text.size() / 4 * 3 + 3);
  std::size_t decoded = 0;
  const char* end = nullptr;
  int rc =
      sodium_base642bin(scratch.data(), scratch.size(), reinterpret_cast<const char*>(text.data()),
                        text.size(), nullptr, &decoded, &end, variant);
  if (rc != 0 || end != reinterpret_cast<const char*>(text.data()) + text.size() || decoded == 0) {
    return std::unexpected(Base64Problem::kInvalid);
  }
  return crypto::SecretBytes::copy_of(scratch.view().first(decoded));
}

crypto::SecretBytes encode_base64_secret(Bytes data) {
  crypto::ensure_sodium();
  const std::size_t with_nul =
      sodium_base64_ENCODED_LEN(data.size(), sodium_base64_VARIANT_ORIGINAL);
  crypto::SecretBytes scratch(with_nul);
  sodium_bin2base64(reinterpret_cast<char*>(scratch.data()), scratch.size(), data.data(),
                    data.size(), sodium_base64_VARIANT_ORIGINAL);
  return crypto::SecretBytes::copy_of(scratch.view().first(with_nul - 1));
}

}  // namespace buckwild::daemon
