// UDP sockets for the underlay, moving datagrams in batches (recvmmsg /
// sendmmsg) between the kernel and caller-owned buffers.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/common/bytes.h"
#include "core/common/socket_address.h"
#include "core/common/time.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

// One datagram slot for receive_batch. The caller points `buffer` at storage
// (a PacketPool buffer); the socket fills in the rest.
struct ReceivedDatagram {
  ReceivedDatagram() = default;
  // A slot that receives into `storage`: `ReceivedDatagram slot{buffer};`.
  ReceivedDatagram(MutableBytes storage)
      : buffer(storage) {}  // NOLINT(google-explicit-constructor)

  MutableBytes buffer;        // in: where the payload goes
  std::size_t length = 0;     // out: payload bytes written to buffer
  bool truncated = false;     // out: the datagram was longer than buffer
  // out: 0 for one datagram; else the read is several datagrams of the same
  // source and destination coalesced by the kernel (UDP GRO), each this long
  // but the last (split_coalesced in udp_control.h). Only on a socket that
  // enable_coalesced_reads() turned on.
  std::int64_t segment_size = 0;
  SocketAddress source;       // out: the sender
  SocketAddress destination;  // out: the local address and port it was sent to
  // out: how long it had waited in the kernel when receive_batch read it,
  // from the kernel's receive stamp (0 without one), within [0, kMaxQueued].
  // Its arrival on any clock is that clock's present reading minus this: a
  // daemon that reads late still measures round trips and the peer's clock
  // from the arrival.
  Duration queued_for = 0;
};

// A longer wait than this is taken for a step of the system clock between
// the stamp and the read, and counted as this.
inline constexpr Duration kMaxQueued = seconds(5);

// One datagram for send_batch.
struct OutgoingDatagram {
  Bytes payload;
  SocketAddress destination;
  // The local address to send from (IP_PKTINFO / IPV6_PKTINFO), for a socket
  // bound to the unspecified address that must answer from the address the
  // peer used. nullopt: the kernel chooses.
  std::optional<IpAddress> source;
};

// How many datagrams from batch[0] on one UDP_SEGMENT (GSO) send carries:
// those with batch[0]'s destination and source and its size (> 0), where the
// last may be shorter (and ends the run), at most kMaxGsoSegments and
// kMaxGsoBytes of payload in all. 1 when batch[0] goes alone; 0 for an empty
// batch.
inline constexpr std::size_t kMaxGsoSegments = 64;        // the kernel's UDP_MAX_SEGMENTS
inline constexpr std::size_t kMaxGsoBytes = 65535 - 20 - 8;  // one IPv4 datagram's payload
std::size_t gso_run_length(std::span<const OutgoingDatagram> batch);

// What this thread's UDP sockets do with offloads, and what came of it
// (status → udp_offload): one per worker, each counting its own sockets
// without a lock; status adds the workers' up.
struct UdpOffloadStats {
  std::string gso = "off";  // "on", "off (network.udp_offload = false)", "refused ..."
  std::string gro = "off";
  std::uint64_t gso_sends = 0;      // sendmmsg messages that carried several datagrams
  std::uint64_t gso_datagrams = 0;  // the datagrams they carried
  std::uint64_t gso_refused = 0;    // such messages the kernel refused (resent singly)
  std::uint64_t gro_reads = 0;      // reads that returned several coalesced datagrams
  std::uint64_t gro_datagrams = 0;  // the datagrams split from them
  std::uint64_t gro_malformed = 0;  // coalesced reads dropped for a bad segment size
};
UdpOffloadStats& udp_offload_stats();

