// The virtual network interface: IP packets in and out of the kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/bytes.h"
#include "core/offload/gso_split.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

// What the TUN offloads did (LinuxTunDevice with offloads on).
struct TunOffloadStats {
  std::uint64_t gso_reads = 0;      // reads that returned a GSO super-packet
  std::uint64_t gso_segments = 0;   // packets split from them (not from those taken whole)
  std::uint64_t checksums_completed = 0;  // single packets whose checksum we finished
  std::uint64_t refused = 0;        // reads dropped: malformed vnet header or packet
};

// One IP packet per read or write, no extra header (IFF_NO_PI). The descriptor
// is non-blocking and becomes readable when the kernel has a packet for the
// tunnel (watch it with EventLoop::watch_fd).
class TunDevice {
 public:
  virtual ~TunDevice() = default;
  // A descriptor that is readable while packets are waiting.
  virtual int fd() const = 0;
  virtual const std::string& name() const = 0;
  // Reads one packet into `buffer`. Returns its length, or 0 when none is
  // waiting. A packet longer than `buffer` is truncated (keep buffers at least
  // the device MTU). Errors: the read(2) errno.
  virtual SysResult<std::size_t> read_packet(MutableBytes buffer) = 0;

  // A TCP GSO super-packet as the kernel handed it over, before any split.
  struct GsoPacket {
    offload::VnetHeader header;  // as read; write_gso() takes it back unchanged
    // The IP packet, in the device's own memory: valid, and writable in
    // place, until the next read_packet(), read_whole() or split_gso().
    MutableBytes packet;
    std::size_t segments = 0;  // the packets a split would make (> 1)
  };
  struct WholeRead {
    std::size_t size = 0;          // a packet of this many bytes in the buffer
    std::optional<GsoPacket> gso;  // or, size 0, a TCP GSO super-packet whole
  };
  // As read_packet(), except that a TCP GSO super-packet (TSO4/TSO6) is handed
  // out whole in `gso` for a caller that can take it so (a NAT rewrite that
  // writes it back with write_gso()). The caller that cannot calls
  // split_gso(): read_packet() and read_whole() then return its segments as
  // if it had never been handed out. Devices that read no GSO packets keep the
  // default: read_packet(). Errors: as read_packet().
  virtual SysResult<WholeRead> read_whole(MutableBytes buffer) {
    auto n = read_packet(buffer);
    if (!n) return std::unexpected(n.error());
    return WholeRead{*n, std::nullopt};
  }
  // Splits the GSO packet the last read_whole() handed out (see there); no
  // effect after any other read.
  virtual void split_gso() {}
  // Hands one IP packet to the kernel. Errors: the write(2) errno (EINVAL for a
  // malformed packet, EAGAIN if the kernel cannot take it now: drop it).
  virtual SysResult<void> write_packet(Bytes packet) = 0;
  // True while packets already taken from the kernel wait in this object (the
  // rest of a split TSO read): read_packet() returns them even when fd() is
  // not readable, so a reader that stops early must come back without waiting
  // for readiness. Devices that never hold packets keep the default.
  virtual bool has_pending() const { return false; }
  // Counters of the offloads; all zero for a device without them.
  virtual TunOffloadStats offload_stats() const { return {}; }
  // True when write_gso() works: the device takes GSO super-packets.
  virtual bool takes_gso() const = 0;
  // True when write_gso() takes UDP_L4 (USO) super-packets too (Linux 6.2).
  virtual bool takes_udp_gso() const { return false; }
  // Hands the kernel one packet with its vnet header: a GSO super-packet of
  // TCP segments or UDP datagrams coalesced by offload::GroCoalescer (the
  // kernel receives TCP as one large segment, as after GRO, and splits UDP
  // back into its datagrams), or a single packet with a zero header. Only
  // when takes_gso(). Errors: as write_packet().
  virtual SysResult<void> write_gso(const offload::VnetHeader& header, Bytes packet) = 0;
};


