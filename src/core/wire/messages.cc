#include "core/wire/messages.h"

namespace buckwild::wire {

std::string_view packet_type_name(PacketType t) {
  switch (t) {
    case PacketType::kSyn: return "SYN";
    case PacketType::kSynAck: return "SYN_ACK";
    case PacketType::kAck: return "ACK";
    case PacketType::kData: return "DATA";
    case PacketType::kFin: return "FIN";
    case PacketType::kHeartbeat: return "HEARTBEAT";
    case PacketType::kRecovery: return "RECOVERY";
    case PacketType::kFragment: return "FRAGMENT";
    case PacketType::kError: return "ERROR";
    case PacketType::kWindowUpdate: return "WINDOW_UPDATE";
    case PacketType::kRst: return "RST";
    case PacketType::kDiscovery: return "DISCOVERY";
    case PacketType::kDiscoveryResponse: return "DISCOVERY_RESPONSE";
    case PacketType::kDiscoveryConfirm: return "DISCOVERY_CONFIRM";
    case PacketType::kTimeSyncRequest: return "TIME_SYNC_REQUEST";
    case PacketType::kTimeSyncResponse: return "TIME_SYNC_RESPONSE";
    case PacketType::kRekeyRequest: return "REKEY_REQUEST";
    case PacketType::kRekeyResponse: return "REKEY_RESPONSE";
    case PacketType::kRepairRequest: return "REPAIR_REQUEST";
    case PacketType::kRepairResponse: return "REPAIR_RESPONSE";
    case PacketType::kEmergencyRequest: return "EMERGENCY_REQUEST";
    case PacketType::kEmergencyResponse: return "EMERGENCY_RESPONSE";
    case PacketType::kSequenceNeg: return "SEQUENCE_NEG";
    case PacketType::kDatagram: return "DATAGRAM";
    case PacketType::kPathChallenge: return "PATH_CHALLENGE";
    case PacketType::kPathResponse: return "PATH_RESPONSE";
    case PacketType::kPmtuProbe: return "PMTU_PROBE";
    case PacketType::kPmtuAck: return "PMTU_ACK";
  }
  return "UNKNOWN";
}

}  // namespace buckwild::wire