// The interface the data path uses (STYLE rule 8): UdpSocket is the real one,
// FakeDatagramNetwork hands out in-memory ones.
class DatagramSocket {
 public:
  virtual ~DatagramSocket() = default;
  // Readable while datagrams are waiting (for EventLoop::watch_fd).
  virtual int fd() const = 0;
  // The bound address and port (the real port when 0 was asked for).
  virtual SocketAddress local_address() const = 0;
  // Fills batch[0..k) and returns k; 0 when nothing is waiting. Never blocks.
  virtual SysResult<std::size_t> receive_batch(std::span<ReceivedDatagram> batch) = 0;
  // Sends batch in order and returns how many were consumed: sent, or
  // refused by the kernel for that datagram alone (EMSGSIZE, ENETUNREACH,
  // EPERM from a firewall, a destination of the wrong family...), which is
  // counted in send_errors(). Returns less than batch.size() only when the
  // socket buffer is full (EAGAIN/ENOBUFS): watch for kWritable and resend the
  // rest. Errors only for a broken socket (EBADF, ENOTSOCK, EFAULT).
  virtual SysResult<std::size_t> send_batch(std::span<const OutgoingDatagram> batch) = 0;
  // Datagrams dropped by send_batch, and the errno of the latest.
  virtual std::uint64_t send_errors() const = 0;
  virtual int last_send_errno() const = 0;
  // Asks the kernel to coalesce runs of datagrams of one flow into one read
  // (UDP_GRO); the receiver then needs buffers of 64 KiB and must split reads
  // (ReceivedDatagram::segment_size). true when it is on.
  virtual bool enable_coalesced_reads() { return false; }
  virtual bool coalesces_reads() const { return false; }
};

struct UdpSocketOptions {
  SocketAddress bind_address;          // port 0: the kernel picks one
  int receive_buffer_bytes = 4 << 20;  // SO_RCVBUF(FORCE); 0 = leave the default
  int send_buffer_bytes = 4 << 20;     // SO_SNDBUF(FORCE); 0 = leave the default
  // UDP offloads ([network] udp_offload): runs of datagrams sent with
  // UDP_SEGMENT (where the kernel takes it), and enable_coalesced_reads allowed.
  bool offload = true;
  // SO_REUSEPORT: the workers each bind the discovery port, and their
  // hopping ports may meet; the eBPF path's sk_lookup picks the socket
  // (docs/architecture.md "Workers"), never the kernel's reuseport hash.
  bool reuse_port = false;
};

class UdpSocket final : public DatagramSocket {
 public:
  // Most datagrams one system call moves.
  static constexpr std::size_t kMaxBatch = 64;

  // Creates a non-blocking socket bound to options.bind_address. An IPv6
  // wildcard ("::") socket also receives IPv4 (dual stack); its IPv4 peers
  // appear as plain IPv4 addresses. Buffer sizes are forced beyond the sysctl
  // limits when the process has CAP_NET_ADMIN, else capped by them. Errors:
  //   EADDRINUSE    "port N is already in use" (another buckwild running?),
  //   EACCES        ports below 1024 need CAP_NET_BIND_SERVICE,
  //   EADDRNOTAVAIL the address is not one of this host's.
  static SysResult<std::unique_ptr<UdpSocket>> bind(const UdpSocketOptions& options);
  ~UdpSocket() override;

  int fd() const override { return fd_.get(); }
  SocketAddress local_address() const override { return local_; }
  SysResult<std::size_t> receive_batch(std::span<ReceivedDatagram> batch) override;
  SysResult<std::size_t> send_batch(std::span<const OutgoingDatagram> batch) override;
  std::uint64_t send_errors() const override { return send_errors_; }
  int last_send_errno() const override { return last_send_errno_; }
  bool enable_coalesced_reads() override;
  bool coalesces_reads() const override { return gro_; }
  bool sends_gso() const { return gso_; }

  // The buffer sizes the kernel actually granted (it reports twice what was
  // set, to account for bookkeeping).
  int receive_buffer_bytes() const;
  int send_buffer_bytes() const;

 private:
  struct Scratch;  // per-call arrays for recvmmsg/sendmmsg, allocated once

  UdpSocket(UniqueFd fd, SocketAddress local, IpFamily family, bool offload);
  // Message `slot` sends `run` (one datagram, or a GSO run of several) from
  // iovecs [iov_at, iov_at + run.size()).
  bool prepare_send(std::size_t slot, std::size_t iov_at, std::span<const OutgoingDatagram> run);
  void gso_refused(int err);

  UniqueFd fd_;
  SocketAddress local_;
  IpFamily family_;
  std::unique_ptr<Scratch> scratch_;
  std::uint64_t send_errors_ = 0;
  int last_send_errno_ = 0;
  bool offload_;
  bool gso_ = false;         // runs go as UDP_SEGMENT sends
  bool gso_worked_ = false;  // one did: a later EINVAL is that run's, not the kernel's
  bool gro_ = false;
};

}  // namespace buckwild::daemon
