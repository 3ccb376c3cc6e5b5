#include "daemon/net/testing/fake_tun_device.h"

#include <algorithm>

namespace buckwild::daemon {

bool FakeTunDevice::split_front(const offload::VnetHeader& header,
                                const std::vector<std::uint8_t>& packet) {
  offload::SplitResult r = offload::plan_split(header, packet);
  if (!r.plan) {
    ++refused_;
    return false;
  }
  for (std::size_t i = r.plan->count; i-- > 0;) {
    std::vector<std::uint8_t> seg(r.plan->max_size);
    seg.resize(offload::write_segment(*r.plan, packet, i, seg));
    inbound_.push_front(Inbound{std::move(seg), std::nullopt});
  }
  return true;
}

bool FakeTunDevice::next_plain() {
  while (!inbound_.empty() && inbound_.front().gso) {
    Inbound gso = std::move(inbound_.front());
    inbound_.pop_front();
    split_front(*gso.gso, gso.packet);
  }
  if (inbound_.empty()) ready_.clear();
  return !inbound_.empty();
}

SysResult<std::size_t> FakeTunDevice::read_packet(MutableBytes buffer) {
  ++reads_;
  whole_header_.reset();
  if (read_errno_ != 0) return sys_fail(read_errno_, "read from fake TUN device " + name_ + " failed");
  if (!next_plain()) return std::size_t{0};
  const auto& p = inbound_.front().packet;
  std::size_t n = std::min(p.size(), buffer.size());  // truncates, as a real TUN does
  std::copy_n(p.begin(), n, buffer.begin());
  inbound_.pop_front();
  if (inbound_.empty()) ready_.clear();
  return n;
}

SysResult<TunDevice::WholeRead> FakeTunDevice::read_whole(MutableBytes buffer) {
  whole_header_.reset();
  if (read_errno_ == 0 && !inbound_.empty() && inbound_.front().gso) {
    Inbound& front = inbound_.front();
    offload::SplitResult r = offload::plan_split(*front.gso, front.packet);
    const bool tcp = r.plan && (r.plan->kind == offload::gso_type::kTcpV4 ||
                                r.plan->kind == offload::gso_type::kTcpV6);
    if (tcp && r.plan->count > 1) {
      ++reads_;
      whole_ = std::move(front.packet);
      whole_header_ = front.gso;
      inbound_.pop_front();
      if (inbound_.empty()) ready_.clear();
      ++taken_whole_;
      return WholeRead{0, GsoPacket{*whole_header_, MutableBytes(whole_), r.plan->count}};
    }
  }
  auto n = read_packet(buffer);
  if (!n) return std::unexpected(n.error());
  return WholeRead{*n, std::nullopt};
}

void FakeTunDevice::split_gso() {
  if (!whole_header_) return;
  const offload::VnetHeader header = *whole_header_;
  whole_header_.reset();
  --taken_whole_;
  if (split_front(header, whole_)) ready_.set();
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
  if (r.plan->kind == offload::gso_type::kUdpL4 && !takes_udp_gso()) {
    return sys_fail(EINVAL, "fake TUN device " + name_ + " takes no UDP_L4 writes (a kernel before 6.2)");
  }
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
  inbound_.push_back(Inbound{std::vector<std::uint8_t>(packet.begin(), packet.end()), std::nullopt});
  ready_.set();
  return true;
}

bool FakeTunDevice::inject_gso(const offload::VnetHeader& header, Bytes packet) {
  if (inbound_.size() >= capacity_) {
    ++dropped_;
    return false;
  }
  inbound_.push_back(Inbound{std::vector<std::uint8_t>(packet.begin(), packet.end()), header});
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
