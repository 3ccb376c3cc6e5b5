// An in-memory TunDevice for tests and simulations: the test plays the kernel.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "daemon/os/testing/readiness_flag.h"
#include "daemon/net/tun_device.h"

namespace buckwild::daemon {

class FakeTunDevice final : public TunDevice {
 public:
  // `capacity`: packets the kernel side may queue before inject() drops.
  explicit FakeTunDevice(std::string name, std::size_t capacity = 1024)
      : name_(std::move(name)), capacity_(capacity) {}

  // TunDevice: fd() is readable while injected packets are waiting.
  int fd() const override { return ready_.fd(); }
  const std::string& name() const override { return name_; }
  // A GSO packet injected with inject_gso() comes out split here, whole from
  // read_whole() (if TCP), as from a LinuxTunDevice with offloads.
  SysResult<std::size_t> read_packet(MutableBytes buffer) override;
  SysResult<WholeRead> read_whole(MutableBytes buffer) override;
  void split_gso() override;
  SysResult<void> write_packet(Bytes packet) override;
  bool takes_gso() const override { return takes_gso_; }
  bool takes_udp_gso() const override { return takes_gso_ && takes_udp_gso_; }
  // Splits the super-packet as the kernel would (offload::gso_split) and
  // records its segments as written; counts it in gso_writes().
  SysResult<void> write_gso(const offload::VnetHeader& header, Bytes packet) override;

  // Makes the device take GSO writes (a TUN with offloads).
  void set_takes_gso(bool on) { takes_gso_ = on; }
  // UDP_L4 super-packets too (a kernel with USO), while takes_gso().
  void set_takes_udp_gso(bool on) { takes_udp_gso_ = on; }
  // write_gso() calls that carried more than one segment.
  std::size_t gso_writes() const { return gso_writes_; }

  // The kernel routes `packet` into the tunnel. False (and counted in
  // dropped()) when the queue is full.
  bool inject(Bytes packet);
  // The kernel hands over a GSO super-packet with its vnet header (checked
  // with offload::plan_split when read; a malformed one is dropped, counted
  // in refused()). False (and counted in dropped()) when the queue is full.
  bool inject_gso(const offload::VnetHeader& header, Bytes packet);
  // Injected GSO packets read_whole() handed out whole and no one split.
  std::size_t taken_whole() const { return taken_whole_; }
  std::size_t refused() const { return refused_; }
  // The oldest packet the daemon wrote, if any.
  std::optional<std::vector<std::uint8_t>> take_written();
  std::size_t written_count() const { return written_.size(); }
  std::size_t pending_count() const { return inbound_.size(); }
  std::size_t dropped() const { return dropped_; }

  // Makes the next write_packet() calls fail with `err` (0 = stop failing).
  void fail_writes_with(int err) { write_errno_ = err; }
  // Makes read_packet() fail with `err` and fd() readable, as a device that
  // was deleted under the daemon (0 = stop failing).
  void fail_reads_with(int err);
  // read_packet() calls so far, failed ones included.
  std::size_t reads() const { return reads_; }

 private:
  std::string name_;
  std::size_t capacity_;
  struct Inbound {
    std::vector<std::uint8_t> packet;
    std::optional<offload::VnetHeader> gso;  // inject_gso()
  };
  // The front packet's turn: a GSO one is replaced by its segments (or
  // dropped if malformed). False when nothing is waiting.
  bool next_plain();
  // Puts the segments of `packet` at the front of the queue; false if
  // malformed (counted).
  bool split_front(const offload::VnetHeader& header, const std::vector<std::uint8_t>& packet);
  std::deque<Inbound> inbound_;  // kernel -> daemon
  std::vector<std::uint8_t> whole_;  // the GSO packet read_whole() handed out
  std::optional<offload::VnetHeader> whole_header_;  // set while whole_ may still be split
  std::size_t taken_whole_ = 0;
  std::size_t refused_ = 0;
  std::deque<std::vector<std::uint8_t>> written_;  // daemon -> kernel
  std::size_t dropped_ = 0;
  int write_errno_ = 0;
  int read_errno_ = 0;
  std::size_t reads_ = 0;
  bool takes_gso_ = false;
  bool takes_udp_gso_ = false;
  std::size_t gso_writes_ = 0;
  ReadinessFlag ready_;
};

}  // namespace buckwild::daemon
