// The OIDs of packaging/BUCKWILD-MIB.txt that the subagent serves. The
// enterprise arc is here and in the MIB's MODULE-IDENTITY only; the CTest
// packaging.mib_lint checks that the two agree.
#pragma once

#include <cstdint>

namespace buckwild::daemon::snmp {

// enterprises.63728: not an IANA-assigned Private Enterprise Number yet (the
// MIB's DESCRIPTION says so). Change it here and in the MIB together.
inline constexpr std::uint32_t kBuckwildEnterpriseOid[] = {1, 3, 6, 1, 4, 1, 63728};

}  // namespace buckwild::daemon::snmp
