// Varbinds in net-snmp's types: values in and out, and what a SET's varbind
// asks for. Private to src/daemon/snmp/: it includes net-snmp's headers,
// whose macros (MAX, MIN, U64…) must not reach other code.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "daemon/snmp/mib_view.h"

namespace buckwild::daemon::snmp {

// Puts `value` into `vb` with its ASN.1 type.
void set_value(netsnmp_variable_list* vb, const MibValue& value);

// net-snmp's name as our arcs, in `scratch` (each arc clamped to 32 bits).
std::span<const std::uint32_t> oid_span(const oid* name, std::size_t length, Oid& scratch);

// What one varbind of a SET asks for, or the SNMP error that refuses it.
struct WriteTarget {
  enum class What : std::uint8_t { kLogLevel, kDiscoveryRateLimit, kAdminState } what;
  std::string peer;  // kAdminState
  long value = 0;
};

// A SET varbind checked against the object's MAX-ACCESS and SYNTAX (the
// values are checked again, as a reload checks them, by the Writer): its
// target, or the SNMP error (SNMP_ERR_*) that refuses it.
std::variant<WriteTarget, int> classify(const MibView* view, const netsnmp_variable_list* vb,
                                        std::span<const std::uint32_t> name);

// Appends a varbind `name` = `value` to `vars` (a notification's list).
void add_varbind(netsnmp_variable_list** vars, const Oid& name, const MibValue& value);

}  // namespace buckwild::daemon::snmp
