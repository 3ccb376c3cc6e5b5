#include "daemon/net/tun_device.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

// USO arrived in Linux 6.2; older headers lack the flags.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace buckwild::daemon {
namespace {

// The largest packet a TUN read can return with a vnet header: 64 KiB of IP
// packet (the kernel's GSO limit for a TUN) after the header.
constexpr std::size_t kReadSpace = offload::kVnetHeaderSize + 65536;
// Reads in a row that may be refused before read_packet() reports "none
// waiting" (the descriptor stays readable, so the loop comes back).
constexpr int kMaxRefusedInARow = 64;

}  // namespace

bool LinuxTunDevice::set_offloads() {
  // The header's 16-bit fields in little-endian whatever the host (the
  // splitter reads them so).
  int little = 1;
  if (::ioctl(fd_.get(), TUNSETVNETLE, &little) != 0) {
    mode_ = "off (the kernel refused TUNSETVNETLE: ";
    mode_ += std::strerror(errno);
    mode_ += ")";
    return false;
  }
  const unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, base | TUN_F_USO4 | TUN_F_USO6) == 0) {
    mode_ = "on (checksum, TSO4, TSO6, USO4, USO6)";
    uso_ = true;
  } else if (::ioctl(fd_.get(), TUNSETOFFLOAD, base) == 0) {
    mode_ = "on (checksum, TSO4, TSO6; the kernel refused USO: ";
    mode_ += std::strerror(errno);
    mode_ += ")";
  } else {
    mode_ = "off (the kernel refused TUNSETOFFLOAD: ";
    mode_ += std::strerror(errno);
    mode_ += ")";
    return false;
  }
  rx_.resize(kReadSpace);
  return true;
}

SysResult<std::unique_ptr<LinuxTunDevice>> LinuxTunDevice::open(std::string_view name,
                                                                bool offload,
                                                                std::uint32_t queues) {
  const bool multi_queue = queues > 1;
  if (!offload) {
    auto plain = create(name, false, multi_queue);
    if (plain) (*plain)->mode_ = "off (network.tun_offload = false)";
    return plain;
  }
  auto dev = create(name, true, multi_queue);
  if (!dev) return dev;
  if ((*dev)->set_offloads()) return dev;
  const std::string why = (*dev)->mode_;
  dev->reset();  // closing deletes the interface: make it again without offloads
  auto plain = create(name, false, multi_queue);
  if (plain) (*plain)->mode_ = why;
  return plain;
}

SysResult<std::unique_ptr<LinuxTunDevice>> LinuxTunDevice::attach_queue() const {
  if (!multi_queue_) return sys_fail_plain(EINVAL, "TUN device " + name_ + " has one queue");
  auto q = create(name_, vnet_, true, true);
  if (!q) return q;
  if (vnet_ && !(*q)->set_offloads()) {
    return sys_fail_plain(EIO, "a new queue of TUN device " + name_ + ": " + (*q)->mode_);
  }
  (*q)->mode_ = mode_;
  return q;
}

SysResult<void> LinuxTunDevice::set_steering(int program) {
  if (::ioctl(fd_.get(), TUNSETSTEERINGEBPF, &program) != 0) {
    return sys_fail(errno, "cannot set the queue steering program of TUN device " + name_);
  }
  return {};
}

SysResult<std::unique_ptr<LinuxTunDevice>> LinuxTunDevice::create(std::string_view name,
                                                                  bool vnet, bool multi_queue,
                                                                  bool attach) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return sys_fail_plain(EINVAL, "invalid TUN device name \"" + std::string(name) +
                                      "\": it must be 1.." + std::to_string(IFNAMSIZ - 1) +
                                      " characters");
  }
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    switch (err) {
      case ENOENT:
      case ENODEV:
      case ENXIO:
        return sys_fail(err,
                        "cannot open /dev/net/tun (no TUN support: load the module with "
                        "`modprobe tun`, or in a container pass the device in with "
                        "--device /dev/net/tun)");
      case EPERM:
      case EACCES:
        return sys_fail(err,
                        "cannot open /dev/net/tun (creating a TUN device needs "
                        "CAP_NET_ADMIN: run buckwild as root or with that capability)");
      default:
        return sys_fail(err, "cannot open /dev/net/tun");
    }
  }

  ifreq ifr{};
  // IFF_TUN_EXCL is 0x8000: the top bit of the 16-bit flags field.
  // A further queue attaches to the device the first one made: not exclusive.
  ifr.ifr_flags = static_cast<short>(static_cast<std::uint16_t>(
      IFF_TUN | IFF_NO_PI | (attach ? 0 : IFF_TUN_EXCL) | (vnet ? IFF_VNET_HDR : 0) |
      (multi_queue ? IFF_MULTI_QUEUE : 0)));
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    int err = errno;
    std::string quoted(1, '"');
    quoted.append(name).push_back('"');
    switch (err) {
      case EPERM:
      case EACCES:
        return sys_fail(err, "cannot create TUN device " + quoted +
                                 " (needs CAP_NET_ADMIN: run buckwild as root or with that "
                                 "capability)");
      case EBUSY:
      case EEXIST:
        return sys_fail(err, "cannot create TUN device " + quoted +
                                 ": an interface with that name already exists (another "
                                 "buckwild running? choose another network.virtual_device)");
      case EINVAL:
        return sys_fail(err, "cannot create TUN device " + quoted + " (invalid name)");
      default:
        return sys_fail(err, "cannot create TUN device " + quoted);
    }
  }
  std::string actual(ifr.ifr_name, ::strnlen(ifr.ifr_name, IFNAMSIZ));
  int index = static_cast<int>(::if_nametoindex(actual.c_str()));
  if (index == 0) return sys_fail(errno, "cannot find the index of TUN device " + actual);
  std::unique_ptr<LinuxTunDevice> dev(new LinuxTunDevice(std::move(fd), std::move(actual), index));
  dev->vnet_ = vnet;
  dev->multi_queue_ = multi_queue;
  return dev;
}

