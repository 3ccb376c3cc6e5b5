// The virtual network interface: IP packets in and out of the kernel.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/common/bytes.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

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
  // Hands one IP packet to the kernel. Errors: the write(2) errno (EINVAL for a
  // malformed packet, EAGAIN if the kernel cannot take it now: drop it).
  virtual SysResult<void> write_packet(Bytes packet) = 0;
};

// A real TUN device from /dev/net/tun (IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL).
// Not persistent: the kernel deletes the interface, with its addresses and
// routes, when this object closes the descriptor.
class LinuxTunDevice final : public TunDevice {
 public:
  // Creates interface `name` (1..15 characters; "bw%d" lets the kernel pick
  // the number). Errors, with errno and a sentence that says what to do:
  //   ENOENT  /dev/net/tun is missing (load the tun module),
  //   EPERM / EACCES  not allowed (needs CAP_NET_ADMIN: run as root),
  //   EBUSY / EEXIST  an interface with that name exists already,
  //   EINVAL  the name is too long or invalid.
  static SysResult<std::unique_ptr<LinuxTunDevice>> open(std::string_view name);

  int fd() const override { return fd_.get(); }
  const std::string& name() const override { return name_; }
  // Kernel interface index, for netlink.
  int ifindex() const { return ifindex_; }
  SysResult<std::size_t> read_packet(MutableBytes buffer) override;
  SysResult<void> write_packet(Bytes packet) override;

 private:
  LinuxTunDevice(UniqueFd fd, std::string name, int ifindex)
      : fd_(std::move(fd)), name_(std::move(name)), ifindex_(ifindex) {}

  UniqueFd fd_;
  std::string name_;
  int ifindex_;
};

}  // namespace buckwild::daemon
