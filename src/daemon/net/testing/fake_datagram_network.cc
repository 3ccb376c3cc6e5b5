#include "daemon/net/testing/fake_datagram_network.h"

#include <algorithm>
#include <cassert>
#include <cerrno>

namespace buckwild::daemon {

FakeDatagramNetwork::~FakeDatagramNetwork() {
  assert(sockets_.empty() && "FakeDatagramNetwork destroyed before its sockets");
}

SysResult<std::unique_ptr<FakeDatagramSocket>> FakeDatagramNetwork::bind(
    SocketAddress address, std::optional<IpAddress> host, std::size_t queue_capacity) {
  if (address.port == 0) {
    for (int tries = 0; tries < 16384; ++tries) {
      SocketAddress candidate{address.ip, next_port_};
      next_port_ = next_port_ == 65535 ? 49152 : static_cast<std::uint16_t>(next_port_ + 1);
      if (!sockets_.contains(candidate)) {
        address = candidate;
        break;
      }
    }
    if (address.port == 0) return sys_fail(EADDRINUSE, "no free port on the fake network");
  }
  if (sockets_.contains(address)) {
    return sys_fail_plain(EADDRINUSE, "cannot bind UDP " + address.to_string() + ": port " +
                                          std::to_string(address.port) + " is already in use");
  }
  auto socket = std::unique_ptr<FakeDatagramSocket>(
      new FakeDatagramSocket(this, address, host.value_or(address.ip), queue_capacity));
  sockets_.emplace(address, socket.get());
  return socket;
}

void FakeDatagramNetwork::unbind(const SocketAddress& address) {
  sockets_.erase(address);
}

FakeDatagramSocket* FakeDatagramNetwork::find(const SocketAddress& to) const {
  // The most specific binding wins, as in the kernel: the exact address, then
  // the wildcard of the same family, then the IPv6 wildcard (dual stack).
  for (const SocketAddress& key : {to, SocketAddress{IpAddress::any(to.ip.family()), to.port},
                                   SocketAddress{IpAddress::any(IpFamily::kV6), to.port}}) {
    auto it = sockets_.find(key);
    if (it != sockets_.end()) return it->second;
  }
  return nullptr;
}

std::uint64_t FakeDatagramNetwork::add_lookup(Lookup lookup) {
  lookups_.emplace(next_lookup_, std::move(lookup));
  return next_lookup_++;
}

void FakeDatagramNetwork::remove_lookup(std::uint64_t id) {
  lookups_.erase(id);
}

void FakeDatagramNetwork::send(const SocketAddress& sent_from, const SocketAddress& sent_to,
                               Bytes payload) {
  if (filter_ && !filter_(sent_from, sent_to, payload)) {
    ++dropped_;
    return;
  }
  SocketAddress from = sent_from;
  SocketAddress to = sent_to;
  if (translator_ && !translator_(from, to)) {
    ++dropped_;
    return;
  }
  route(from, to, payload, clock_now());
}

bool FakeDatagramNetwork::deliver_at(const SocketAddress& from, const SocketAddress& to,
                                     Bytes payload, TimePoint arrived_at) {
  return route(from, to, payload, arrived_at);
}

bool FakeDatagramNetwork::route(const SocketAddress& from, const SocketAddress& to, Bytes payload,
                                TimePoint arrived_at) {
  std::optional<FakeDatagramSocket*> steered;
  for (auto it = lookups_.begin(); it != lookups_.end() && !steered; ++it) steered = it->second(from, to);
  FakeDatagramSocket* target = steered ? *steered : find(to);
  if (target == nullptr || !target->enqueue(from, to, payload, arrived_at)) {
    ++dropped_;
    return false;
  }
  ++delivered_;
  return true;
}

FakeDatagramSocket::~FakeDatagramSocket() {
  network_->unbind(local_);
}

bool FakeDatagramSocket::enqueue(const SocketAddress& from, const SocketAddress& to,
                                 Bytes payload, TimePoint arrived_at) {
  if (queue_.size() >= capacity_) return false;
  queue_.push_back(
      Queued{from, to, std::vector<std::uint8_t>(payload.begin(), payload.end()), arrived_at});
  ready_.set();
  return true;
}

SysResult<std::size_t> FakeDatagramSocket::receive_batch(std::span<ReceivedDatagram> batch) {
  std::size_t n = 0;
  while (n < batch.size() && !queue_.empty()) {
    Queued& q = queue_.front();
    ReceivedDatagram& d = batch[n];
    d.length = std::min(q.payload.size(), d.buffer.size());
    d.truncated = q.payload.size() > d.buffer.size();
    std::copy_n(q.payload.begin(), d.length, d.buffer.begin());
    d.source = q.source;
    d.destination = q.destination;
    d.queued_for = std::clamp<Duration>(network_->clock_now() - q.arrived_at, 0, kMaxQueued);
    d.segment_size = 0;
    const std::size_t size = q.payload.size();
    queue_.pop_front();
    // GRO: the datagrams after it of the same flow and size join the read.
    std::size_t segments = 1;
    while (coalesce_ && !d.truncated && size > 0 && !queue_.empty() && segments < 64) {
      const Queued& next = queue_.front();
      if (next.source != d.source || next.destination != d.destination ||
          next.payload.empty() || next.payload.size() > size ||
          d.length + next.payload.size() > d.buffer.size()) {
        break;
      }
      std::copy(next.payload.begin(), next.payload.end(), d.buffer.begin() + d.length);
      d.length += next.payload.size();
      const bool last = next.payload.size() < size;
      queue_.pop_front();
      ++segments;
      if (last) break;
    }
    if (segments > 1) d.segment_size = static_cast<std::int64_t>(size);
    ++n;
  }
  if (queue_.empty()) ready_.clear();
  return n;
}

SysResult<std::size_t> FakeDatagramSocket::send_batch(std::span<const OutgoingDatagram> batch) {
  if (network_->batch_observer_) network_->batch_observer_(local_, batch);
  for (const OutgoingDatagram& d : batch) {
    SocketAddress from{d.source.value_or(local_.ip.is_unspecified() ? host_ : local_.ip),
                       local_.port};
    network_->send(from, d.destination, d.payload);
  }
  return batch.size();
}

}  // namespace buckwild::daemon
