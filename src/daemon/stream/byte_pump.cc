#include "daemon/stream/byte_pump.h"

#include <algorithm>
#include <cassert>

namespace buckwild::daemon {

PumpResult pump_socket_to_connection(TcpStream& stream, conn::Connection& conn, MutableBytes scratch,
                                     int max_reads) {
  assert(scratch.size() >= kPumpChunk);
  PumpResult result;
  for (int i = 0; i < max_reads; ++i) {
    const std::size_t room = conn.send_capacity();
    if (room == 0) return result;  // the connection's buffer is full: the socket waits
    const StreamIo r = stream.read(scratch.first(std::min(room, kPumpChunk)));
    if (r.bytes > 0) {
      result.bytes += conn.send(Bytes(scratch.data(), r.bytes));
      continue;
    }
    if (r.eof) {
      result.end = PumpEnd::kFinished;
      return result;
    }
    if (r.would_block) return result;
    result.end = PumpEnd::kFailed;
    return result;
  }
  return result;
}

PumpResult pump_connection_to_socket(TcpStream& stream, conn::Connection& conn, PendingWrite& pending,
                                     MutableBytes scratch) {
  assert(scratch.size() >= kPumpChunk);
  PumpResult result;
  for (;;) {
    if (!pending.empty()) {
      const StreamIo w = stream.write(Bytes(pending.bytes.data() + pending.done, pending.bytes.size() - pending.done));
      if (w.error != 0) {
        result.end = PumpEnd::kFailed;
        return result;
      }
      if (w.bytes == 0) return result;  // the application is not reading: the connection's window closes
      pending.done += w.bytes;
      result.bytes += w.bytes;
      continue;
    }
    pending.bytes.clear();
    pending.done = 0;
    const std::size_t ready = conn.readable();
    if (ready == 0) break;
    const std::size_t got = conn.recv(scratch.first(std::min(ready, kPumpChunk)));
    const StreamIo w = stream.write(Bytes(scratch.data(), got));
    if (w.error != 0) {
      result.end = PumpEnd::kFailed;
      return result;
    }
    result.bytes += w.bytes;
    if (w.bytes < got) {
      pending.bytes.assign(scratch.begin() + static_cast<std::ptrdiff_t>(w.bytes),
                           scratch.begin() + static_cast<std::ptrdiff_t>(got));
      return result;
    }
  }
  if (conn.peer_finished()) result.end = PumpEnd::kFinished;
  return result;
}

}  // namespace buckwild::daemon
