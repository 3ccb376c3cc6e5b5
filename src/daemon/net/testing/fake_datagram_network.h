// An in-memory UDP network: sockets bound in one FakeDatagramNetwork deliver
// to each other, so two daemons can be wired together inside one test process
// (wireguard-go's channel binds). A filter lets a test drop or inspect traffic.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "daemon/os/testing/readiness_flag.h"
#include "daemon/net/udp_socket.h"

namespace buckwild::daemon {

class FakeDatagramSocket;

class FakeDatagramNetwork {
 public:
  // Decides the fate of each datagram: true delivers it, false drops it.
  using Filter =
      std::function<bool(const SocketAddress& from, const SocketAddress& to, Bytes payload)>;

  FakeDatagramNetwork() = default;
  FakeDatagramNetwork(const FakeDatagramNetwork&) = delete;
  FakeDatagramNetwork& operator=(const FakeDatagramNetwork&) = delete;
  // Every socket must be destroyed before the network (asserted).
  ~FakeDatagramNetwork();

  // Binds a socket at `address`; port 0 picks a free port from 49152 up.
  // `host` is the address a socket bound to the unspecified address sends
  // from (defaults to the bound address). `queue_capacity` datagrams may wait
  // before delivery drops (like a full socket buffer).
  // Errors: EADDRINUSE when the address and port are taken, as the kernel says.
  SysResult<std::unique_ptr<FakeDatagramSocket>> bind(SocketAddress address,
                                                      std::optional<IpAddress> host = std::nullopt,
                                                      std::size_t queue_capacity = 1024);

  void set_filter(Filter filter) { filter_ = std::move(filter); }

  // Sees every send_batch call, before its datagrams go through the filter:
  // the sending socket's bound address and the batch (one system call).
  using BatchObserver =
      std::function<void(const SocketAddress& from, std::span<const OutgoingDatagram> batch)>;
  void set_batch_observer(BatchObserver observer) { batch_observer_ = std::move(observer); }

  // UDP GRO as the kernel does it: a socket that enable_coalesced_reads()
  // asked for it reads consecutive queued datagrams of one source and
  // destination and one size (the last may be shorter), up to 64 and the
  // slot's buffer, as one coalesced read. Off by default (the kernel without it).
  void set_gro(bool on) { gro_ = on; }
  bool gro() const { return gro_; }

  // The clock a datagram's arrival is taken on, so that a socket reports how
  // long each waited before it was read (ReceivedDatagram::queued_for).
  // Without one every datagram is read as it arrives.
  void set_clock(std::function<TimePoint()> clock) { clock_ = std::move(clock); }
  // Delivers `payload` (past filter and translator) as if it had arrived at
  // `arrived_at` on that clock: a datagram the receiver reads late. Returns
  // whether a socket took it.
  bool deliver_at(const SocketAddress& from, const SocketAddress& to, Bytes payload,
                  TimePoint arrived_at);

  // A middle box on every path, asked after the filter: it may rewrite the
  // addresses (a NAT) and returns false to drop the datagram.
  using Translator = std::function<bool(SocketAddress& from, SocketAddress& to)>;
  void set_translator(Translator translator) { translator_ = std::move(translator); }

  // An sk_lookup stand-in, asked before the bound sockets: a socket it returns
  // receives the datagram; nullopt leaves it to the bound sockets; nullptr
  // drops it (as a frame filter would). add_lookup returns an id for remove_lookup.
  using Lookup = std::function<std::optional<FakeDatagramSocket*>(const SocketAddress& from,
                                                                  const SocketAddress& to)>;
  std::uint64_t add_lookup(Lookup lookup);
  void remove_lookup(std::uint64_t id);

  // Whether a socket would receive a datagram sent to `to`.
  bool bound(const SocketAddress& to) const { return find(to) != nullptr; }
  // Whether `socket` is still bound (not closed): a steering target of a
  // closed socket is gone, as a closed socket leaves the kernel's sockmap.
  bool is_open(const FakeDatagramSocket* socket, const SocketAddress& at) const {
    auto it = sockets_.find(at);
    return it != sockets_.end() && it->second == socket;
  }

  std::uint64_t delivered() const { return delivered_; }
  // Dropped because nobody was bound there, the queue was full, or the filter said so.
  std::uint64_t dropped() const { return dropped_; }

 private:
  friend class FakeDatagramSocket;
  void send(const SocketAddress& from, const SocketAddress& to, Bytes payload);
  bool route(const SocketAddress& from, const SocketAddress& to, Bytes payload,
             TimePoint arrived_at);
  TimePoint clock_now() const { return clock_ ? clock_() : 0; }
  void unbind(const SocketAddress& address);
  FakeDatagramSocket* find(const SocketAddress& to) const;

  std::map<SocketAddress, FakeDatagramSocket*> sockets_;
  Filter filter_;
  BatchObserver batch_observer_;
  Translator translator_;
  std::function<TimePoint()> clock_;
  std::map<std::uint64_t, Lookup> lookups_;
  std::uint64_t next_lookup_ = 1;
  std::uint16_t next_port_ = 49152;
  std::uint64_t delivered_ = 0;
  bool gro_ = false;
  std::uint64_t dropped_ = 0;
};

class FakeDatagramSocket final : public DatagramSocket {
 public:
  ~FakeDatagramSocket() override;

  int fd() const override { return ready_.fd(); }
  SocketAddress local_address() const override { return local_; }
  SysResult<std::size_t> receive_batch(std::span<ReceivedDatagram> batch) override;
  // Every datagram is consumed (delivered or dropped by the network).
  SysResult<std::size_t> send_batch(std::span<const OutgoingDatagram> batch) override;
  std::uint64_t send_errors() const override { return 0; }
  int last_send_errno() const override { return 0; }
  bool enable_coalesced_reads() override { return coalesce_ = network_->gro(); }
  bool coalesces_reads() const override { return coalesce_; }

  std::size_t pending() const { return queue_.size(); }

 private:
  friend class FakeDatagramNetwork;
  struct Queued {
    SocketAddress source;
    SocketAddress destination;
    std::vector<std::uint8_t> payload;
    TimePoint arrived_at = 0;  // on the network's clock
  };
  FakeDatagramSocket(FakeDatagramNetwork* network, SocketAddress local, IpAddress host,
                     std::size_t capacity)
      : network_(network), local_(local), host_(host), capacity_(capacity) {}
  bool enqueue(const SocketAddress& from, const SocketAddress& to, Bytes payload,
               TimePoint arrived_at);

  FakeDatagramNetwork* network_;
  SocketAddress local_;
  IpAddress host_;
  std::size_t capacity_;
  std::deque<Queued> queue_;
  ReadinessFlag ready_;
  bool coalesce_ = false;
};

}  // namespace buckwild::daemon
