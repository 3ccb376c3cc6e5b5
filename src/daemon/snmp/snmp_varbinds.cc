#include "daemon/snmp/snmp_varbinds.h"

#include <algorithm>
#include <optional>
#include <type_traits>

#include "daemon/snmp/mib_oids.h"

namespace buckwild::daemon::snmp {
namespace {

Oid with_root(std::initializer_list<std::uint32_t> arcs) {
  Oid out(std::begin(kBuckwildEnterpriseOid), std::end(kBuckwildEnterpriseOid));
  out.insert(out.end(), arcs);
  return out;
}

bool starts_with(std::span<const std::uint32_t> name, const Oid& prefix) {
  return name.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), name.begin());
}

// The peer name a bwPeerTable index spells (length, then octets), if it is one.
std::optional<std::string> index_name(std::span<const std::uint32_t> index) {
  if (index.empty() || index[0] != index.size() - 1 || index[0] == 0 || index[0] > kMaxPeerNameLength) {
    return std::nullopt;
  }
  std::string name;
  for (std::size_t i = 1; i < index.size(); ++i) {
    if (index[i] > 0xff) return std::nullopt;
    name.push_back(static_cast<char>(index[i]));
  }
  return name;
}

}  // namespace

void set_value(netsnmp_variable_list* vb, const MibValue& value) {
  std::visit(
      [vb](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Counter64>) {
          counter64 c{};
          c.high = static_cast<u_long>(v.value >> 32);
          c.low = static_cast<u_long>(v.value & 0xffffffffu);
          snmp_set_var_typed_value(vb, ASN_COUNTER64, &c, sizeof c);
        } else if constexpr (std::is_same_v<T, Gauge32>) {
          const u_long g = v.value;
          snmp_set_var_typed_value(vb, ASN_GAUGE, &g, sizeof g);
        } else if constexpr (std::is_same_v<T, TimeTicks>) {
          const u_long t = v.value;
          snmp_set_var_typed_value(vb, ASN_TIMETICKS, &t, sizeof t);
        } else if constexpr (std::is_same_v<T, Integer32>) {
          const long i = v.value;
          snmp_set_var_typed_value(vb, ASN_INTEGER, &i, sizeof i);
        } else {
          snmp_set_var_typed_value(vb, ASN_OCTET_STR, v.value.data(), v.value.size());
        }
      },
      value);
}

std::span<const std::uint32_t> oid_span(const oid* name, std::size_t length, Oid& scratch) {
  // net-snmp's oid is an unsigned long: copied, each arc clamped to 32 bits
  // (no arc of ours is larger, so a larger one sorts after ours as it should).
  scratch.clear();
  for (std::size_t i = 0; i < length; ++i) {
    scratch.push_back(name[i] > 0xffffffffu ? 0xffffffffu : static_cast<std::uint32_t>(name[i]));
  }
  return scratch;
}

std::variant<WriteTarget, int> classify(const MibView* view, const netsnmp_variable_list* vb,
                                        std::span<const std::uint32_t> name) {
  using What = WriteTarget::What;
  const long* integer = vb->val.integer;
  const bool is_integer = vb->type == ASN_INTEGER && integer != nullptr;
  const bool is_unsigned = vb->type == ASN_UNSIGNED && integer != nullptr;
  if (std::ranges::equal(name, scalar_oid(kControl, kLogLevelItem))) {
    if (!is_integer) return SNMP_ERR_WRONGTYPE;
    if (*integer < 1 || *integer > static_cast<long>(kLogLevelNames.size())) return SNMP_ERR_WRONGVALUE;
    return WriteTarget{What::kLogLevel, {}, *integer};
  }
  if (std::ranges::equal(name, scalar_oid(kControl, kDiscoveryRateLimitItem))) {
    if (!is_unsigned) return SNMP_ERR_WRONGTYPE;
    if (*integer < 1 || *integer > static_cast<long>(kDiscoveryRateLimitMax)) return SNMP_ERR_WRONGVALUE;
    return WriteTarget{What::kDiscoveryRateLimit, {}, *integer};
  }
  const Oid admin = with_root({kObjects, kPeers, kPeerTable, kPeerEntry,
                               static_cast<std::uint32_t>(PeerColumn::kAdminState)});
  if (starts_with(name, admin)) {
    if (!is_integer) return SNMP_ERR_WRONGTYPE;
    if (*integer != 1 && *integer != 2) return SNMP_ERR_WRONGVALUE;
    std::optional<std::string> peer = index_name(name.subspan(admin.size()));
    if (!peer) return SNMP_ERR_NOCREATION;
    // Only a configured peer has an administrative state to change.
    const MibValue* configured =
        view == nullptr
            ? nullptr
            : view->get(peer_cell_oid(static_cast<std::uint32_t>(PeerColumn::kConfigured), *peer));
    if (configured == nullptr) return SNMP_ERR_NOCREATION;
    if (std::get<Integer32>(*configured).value != 1) return SNMP_ERR_INCONSISTENTNAME;
    return WriteTarget{What::kAdminState, std::move(*peer), *integer};
  }
  return SNMP_ERR_NOTWRITABLE;
}

void add_varbind(netsnmp_variable_list** vars, const Oid& name, const MibValue& value) {
  std::vector<oid> arcs(name.begin(), name.end());
  netsnmp_variable_list* vb =
      snmp_varlist_add_variable(vars, arcs.data(), arcs.size(), ASN_NULL, nullptr, 0);
  if (vb != nullptr) set_value(vb, value);
}

}  // namespace buckwild::daemon::snmp
