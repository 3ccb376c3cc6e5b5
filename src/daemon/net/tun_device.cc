#include "daemon/net/tun_device.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace buckwild::daemon {

SysResult<std::unique_ptr<LinuxTunDevice>> LinuxTunDevice::open(std::string_view name) {
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
  ifr.ifr_flags =
      static_cast<short>(static_cast<std::uint16_t>(IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL));
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
  return std::unique_ptr<LinuxTunDevice>(
      new LinuxTunDevice(std::move(fd), std::move(actual), index));
}

SysResult<std::size_t> LinuxTunDevice::read_packet(MutableBytes buffer) {
  for (;;) {
    ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return sys_fail(errno, "read from TUN device " + name_ + " failed");
  }
}

SysResult<void> LinuxTunDevice::write_packet(Bytes packet) {
  for (;;) {
    ssize_t n = ::write(fd_.get(), packet.data(), packet.size());
    if (n >= 0) return {};
    if (errno == EINTR) continue;
    return sys_fail(errno, "write to TUN device " + name_ + " failed");
  }
}

}  // namespace buckwild::daemon
