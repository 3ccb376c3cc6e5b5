#include "core/discovery/psk_set.h"

#include <algorithm>
#include <string_view>

#include "core/crypto/hkdf.h"
#include "core/hop/key_schedule.h"
#include "core/wire/messages.h"

namespace buckwild::discovery {
namespace {

Bytes ascii(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

}  // namespace

Result<PskSet> PskSet::create(std::vector<Psk> psks) {
  if (psks.empty() || psks.size() > wire::kMaxPskCount) {
    return fail(ErrorCode::kInvalidParameter, "a host holds 1 to 256 PSKs");
  }
  std::vector<Entry> entries;
  entries.reserve(psks.size());
  for (auto& p : psks) {
    if (p.key.size() < hop::kMinPskSize || p.key.size() > hop::kMaxPskSize) {
      return fail(ErrorCode::kInvalidParameter, "a PSK is 16 to 64 bytes");
    }
    for (const auto& e : entries) {
      if (e.psk.id == p.id) return fail(ErrorCode::kInvalidParameter, "duplicate PSK id");
    }
    auto tk = crypto::hkdf(ascii("buckwild discovery v1"), p.key.view(), ascii("tag key"), 32);
    if (!tk) return std::unexpected(tk.error());
    auto mac = crypto::HmacSha256::create(tk->view());
    if (!mac) return std::unexpected(mac.error());
    crypto::Digest d = mac->compute({ascii("fingerprint")});
    Fingerprint fp;
    std::copy_n(d.begin(), fp.size(), fp.begin());
    entries.push_back(Entry{std::move(p), std::move(*tk), std::move(*mac), fp});
  }
  return PskSet(std::move(entries));
}

std::optional<std::size_t> PskSet::find(const Fingerprint& fp) const {
  // At most 256 entries: a scan is cheaper than keeping an index in sync.
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].fingerprint == fp) return i;
  }
  return std::nullopt;
}

}  // namespace buckwild::discovery
