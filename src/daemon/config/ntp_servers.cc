#include "daemon/config/ntp_servers.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

#include "daemon/config/config_keys.h"

namespace buckwild::daemon {

std::string parse_ntp_servers(const std::vector<std::string>& list, std::vector<NtpServer>& servers) {
  if (list.size() > kMaxNtpServers) {
    return "at most " + std::to_string(kMaxNtpServers) + " servers, got " + std::to_string(list.size());
  }
  std::vector<NtpServer> out;
  for (const std::string& s : list) {
    NtpServer server;
    std::string_view host = s;
    if (host.starts_with('[')) {
      const std::size_t close = host.find(']');
      if (close == std::string_view::npos) return "has an unclosed '[' in " + in_quotes(s);
      std::string_view after = host.substr(close + 1);
      host = host.substr(1, close - 1);
      if (!after.empty()) {
        if (!after.starts_with(':')) return "has text after ']' in " + in_quotes(s);
        after.remove_prefix(1);
        std::uint32_t port = 0;
        auto [end, ec] = std::from_chars(after.data(), after.data() + after.size(), port);
        if (ec != std::errc() || end != after.data() + after.size() || port == 0 || port > 65535)
          return "has a bad port in " + in_quotes(s);
        server.port = static_cast<std::uint16_t>(port);
      }
    } else if (const std::size_t colon = host.find(':');
               colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
      std::string_view p = host.substr(colon + 1);
      std::uint32_t port = 0;
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
      if (ec != std::errc() || end != p.data() + p.size() || port == 0 || port > 65535)
        return "has a bad port in " + in_quotes(s);
      server.port = static_cast<std::uint16_t>(port);
      host = host.substr(0, colon);
    }
    const bool name_ok = !host.empty() && host.size() <= 253 &&
                         std::all_of(host.begin(), host.end(), [](char ch) {
                           return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':';
                         });
    if (!name_ok) {
      return "must be \"HOST\" or \"HOST:PORT\" (a name or an address), got " + in_quotes(s);
    }
    server.host = std::string(host);
    // One vote per server: a server named twice would count twice towards
    // the majority that decides our time.
    for (const NtpServer& earlier : out) {
      if (earlier.port == server.port &&
          std::equal(earlier.host.begin(), earlier.host.end(), server.host.begin(), server.host.end(),
                     [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                 std::tolower(static_cast<unsigned char>(b)); })) {
        return "names " + in_quotes(s) + " twice (each server counts once towards the majority)";
      }
    }
    out.push_back(std::move(server));
  }
  servers = std::move(out);
  return {};
}

}  // namespace buckwild::daemon