// A real TUN device from /dev/net/tun (IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL).
// Not persistent: the kernel deletes the interface, with its addresses and
// routes, when this object closes the descriptor.
//
// With offloads (IFF_VNET_HDR and TUNSETOFFLOAD: checksum, TSO4, TSO6, and
// USO4/USO6 where the kernel has them) every read and write carries a
// virtio_net_hdr. The kernel then hands over up to 64 KiB of one TCP (or UDP)
// flow per read; read_packet() splits it (core/offload/gso_split) and returns
// the segments one per call, as a plain device would have, and completes
// checksums the kernel left to us; read_whole() hands a TCP one out whole
// instead. Writes go out singly with a zero header, or with write_gso().
class LinuxTunDevice final : public TunDevice {
 public:
  // Creates interface `name` (1..15 characters; "bw%d" lets the kernel pick
  // the number), with offloads if `offload` and the kernel accepts them
  // (otherwise as a plain device: offload_mode() says which). Errors, with
  // errno and a sentence that says what to do:
  //   ENOENT  /dev/net/tun is missing (load the tun module),
  //   EPERM / EACCES  not allowed (needs CAP_NET_ADMIN: run as root),
  //   EBUSY / EEXIST  an interface with that name exists already,
  //   EINVAL  the name is too long or invalid.
  // `queues` > 1: a multi-queue device (IFF_MULTI_QUEUE), this object its
  // first queue; attach_queue() opens the others.
  static SysResult<std::unique_ptr<LinuxTunDevice>> open(std::string_view name,
                                                         bool offload = false,
                                                         std::uint32_t queues = 1);
  // Another queue of this multi-queue device: its own descriptor, read and
  // written by another worker, with the same offloads. The kernel hands each
  // packet leaving the interface to one queue (set_steering decides which).
  SysResult<std::unique_ptr<LinuxTunDevice>> attach_queue() const;
  // TUNSETSTEERINGEBPF: `program` (a socket filter) returns the queue of each
  // packet leaving the interface.
  SysResult<void> set_steering(int program);

  int fd() const override { return fd_.get(); }
  const std::string& name() const override { return name_; }
  // Kernel interface index, for netlink.
  int ifindex() const { return ifindex_; }
  SysResult<std::size_t> read_packet(MutableBytes buffer) override;
  SysResult<WholeRead> read_whole(MutableBytes buffer) override;
  void split_gso() override;
  SysResult<void> write_packet(Bytes packet) override;
  bool has_pending() const override { return plan_ && next_ < plan_->count; }
  bool takes_gso() const override { return vnet_; }
  bool takes_udp_gso() const override { return uso_; }
  SysResult<void> write_gso(const offload::VnetHeader& header, Bytes packet) override;

  // True when reads and writes carry a vnet header (offloads on).
  bool offloading() const { return vnet_; }
  // One line for the start-up log: the offloads in use, or why none.
  const std::string& offload_mode() const { return mode_; }
  TunOffloadStats offload_stats() const override { return offload_stats_; }

 private:
  LinuxTunDevice(UniqueFd fd, std::string name, int ifindex)
      : fd_(std::move(fd)), name_(std::move(name)), ifindex_(ifindex) {}
  // `attach`: another queue of the multi-queue device `name`.
  static SysResult<std::unique_ptr<LinuxTunDevice>> create(std::string_view name, bool vnet,
                                                           bool multi_queue = false,
                                                           bool attach = false);
  // TUNSETVNETLE and TUNSETOFFLOAD on a vnet descriptor; false with why in mode_.
  bool set_offloads();
  // The offload read: the next packet, or segment of a split; a TCP GSO
  // packet whole if `whole`.
  SysResult<WholeRead> read_vnet(MutableBytes buffer, bool whole);

  UniqueFd fd_;
  std::string name_;
  int ifindex_;
  bool vnet_ = false;
  bool uso_ = false;  // TUNSETOFFLOAD took USO4/USO6
  bool multi_queue_ = false;
  std::string mode_ = "off";
  // Offloads: the last read (vnet header + packet) and how far its split got.
  std::vector<std::uint8_t> rx_;
  std::size_t rx_len_ = 0;
  std::optional<offload::SplitPlan> plan_;
  std::size_t next_ = 0;
  bool handed_whole_ = false;  // read_whole() handed out rx_ whole; split_gso() may split it
  TunOffloadStats offload_stats_;
};

}  // namespace buckwild::daemon
