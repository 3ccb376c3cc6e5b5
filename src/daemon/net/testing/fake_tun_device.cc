#include "daemon/net/testing/fake_tun_device.h"

#include <algorithm>

namespace buckwild::daemon {

SysResult<std::size_t> FakeTunDevice::read_packet(MutableBytes buffer) {
  ++reads_;
  if (read_errno_ != 0) return sys_fail(read_errno_, "read from fake TUN device " + name_ + " failed");
  if (inbound_.empty()) return std::size_t{0};
  const auto& p = inbound_.front();
  std::size_t n = std::min(p.size(), buffer.size());  // truncates, as a real TUN does
  std::copy_n(p.begin(), n, buffer.begin());
  inbound_.pop_front();
  if (inbound_.empty()) ready_.clear();
  return n;
}

void FakeTunDevice::fail_reads_with(int err) {
  read_errno_ = err;
  // A failing device stays readable, as a real one in error does.
  if (err != 0) {
    ready_.set();
  } else if (inbound_.empty()) {
    ready_.clear();
  }
}

SysResult<void> FakeTunDevice::write_packet(Bytes packet) {
  if (write_errno_ != 0)
    return sys_fail(write_errno_, "write to fake TUN device " + name_ + " failed");
  written_.emplace_back(packet.begin(), packet.end());
  return {};
}

SysResult<void> FakeTunDevice::write_gso(const offload::VnetHeader& header, Bytes packet) {
  if (!takes_gso_) return sys_fail(EINVAL, "fake TUN device " + name_ + " takes no GSO writes");
  if (write_errno_ != 0)
    return sys_fail(write_errno_, "write to fake TUN device " + name_ + " failed");
  offload::SplitResult r = offload::plan_split(header, packet);
  if (!r.plan) return sys_fail(EINVAL, "malformed GSO write to fake TUN device " + name_);
  if (r.plan->is_gso() && r.plan->count > 1) ++gso_writes_;
  for (std::size_t i = 0; i < r.plan->count; ++i) {
    std::vector<std::uint8_t> seg(r.plan->max_size);
    seg.resize(offload::write_segment(*r.plan, packet, i, seg));
    written_.push_back(std::move(seg));
  }
  return {};
}

bool FakeTunDevice::inject(Bytes packet) {
  if (inbound_.size() >= capacity_) {
    ++dropped_;
    return false;
  }
  inbound_.emplace_back(packet.begin(), packet.end());
  ready_.set();
  return true;
}

std::optional<std::vector<std::uint8_t>> FakeTunDevice::take_written() {
  if (written_.empty()) return std::nullopt;
  auto p = std::move(written_.front());
  written_.pop_front();
  return p;
}

}  // namespace buckwild::daemon
