#include "core/common/error.h"

namespace buckwild {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kSuccess: return "SUCCESS";
    case ErrorCode::kInvalidPacket: return "INVALID_PACKET";
    case ErrorCode::kAuthenticationFailed: return "AUTHENTICATION_FAILED";
    case ErrorCode::kTimestampInvalid: return "TIMESTAMP_INVALID";
    case ErrorCode::kReplayAttack: return "REPLAY_ATTACK";
    case ErrorCode::kSessionNotFound: return "SESSION_NOT_FOUND";
    case ErrorCode::kStateInvalid: return "STATE_INVALID";
    case ErrorCode::kWindowOverflow: return "WINDOW_OVERFLOW";
    case ErrorCode::kSequenceInvalid: return "SEQUENCE_INVALID";
    case ErrorCode::kFragmentInvalid: return "FRAGMENT_INVALID";
    case ErrorCode::kSyncFailed: return "SYNC_FAILED";
    case ErrorCode::kRecoveryFailed: return "RECOVERY_FAILED";
    case ErrorCode::kTimeout: return "TIMEOUT";
    case ErrorCode::kMemoryExhausted: return "MEMORY_EXHAUSTED";
    case ErrorCode::kInvalidParameter: return "INVALID_PARAMETER";
    case ErrorCode::kPortCalculationFailed: return "PORT_CALCULATION_FAILED";
    case ErrorCode::kFragmentReassemblyFailed: return "FRAGMENT_REASSEMBLY_FAILED";
    case ErrorCode::kCongestionControlFailed: return "CONGESTION_CONTROL_FAILED";
    case ErrorCode::kDiscoveryFailed: return "DISCOVERY_FAILED";
    case ErrorCode::kPskNotFound: return "PSK_NOT_FOUND";
    case ErrorCode::kZeroKnowledgeProofFailed: return "ZERO_KNOWLEDGE_PROOF_FAILED";
    case ErrorCode::kDiscoveryTimeout: return "DISCOVERY_TIMEOUT";
    case ErrorCode::kPedersenCommitmentFailed: return "PEDERSEN_COMMITMENT_FAILED";
    case ErrorCode::kPskEnumerationAttempt: return "PSK_ENUMERATION_ATTEMPT";
    case ErrorCode::kConnectionRefused: return "CONNECTION_REFUSED";
    case ErrorCode::kDestinationUnreachable: return "DESTINATION_UNREACHABLE";
    case ErrorCode::kConnectionLimit: return "CONNECTION_LIMIT";
  }
  return "UNKNOWN";
}

}  // namespace buckwild
