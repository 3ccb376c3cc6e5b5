// The pre-shared keys one host holds, with their discovery tag keys.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/crypto/hmac.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::discovery {

using Fingerprint = std::array<std::uint8_t, 8>;

struct Psk {
  std::string id;           // a name for logs; never secret
  crypto::SecretBytes key;  // 16..64 bytes
};

// Up to 256 PSKs, in the host's order of preference (a responder selects the
// first one it shares). For each, the tag key
//   tag_key = HKDF(salt "buckwild discovery v1", IKM psk, info "tag key", 32)
// is derived once and kept keyed in an HMAC context, with its fingerprint
//   fingerprint = first 8 bytes of HMAC(tag_key, "fingerprint")
// which a responder hides in its cookie to find the key again at CONFIRM.
class PskSet {
 public:
  // Fails with kInvalidParameter for 0 or more than 256 PSKs, a PSK outside
  // 16..64 bytes, or a duplicate id.
  static Result<PskSet> create(std::vector<Psk> psks);

  std::size_t size() const { return entries_.size(); }
  const std::string& id(std::size_t i) const { return entries_[i].psk.id; }
  const crypto::SecretBytes& key(std::size_t i) const { return entries_[i].psk.key; }
  const crypto::SecretBytes& tag_key(std::size_t i) const { return entries_[i].tag_key; }
  // HMAC-SHA256 keyed with tag_key(i).
  crypto::HmacSha256& tag_mac(std::size_t i) const { return entries_[i].tag_mac; }
  const Fingerprint& fingerprint(std::size_t i) const { return entries_[i].fingerprint; }
  // The first PSK with this fingerprint, if any.
  std::optional<std::size_t> find(const Fingerprint& fp) const;

 private:
  struct Entry {
    Psk psk;
    crypto::SecretBytes tag_key;
    mutable crypto::HmacSha256 tag_mac;
    Fingerprint fingerprint;
  };
  explicit PskSet(std::vector<Entry> entries) : entries_(std::move(entries)) {}
  std::vector<Entry> entries_;
};

}  // namespace buckwild::discovery
