// Moving one flow's bytes between its kernel socket and its Buckwild
// connection, each way only as fast as the other side takes them: that is the
// whole of the bridge's flow control (docs/architecture.md "Transparent TCP").
// A stalled reader fills its socket, the bytes stay in the connection, its
// window closes and the far writer stops; a daemon holds at most the
// connection's buffers plus one chunk per flow.
//
// The pumps only move bytes and report what they saw; the bridge decides what
// an end of stream or a failure means for the flow (flow.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"
#include "core/conn/connection.h"
#include "daemon/net/tcp_endpoints.h"

namespace buckwild::daemon {

// At most one read or one write at a time, and the most a flow holds outside
// the connection's buffers.
inline constexpr std::size_t kPumpChunk = 64 * 1024;

// Bytes taken from the connection that the socket has not taken yet.
struct PendingWrite {
  std::vector<std::uint8_t> bytes;
  std::size_t done = 0;
  bool empty() const { return done >= bytes.size(); }
  void release() {
    bytes.clear();
    bytes.shrink_to_fit();
    done = 0;
  }
};

enum class PumpEnd : std::uint8_t {
  kMore,      // stopped for now: would block, no room, or a batch's worth done
  kFinished,  // end of stream: socket -> connection: the socket's EOF; connection ->
              // socket: the peer's FIN is due now that every byte went to the socket
  kFailed,    // the socket failed (reset by the application, ...)
};

struct PumpResult {
  std::size_t bytes = 0;  // moved in this call
  PumpEnd end = PumpEnd::kMore;
};

// Reads from `stream` into `conn` while the connection's send buffer has room,
// at most `max_reads` reads of up to kPumpChunk through `scratch` (at least
// kPumpChunk bytes).
PumpResult pump_socket_to_connection(TcpStream& stream, conn::Connection& conn, MutableBytes scratch,
                                     int max_reads);

// Writes `pending` and then what `conn` has received to `stream` until the
// socket would block (the unwritten rest stays in `pending`, at most one
// chunk) or nothing is left. kFinished when the peer has finished and every
// byte went to the socket. `scratch` as above.
PumpResult pump_connection_to_socket(TcpStream& stream, conn::Connection& conn, PendingWrite& pending,
                                     MutableBytes scratch);

}  // namespace buckwild::daemon
