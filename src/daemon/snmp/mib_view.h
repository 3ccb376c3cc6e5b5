// BUCKWILD-MIB as a sorted table of (OID, value), made from the daemon's
// status document (docs/control.md). It knows nothing of net-snmp: the
// subagent (snmp_agent.h) answers GET and GETNEXT from it, and tests check
// it without an SNMP agent.
//
// Each object's value is the status field the MIB's DESCRIPTION names; a
// field that is missing or null reads as 0 or "" (the MIB says which objects
// are 0 while not known).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace buckwild::daemon::snmp {

using Oid = std::vector<std::uint32_t>;

// The SMIv2 types the MIB uses. Enumerations and TruthValue are Integer32.
struct Counter64 { std::uint64_t value; };
struct Gauge32 { std::uint32_t value; };
struct TimeTicks { std::uint32_t value; };  // hundredths of a second
struct Integer32 { std::int32_t value; };
struct OctetString { std::string value; };
using MibValue = std::variant<Counter64, Gauge32, TimeTicks, Integer32, OctetString>;

class MibView {
 public:
  // The view of `status` (a `status` document); the root is
  // kBuckwildEnterpriseOid. Never throws: fields of an unexpected type read
  // as missing.
  static MibView from_status(const nlohmann::json& status);

  // The value at exactly `oid`, or nullptr.
  const MibValue* get(std::span<const std::uint32_t> oid) const;
  // The first (OID, value) after `oid` in OID order, or nullptr past the end.
  const std::pair<const Oid, MibValue>* next(std::span<const std::uint32_t> oid) const;

  std::size_t size() const { return values_.size(); }

 private:
  std::map<Oid, MibValue> values_;  // std::vector's < is the OID order
  friend class MibViewBuilder;
};

// The OID of a scalar: root.1.GROUP.ITEM.0.
Oid scalar_oid(std::uint32_t group, std::uint32_t item);
// The OID of a bwPeerTable cell: root.1.6.1.1.COLUMN.LEN.NAME... (the name
// as a length-prefixed DisplayString index).
Oid peer_cell_oid(std::uint32_t column, std::string_view name);

}  // namespace buckwild::daemon::snmp
