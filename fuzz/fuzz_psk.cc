// The base64 PSK decoders (daemon/config/secret_base64, psk_file), against a
// plain reference decoder: standard alphabet, '=' padding present (length a
// multiple of 4) or left out, surrounding ASCII whitespace ignored, unused
// trailing bits zero (canonical text only), at least one byte. They must agree
// on acceptance and on the bytes; what decodes re-encodes to the same text
// (padded); decode_psk accepts exactly 16..64 bytes.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

#include "daemon/config/psk_file.h"
#include "daemon/config/secret_base64.h"

using namespace buckwild;

namespace {

int value_of(std::uint8_t c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool is_space(std::uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// nullopt: invalid or empty.
std::optional<std::vector<std::uint8_t>> reference(std::string_view s) {
  std::size_t padding = 0;
  if (s.size() % 4 == 0) {
    while (padding < s.size() && s[s.size() - 1 - padding] == '=') ++padding;
    if (padding > 2) return std::nullopt;
    s.remove_suffix(padding);
    if (padding == 1 && s.size() % 4 != 3) return std::nullopt;
    if (padding == 2 && s.size() % 4 != 2) return std::nullopt;
  }
  if (s.size() % 4 == 1) return std::nullopt;
  std::vector<std::uint8_t> out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : s) {
    const int v = value_of(static_cast<std::uint8_t>(ch));
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return std::nullopt;  // non-canonical: unused bits set
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;  // a key file is at most 4 KiB
  Bytes text(data, size);
  Bytes trimmed = text;
  while (!trimmed.empty() && is_space(trimmed.front())) trimmed = trimmed.subspan(1);
  while (!trimmed.empty() && is_space(trimmed.back())) trimmed = trimmed.first(trimmed.size() - 1);

  auto got = daemon::decode_base64_secret(text);
  auto want = reference(std::string_view(reinterpret_cast<const char*>(trimmed.data()), trimmed.size()));
  if (trimmed.empty() && (got || got.error() != daemon::Base64Problem::kEmpty)) std::abort();
  if (got.has_value() != want.has_value()) {
    std::fprintf(stderr, "decoder %s, reference %s\n", got ? "accepts" : "refuses", want ? "accepts" : "refuses");
    std::abort();
  }
  if (got) {
    if (got->size() != want->size() || !std::equal(want->begin(), want->end(), got->data())) std::abort();
    auto again = daemon::encode_base64_secret(got->view());
    std::vector<std::uint8_t> padded(trimmed.begin(), trimmed.end());
    while (padded.size() % 4 != 0) padded.push_back('=');
    if (again.size() != padded.size() || !std::equal(padded.begin(), padded.end(), again.data()))
      std::abort();
  }

  auto psk = daemon::decode_psk(text);
  const bool psk_ok = want && want->size() >= daemon::kMinPskBytes && want->size() <= daemon::kMaxPskBytes;
  if (psk.has_value() != psk_ok) std::abort();
  // A problem never quotes key text (valid base64 of the wrong length: the
  // message's longest run of base64 characters is "buckwild", 8).
  const std::string_view head(reinterpret_cast<const char*>(trimmed.data()), std::min<std::size_t>(trimmed.size(), 12));
  if (!psk && want && head.size() == 12 && psk.error().find(head) != std::string::npos) std::abort();
  return 0;
}
