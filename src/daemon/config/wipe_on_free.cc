#include "daemon/config/wipe_on_free.h"

#include <malloc.h>
#include <sodium.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace buckwild::daemon {
namespace {

thread_local int wipe_depth = 0;
std::atomic<FreedBlockObserver> observer{nullptr};

void release(void* p) noexcept {
  if (p == nullptr) return;
  const int depth = wipe_depth;
  FreedBlockObserver watch = observer.load(std::memory_order_relaxed);
  if (depth > 0 || watch != nullptr) {
    const std::size_t size = malloc_usable_size(p);
    if (depth > 0) sodium_memzero(p, size);
    if (watch != nullptr) watch(static_cast<const std::uint8_t*>(p), size);
  }
  std::free(p);
}

void* acquire(std::size_t size) {
  if (size == 0) size = 1;
  for (;;) {
    if (void* p = std::malloc(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

WipeFreedMemory::WipeFreedMemory() { ++wipe_depth; }
WipeFreedMemory::~WipeFreedMemory() { --wipe_depth; }

void set_freed_block_observer(FreedBlockObserver o) { observer.store(o, std::memory_order_relaxed); }

}  // namespace buckwild::daemon

// The replacements: the standard's other forms (nothrow, sized) reach these in
// libstdc++; aligned forms keep the library's own (nothing secret uses them).
void* operator new(std::size_t size) { return buckwild::daemon::acquire(size); }
void* operator new[](std::size_t size) { return buckwild::daemon::acquire(size); }
void operator delete(void* p) noexcept { buckwild::daemon::release(p); }
void operator delete[](void* p) noexcept { buckwild::daemon::release(p); }
void operator delete(void* p, std::size_t) noexcept { buckwild::daemon::release(p); }
void operator delete[](void* p, std::size_t) noexcept { buckwild::daemon::release(p); }
