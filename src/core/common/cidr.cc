#include "core/common/cidr.h"

#include <algorithm>
#include <charconv>

namespace buckwild {
namespace {

// Keeps the first `prefix_len` bits of `ip`, clears the rest.
IpAddress mask(const IpAddress& ip, unsigned prefix_len) {
  std::array<std::uint8_t, 16> b{};
  auto src = ip.bytes();
  for (std::size_t i = 0; i < src.size(); ++i) {
    unsigned first_bit = static_cast<unsigned>(i) * 8;
    if (prefix_len >= first_bit + 8) {
      b[i] = src[i];
    } else if (prefix_len > first_bit) {
      auto keep = static_cast<std::uint8_t>(0xff << (8 - (prefix_len - first_bit)));
      b[i] = static_cast<std::uint8_t>(src[i] & keep);
    }
  }
  if (ip.is_v4()) return IpAddress::v4({b[0], b[1], b[2], b[3]});
  return IpAddress::v6(b);
}

// The network address plus one (10.77.0.0/24 -> 10.77.0.1/24). Only used for
// prefixes with at least two host bits, so setting the last bit cannot carry.
Cidr first_host(const Cidr& cidr) {
  IpAddress net = mask(cidr.address, cidr.prefix_len);
  std::array<std::uint8_t, 16> b{};
  auto src = net.bytes();
  std::copy(src.begin(), src.end(), b.begin());
  b[src.size() - 1] |= 1;
  IpAddress host = net.is_v4() ? IpAddress::v4({b[0], b[1], b[2], b[3]}) : IpAddress::v6(b);
  return Cidr{host, cidr.prefix_len};
}

}  // namespace

std::expected<Cidr, std::string> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return std::unexpected(std::string("missing '/LENGTH' (expected ADDRESS/LENGTH)"));
  }
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::unexpected(std::string("not an IP address before '/'"));
  std::string_view len_text = text.substr(slash + 1);
  unsigned len = 0;
  auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (len_text.empty() || ec != std::errc() || end != len_text.data() + len_text.size()) {
    return std::unexpected(std::string("prefix length is not a number"));
  }
  if (len > ip->bits()) {
    return std::unexpected("prefix length " + std::to_string(len) + " is outside 0.." +
                           std::to_string(ip->bits()));
  }
  return Cidr{*ip, static_cast<std::uint8_t>(len)};
}

Cidr Cidr::network() const {
  return Cidr{mask(address, prefix_len), prefix_len};
}

bool Cidr::has_host_bits() const {
  return mask(address, prefix_len) != address;
}

bool Cidr::contains(const IpAddress& ip) const {
  return ip.family() == family() && mask(ip, prefix_len) == mask(address, prefix_len);
}

bool Cidr::contains(const Cidr& other) const {
  return other.family() == family() && other.prefix_len >= prefix_len && contains(other.address);
}

bool Cidr::overlaps(const Cidr& other) const {
  return contains(other) || other.contains(*this);
}

std::string Cidr::to_string() const {
  return address.to_string() + "/" + std::to_string(prefix_len);
}

std::expected<Cidr, std::string> validate_prefix(std::string_view text) {
  auto cidr = Cidr::parse(text);
  if (!cidr) return cidr;
  if (cidr->has_host_bits()) {
    return std::unexpected(cidr->to_string() + " has host bits set; the network is " +
                           cidr->network().to_string());
  }
  return cidr;
}

std::expected<Cidr, std::string> validate_interface_address(std::string_view text,
                                                            IpFamily family) {
  auto cidr = Cidr::parse(text);
  if (!cidr) return cidr;
  if (cidr->family() != family) {
    return std::unexpected(std::string(family == IpFamily::kV4 ? "expected an IPv4 address"
                                                               : "expected an IPv6 address"));
  }
  if (cidr->address.is_unspecified()) {
    return std::unexpected(std::string("the unspecified address cannot be an interface address"));
  }
  if (cidr->prefix_len == 0) {
    return std::unexpected(std::string("prefix length 0 would claim every address"));
  }
  bool small = family == IpFamily::kV4 ? cidr->prefix_len >= 31 : cidr->prefix_len >= 127;
  if (!small) {
    if (!cidr->has_host_bits()) {
      return std::unexpected(cidr->to_string() +
                             " is the network address of its prefix; give this host's address, "
                             "such as " +
                             first_host(*cidr).to_string());
    }
    if (family == IpFamily::kV4) {
      // Broadcast: every host bit set.
      auto b = cidr->address.bytes();
      std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                        (std::uint32_t{b[2]} << 8) | b[3];
      std::uint32_t host_mask = cidr->prefix_len == 0 ? ~0u : (~0u >> cidr->prefix_len);
      if ((v & host_mask) == host_mask) {
        return std::unexpected(cidr->to_string() + " is the broadcast address of its prefix");
      }
    }
  }
  return cidr;
}

}  // namespace buckwild