SysResult<std::size_t> LinuxTunDevice::read_packet(MutableBytes buffer) {
  if (vnet_) {
    auto r = read_vnet(buffer, false);
    if (!r) return std::unexpected(r.error());
    return r->size;
  }
  for (;;) {
    ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return sys_fail(errno, "read from TUN device " + name_ + " failed");
  }
}

SysResult<TunDevice::WholeRead> LinuxTunDevice::read_whole(MutableBytes buffer) {
  if (vnet_) return read_vnet(buffer, true);
  auto n = read_packet(buffer);
  if (!n) return std::unexpected(n.error());
  return WholeRead{*n, std::nullopt};
}

void LinuxTunDevice::split_gso() {
  if (!handed_whole_) return;
  handed_whole_ = false;
  next_ = 0;
  offload_stats_.gso_segments += plan_->count;
}

SysResult<TunDevice::WholeRead> LinuxTunDevice::read_vnet(MutableBytes buffer, bool whole) {
  handed_whole_ = false;  // what was handed out is the caller's now
  for (int refused = 0; refused < kMaxRefusedInARow;) {
    const Bytes packet(rx_.data() + offload::kVnetHeaderSize, rx_len_);
    if (has_pending()) {
      if (plan_->max_size > buffer.size()) {
        // Segments larger than the caller's buffers (an MTU we were not
        // told of): the whole read is dropped, counted.
        plan_.reset();
        ++offload_stats_.refused;
        ++refused;
        continue;
      }
      return WholeRead{offload::write_segment(*plan_, packet, next_++, buffer), std::nullopt};
    }
    plan_.reset();
    ssize_t n = ::read(fd_.get(), rx_.data(), rx_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return WholeRead{};
      return sys_fail(errno, "read from TUN device " + name_ + " failed");
    }
    const auto header = offload::read_vnet_header(Bytes(rx_.data(), static_cast<std::size_t>(n)));
    if (!header) {
      ++offload_stats_.refused;
      ++refused;
      continue;
    }
    rx_len_ = static_cast<std::size_t>(n) - offload::kVnetHeaderSize;
    offload::SplitResult r =
        offload::plan_split(*header, Bytes(rx_.data() + offload::kVnetHeaderSize, rx_len_));
    if (!r.plan) {
      ++offload_stats_.refused;
      ++refused;
      continue;
    }
    plan_ = r.plan;
    next_ = 0;
    if (r.plan->is_gso()) {
      ++offload_stats_.gso_reads;
      const bool tcp = r.plan->kind == offload::gso_type::kTcpV4 ||
                       r.plan->kind == offload::gso_type::kTcpV6;
      if (whole && tcp && r.plan->count > 1) {
        // Handed out as it is; nothing pending unless split_gso() asks.
        next_ = r.plan->count;
        handed_whole_ = true;
        return WholeRead{0, GsoPacket{*header, MutableBytes(rx_.data() + offload::kVnetHeaderSize, rx_len_),
                                      r.plan->count}};
      }
      offload_stats_.gso_segments += r.plan->count;
    } else if ((header->flags & offload::vnet_flag::kNeedsCsum) != 0) {
      ++offload_stats_.checksums_completed;
    }
  }
  return WholeRead{};
}

SysResult<void> LinuxTunDevice::write_gso(const offload::VnetHeader& header, Bytes packet) {
  std::uint8_t h[offload::kVnetHeaderSize];
  offload::write_vnet_header(header, h);
  iovec iov[2] = {{h, sizeof h}, {const_cast<std::uint8_t*>(packet.data()), packet.size()}};
  for (;;) {
    ssize_t n = ::writev(fd_.get(), iov, 2);
    if (n >= 0) return {};
    if (errno == EINTR) continue;
    return sys_fail(errno, "write to TUN device " + name_ + " failed");
  }
}

SysResult<void> LinuxTunDevice::write_packet(Bytes packet) {
  // With offloads every write starts with a vnet header; all zero: a complete
  // packet, no GSO, checksums done.
  static const std::uint8_t kZeroHeader[offload::kVnetHeaderSize] = {};
  iovec iov[2] = {{const_cast<std::uint8_t*>(kZeroHeader), sizeof kZeroHeader},
                  {const_cast<std::uint8_t*>(packet.data()), packet.size()}};
  for (;;) {
    ssize_t n = vnet_ ? ::writev(fd_.get(), iov, 2) : ::write(fd_.get(), packet.data(), packet.size());
    if (n >= 0) return {};
    if (errno == EINTR) continue;
    return sys_fail(errno, "write to TUN device " + name_ + " failed");
  }
}

}  // namespace buckwild::daemon
