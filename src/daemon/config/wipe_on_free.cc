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

// The replacements. The nothrow forms too: libstdc++'s own would reach these,
// but a sanitizer's runtime supplies its own nothrow new, whose blocks would
// then come back through our delete (std::stable_sort's buffer does that).
// The aligned forms keep the library's own, new and delete alike (nothing
// secret uses them).
void* operator new(std::size_t size) { return buckwild::daemon::acquire(size); }
void* operator new[](std::size_t size) { return buckwild::daemon::acquire(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return buckwild::daemon::acquire(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return buckwild::daemon::acquire(size);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p, const std::nothrow_t&) noexcept { buckwild::daemon::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { buckwild::daemon::release(p); }
void operator delete(void* p) noexcept { buckwild::daemon::release(p); }
void operator delete[](void* p) noexcept { buckwild::daemon::release(p); }
void operator delete(void* p, std::size_t) noexcept { buckwild::daemon::release(p); }
void operator delete[](void* p, std::size_t) noexcept { buckwild::daemon::release(p); }
