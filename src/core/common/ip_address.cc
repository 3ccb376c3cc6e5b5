#include "core/common/ip_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace buckwild {
namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> bytes) {
  IpAddress a;
  a.family_ = IpFamily::kV4;
  std::copy(bytes.begin(), bytes.end(), a.bytes_.begin());
  return a;
}

IpAddress IpAddress::v6(std::array<std::uint8_t, 16> bytes) {
  IpAddress a;
  a.family_ = IpFamily::kV6;
  a.bytes_ = bytes;
  return a;
}

IpAddress IpAddress::any(IpFamily family) {
  IpAddress a;
  a.family_ = family;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a terminated string; every valid literal fits in 46 bytes.
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    a.family_ = IpFamily::kV4;
    if (::inet_pton(AF_INET, buf, a.bytes_.data()) != 1) return std::nullopt;
  } else {
    a.family_ = IpFamily::kV6;
    if (::inet_pton(AF_INET6, buf, a.bytes_.data()) != 1) return std::nullopt;
  }
  return a;
}

bool IpAddress::is_unspecified() const {
  auto b = bytes();
  return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

bool IpAddress::is_loopback() const {
  if (is_v4()) return bytes_[0] == 127;
  if (is_v4_mapped()) return bytes_[12] == 127;
  for (std::size_t i = 0; i < 15; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[15] == 1;
}

bool IpAddress::is_v4_mapped() const {
  return is_v6() && std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), bytes_.begin());
}

IpAddress IpAddress::unmapped() const {
  if (!is_v4_mapped()) return *this;
  return v4({bytes_[12], bytes_[13], bytes_[14], bytes_[15]});
}

IpAddress IpAddress::mapped_v6() const {
  if (is_v6()) return *this;
  std::array<std::uint8_t, 16> b{};
  std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), b.begin());
  std::copy(bytes_.begin(), bytes_.begin() + 4, b.begin() + 12);
  return v6(b);
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  const char* s = ::inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return s != nullptr ? std::string(s) : std::string("?");
}

}  // namespace buckwild

std::size_t std::hash<buckwild::IpAddress>::operator()(
    const buckwild::IpAddress& a) const noexcept {
  // FNV-1a over family and bytes: cheap, and good enough for table keys that
  // come from our own configuration and session set-up.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ULL;
  };
  mix(static_cast<std::uint8_t>(a.family()));
  for (std::uint8_t b : a.bytes()) mix(b);
  return static_cast<std::size_t>(h);
}
