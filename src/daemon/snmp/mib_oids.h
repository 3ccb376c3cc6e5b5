// The OIDs of packaging/BUCKWILD-MIB.txt that the subagent serves, as arcs
// below the module's root. The enterprise arc is here and in the MIB's
// MODULE-IDENTITY only; the CTest packaging.mib_lint checks that the two agree.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace buckwild::daemon::snmp {

// enterprises.63728: not an IANA-assigned Private Enterprise Number yet (the
// MIB's DESCRIPTION says so). Change it here and in the MIB together.
inline constexpr std::uint32_t kBuckwildEnterpriseOid[] = {1, 3, 6, 1, 4, 1, 63728};

// buckwildObjects (root.1) and its groups.
inline constexpr std::uint32_t kObjects = 1;
inline constexpr std::uint32_t kDaemon = 1;
inline constexpr std::uint32_t kTraffic = 2;
inline constexpr std::uint32_t kDrops = 3;
inline constexpr std::uint32_t kDiscovery = 4;
inline constexpr std::uint32_t kFilter = 5;
inline constexpr std::uint32_t kPeers = 6;
inline constexpr std::uint32_t kControl = 7;
inline constexpr std::uint32_t kNotifyInfo = 8;
inline constexpr std::uint32_t kOffload = 9;

// buckwildNotifications (root.0) and the notifications' own objects.
inline constexpr std::uint32_t kNotifications = 0;
enum class Notification : std::uint32_t {
  kSessionUp = 1,
  kSessionDown = 2,
  kRecoveryFailed = 3,
  kAttackDetected = 4,
};
enum class NotifyInfo : std::uint32_t {
  kReason = 1,
  kAttackKind = 2,
  kRate = 3,
  kThreshold = 4,
};

// bwControl's writable scalars.
inline constexpr std::uint32_t kLogLevelItem = 1;
inline constexpr std::uint32_t kDiscoveryRateLimitItem = 2;
inline constexpr std::uint32_t kDiscoveryRateLimitMax = 1'000'000;  // its SYNTAX (1..1000000)

// BuckwildLogLevel: value i + 1 is the configuration's name at i.
inline constexpr std::array<std::string_view, 7> kLogLevelNames = {
    "trace", "debug", "info", "warn", "error", "critical", "off"};

// bwPeerTable = bwPeers.1, bwPeerEntry = .1, then the column.
inline constexpr std::uint32_t kPeerTable = 1;
inline constexpr std::uint32_t kPeerEntry = 1;
inline constexpr std::uint32_t kMaxPeerNameLength = 64;  // bwPeerName SIZE (1..64)

// bwPeerEntry columns (bwPeerName, 1, is the index and not served).
enum class PeerColumn : std::uint32_t {
  kConfigured = 2,
  kState = 3,
  kAdminState = 4,
  kSessionId = 5,
  kEndpointType = 6,
  kEndpoint = 7,
  kEndpointPort = 8,
  kSendPort = 9,
  kListenPorts = 10,
  kSessionUptime = 11,
  kClockOffset = 12,
  kOneWayDelay = 13,
  kRtt = 14,
  kRxOctets = 15,
  kTxOctets = 16,
  kRxPackets = 17,
  kTxPackets = 18,
  kRejected = 19,
  kRetransmits = 20,
  kConnections = 21,
};

}  // namespace buckwild::daemon::snmp
