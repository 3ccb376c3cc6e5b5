// The control socket's replies (docs/control.md) as text for a person, in the
// manner of `wg show`: pure functions of the JSON, so they are tested without
// a daemon. Every field may be missing, null or of another type than
// documented; such a field is left out, never a crash.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace buckwild::cli {

// Keeps the daemon's field order when the JSON is printed again (--json).
using Json = nlohmann::ordered_json;

// One `status` object: an interface block (device, process, receive path,
// window, ports, counters; drops, discovery and eBPF verdict counters only
// where non-zero), then a block per peer (endpoint, addresses, session, delays,
// transfer). `color`: ANSI bold and colour for the labels (for a terminal).
// Ends with a newline.
std::string render_status(const Json& status, bool color = false);

// One `reload` object as one line, without a newline:
// "reloaded: peers added carol; settings changed security.max_connections_per_source; 0 sessions
// ended", or "reloaded: nothing changed".
std::string render_reload(const Json& reload);

// 70110 -> "1 minute, 10 seconds"; below a second "180 ms". Negative counts as 0.
std::string human_duration(double ms);
// 4113 -> "4.02 KiB"; below 1 KiB "900 B".
std::string human_bytes(std::uint64_t bytes);
// A number of milliseconds: 0.4 -> "0.4 ms", 12 -> "12 ms", -3.25 -> "-3.25 ms".
std::string human_ms(double ms);

}  // namespace buckwild::cli
