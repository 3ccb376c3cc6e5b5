// The send queue: the datagrams a turn of the event loop seals leave together
// at its end, one sendmmsg per socket, where the kernel cuts runs of equal-size
// datagrams to one destination into GSO sends (UdpSocket::send_batch). Stream
// mode's connections seal their packets one at a time, each flow in its own
// callback; sent at once, each would be a system call of its own.
//
// Nothing waits past the turn that queued it: the loop's turn-end callback
// empties the queue before the loop waits again.
#include <array>
#include <utility>

#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {

void Tunnel::queue_datagram(PacketPool::Buffer datagram, const Path& path) {
  queued_.push_back(Queued{std::move(datagram), path.via, path.to});
  if (queued_.size() >= kSendQueueBound) flush_sends();
}

void Tunnel::flush_sends() {
  const std::size_t n = queued_.size();
  if (n == 0) return;
  std::array<OutgoingDatagram, kSendQueueBound> out;
  std::array<bool, kSendQueueBound> taken{};
  for (std::size_t first = 0; first < n; ++first) {
    if (taken[first]) continue;
    DatagramSocket* via = queued_[first].via;
    // One batch for the socket: its destinations in the order each first
    // appears, each one's datagrams in the order queued. A destination's
    // datagrams side by side are what one GSO send carries.
    std::size_t k = 0;
    for (std::size_t d = first; d < n; ++d) {
      if (taken[d] || queued_[d].via != via) continue;
      const SocketAddress to = queued_[d].to;
      for (std::size_t i = d; i < n; ++i) {
        if (taken[i] || queued_[i].via != via || queued_[i].to != to) continue;
        out[k++] = OutgoingDatagram{queued_[i].datagram.payload(), to, std::nullopt};
        taken[i] = true;
      }
    }
    auto sent = via->send_batch(std::span(out.data(), k));
    const std::size_t ok = sent ? *sent : 0;
    stats_.datagrams_sent += ok;
    stats_.send_errors += k - ok;  // refused, or the socket buffer was full
    ++stats_.batched_sends;
    stats_.batched_datagrams += k;
  }
  queued_.clear();  // the buffers go back to the pool
}

PacketPool::Buffer Tunnel::acquire_buffer() {
  PacketPool::Buffer b = pool_.acquire();
  if (!b && !queued_.empty()) {
    flush_sends();
    b = pool_.acquire();
  }
  return b;
}

}  // namespace buckwild::daemon
