// IPv4 and IPv6 addresses as plain values.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace buckwild {

enum class IpFamily : std::uint8_t { kV4 = 4, kV6 = 6 };

// An IPv4 or IPv6 address in network byte order. Default: 0.0.0.0.
// Ordered (v4 before v6, then bytewise) and hashable, so it can key maps.
class IpAddress {
 public:
  IpAddress() = default;

  static IpAddress v4(std::array<std::uint8_t, 4> bytes);
  static IpAddress v6(std::array<std::uint8_t, 16> bytes);
  static IpAddress any(IpFamily family);

  // Parses a literal: dotted quad ("10.0.0.1") or RFC 4291 text ("fd00::1").
  // No zone ids, no brackets, no surrounding spaces. nullopt if malformed.
  static std::optional<IpAddress> parse(std::string_view text);

  IpFamily family() const { return family_; }
  bool is_v4() const { return family_ == IpFamily::kV4; }
  bool is_v6() const { return family_ == IpFamily::kV6; }
  // 4 or 16.
  std::size_t size() const { return is_v4() ? 4 : 16; }
  // The address bytes (4 or 16), network order.
  std::span<const std::uint8_t> bytes() const { return {bytes_.data(), size()}; }
  // Bit length: 32 or 128.
  unsigned bits() const { return is_v4() ? 32u : 128u; }

  bool is_unspecified() const;
  bool is_loopback() const;
  // True for ::ffff:a.b.c.d.
  bool is_v4_mapped() const;
  // ::ffff:a.b.c.d -> a.b.c.d; any other address unchanged.
  IpAddress unmapped() const;
  // a.b.c.d -> ::ffff:a.b.c.d; a v6 address unchanged.
  IpAddress mapped_v6() const;

  // "10.0.0.1", "fd00::1" (inet_ntop form).
  std::string to_string() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend std::strong_ordering operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  IpFamily family_ = IpFamily::kV4;
  std::array<std::uint8_t, 16> bytes_{};  // v4 uses the first 4; the rest stay zero
};

}  // namespace buckwild

template <>
struct std::hash<buckwild::IpAddress> {
  std::size_t operator()(const buckwild::IpAddress& a) const noexcept;
};
