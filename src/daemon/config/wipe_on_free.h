// Wiping heap blocks freed while a configuration is parsed.
//
// toml++ builds the document out of std::string and node objects on the
// ordinary heap: an inline PSK (`key = "BASE64"`) passes through its buffers,
// its string-building scratch space and, when the file does not parse, a
// half-built document it destroys before it throws. None of that is ours to
// wipe, so while a WipeFreedMemory scope is open on a thread, every block that
// thread frees through operator delete is zeroed (its whole usable size)
// before it goes back to malloc. The daemon replaces the global operator
// new/delete for this (malloc and free underneath, so sanitizers see matching
// pairs); outside a scope they cost one thread-local read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace buckwild::daemon {

class WipeFreedMemory {
 public:
  WipeFreedMemory();
  ~WipeFreedMemory();
  WipeFreedMemory(const WipeFreedMemory&) = delete;
  WipeFreedMemory& operator=(const WipeFreedMemory&) = delete;
};

// Tests: `observer` sees every block freed through operator delete on any
// thread, after the wipe (what free() is handed), until set back to nullptr.
using FreedBlockObserver = void (*)(const std::uint8_t* block, std::size_t size);
void set_freed_block_observer(FreedBlockObserver observer);

}  // namespace buckwild::daemon
