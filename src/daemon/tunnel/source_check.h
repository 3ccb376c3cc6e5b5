// Whether a session's peer may send an inner packet from `source`: the rule
// SessionTable::accept_source applies, as a pure function (no table, no log)
// so that it can be tested and fuzzed on its own.
#pragma once

#include <optional>
#include <span>

#include "core/common/cidr.h"
#include "core/common/ip_address.h"

namespace buckwild::daemon {

enum class SourceVerdict {
  kAllowed,  // inside a prefix the peer may use, or the address it claimed
  kClaim,    // a peer without an entry takes this address now (first use)
  kRefused,
};

// `allowed`: the prefixes the peer may use. `claimed`: the address a peer
// without an entry took (it keeps that one alone). `claimable`: the prefixes
// such a peer may take an address from, when `taken(source)` says it is no
// one else's (configured or claimed by another session).
template <typename Taken>
SourceVerdict check_source(std::span<const Cidr> allowed, const std::optional<IpAddress>& claimed,
                           std::span<const Cidr> claimable, const IpAddress& source, Taken&& taken) {
  for (const Cidr& c : allowed) {
    if (c.contains(source)) return SourceVerdict::kAllowed;
  }
  if (claimed) return *claimed == source ? SourceVerdict::kAllowed : SourceVerdict::kRefused;
  bool inside = false;
  for (const Cidr& c : claimable) inside = inside || c.contains(source);
  if (!inside || taken(source)) return SourceVerdict::kRefused;
  return SourceVerdict::kClaim;
}

}  // namespace buckwild::daemon
