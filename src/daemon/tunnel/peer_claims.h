// With several workers, each configured peer is looked for by one of them
// (peer i by worker i mod workers), but a peer may begin a session with any:
// its discovery reaches the worker its address hashes to when that is not an
// address the frame filter knows (docs/architecture.md "Workers"). This
// record of which worker holds each configured peer's session keeps a peer
// to one session across workers: a worker that establishes one claims the
// peer, and the worker that held it ends its own. Taken when sessions begin
// and end and when discovery decides whether to look, never per packet.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace buckwild::daemon {

class PeerClaims {
 public:
  // `worker` holds a session with the peer called `peer` now; returns the
  // worker that held one before, if another did.
  std::optional<std::uint32_t> claim(std::string_view peer, std::uint32_t worker) {
    std::lock_guard lock(mutex_);
    auto [it, fresh] = held_.try_emplace(std::string(peer), worker);
    if (fresh || it->second == worker) return std::nullopt;
    const std::uint32_t before = it->second;
    it->second = worker;
    return before;
  }
  // `worker`'s session with `peer` ended (a later claim by another worker stands).
  void release(std::string_view peer, std::uint32_t worker) {
    std::lock_guard lock(mutex_);
    auto it = held_.find(std::string(peer));
    if (it != held_.end() && it->second == worker) held_.erase(it);
  }
  // True while a worker other than `worker` holds a session with `peer`.
  bool held_elsewhere(std::string_view peer, std::uint32_t worker) const {
    std::lock_guard lock(mutex_);
    auto it = held_.find(std::string(peer));
    return it != held_.end() && it->second != worker;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::uint32_t> held_;
};

}  // namespace buckwild::daemon
