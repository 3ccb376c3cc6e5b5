// `[ntp] servers`: each "HOST" or "HOST:PORT" ("[IPv6]:PORT"), HOST a name
// or an address (names are resolved by the daemon, off its event loop).
#pragma once

#include <string>
#include <vector>

#include "daemon/config/config.h"

namespace buckwild::daemon {

// Parses `list` into `servers` (left as it was on error). Returns the problem
// in the words of a config error ("must be ..."), or empty. At most
// kMaxNtpServers, each named once (one vote each towards the majority).
std::string parse_ntp_servers(const std::vector<std::string>& list, std::vector<NtpServer>& servers);

}  // namespace buckwild::daemon
