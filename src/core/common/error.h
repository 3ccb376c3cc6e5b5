// Errors as values: every fallible function in the core returns Result<T>.
#pragma once

#include <cstdint>
#include <expected>
#include <string_view>

namespace buckwild {

// Protocol error codes, as carried in ERROR packets (docs/protocol.md §7).
enum class ErrorCode : std::uint8_t {
  kSuccess = 0x00,
  kInvalidPacket = 0x01,
  kAuthenticationFailed = 0x02,
  kTimestampInvalid = 0x03,
  kReplayAttack = 0x04,
  kSessionNotFound = 0x05,
  kStateInvalid = 0x06,
  kWindowOverflow = 0x07,
  kSequenceInvalid = 0x08,
  kFragmentInvalid = 0x09,
  kSyncFailed = 0x0A,
  kRecoveryFailed = 0x0B,
  kTimeout = 0x0C,
  kMemoryExhausted = 0x0D,
  kInvalidParameter = 0x0E,
  kPortCalculationFailed = 0x0F,
  kFragmentReassemblyFailed = 0x10,
  kCongestionControlFailed = 0x11,
  kDiscoveryFailed = 0x12,
  kPskNotFound = 0x13,
  kZeroKnowledgeProofFailed = 0x14,
  kDiscoveryTimeout = 0x15,
  kPedersenCommitmentFailed = 0x16,
  kPskEnumerationAttempt = 0x17,
  // Our extension (docs/protocol.md §13): why a stream-mode connection could
  // not be made on the far side, carried as an RST reason.
  kConnectionRefused = 0x18,      // the destination answered the connect with a reset
  kDestinationUnreachable = 0x19,  // no route, host unreachable, or no answer in time
  kConnectionLimit = 0x1A,         // the far daemon's connection limits refused it
};

inline constexpr std::uint8_t kMaxErrorCode = 0x1A;

// Returns the protocol name of `code` ("INVALID_PACKET"), or "UNKNOWN".
std::string_view error_code_name(ErrorCode code);

// An error: a protocol code, an errno where the OS said no (0 otherwise), and a
// static description of what failed. `what` always points at a string literal,
// so an Error never allocates and is cheap on the packet path.
struct Error {
  ErrorCode code = ErrorCode::kInvalidParameter;
  int sys_errno = 0;
  const char* what = "";

  friend bool operator==(const Error&, const Error&) = default;
};

// libc++ before 18 sets std::expected's has-value flag before it constructs
// the value, and puts the flag in the value's tail padding, so constructing a
// value can overwrite it (LLVM issue 68552): a Session::Received came back as
// an "error". libstdc++ and libc++ 18 or later are right.
#if defined(_LIBCPP_VERSION) && _LIBCPP_VERSION < 180000
#error "libc++ before 18 can corrupt std::expected (LLVM issue 68552): use libc++ 18 or later, or libstdc++"
#endif

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for `std::unexpected(Error{code, 0, what})`.
inline std::unexpected<Error> fail(ErrorCode code, const char* what) {
  return std::unexpected(Error{code, 0, what});
}

}  // namespace buckwild
