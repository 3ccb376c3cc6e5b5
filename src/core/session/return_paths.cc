#include "core/session/return_paths.h"

namespace buckwild::session {

bool ReturnPaths::observe(std::uint16_t local_port, const SocketAddress& source,
                          std::int64_t window) {
  if (source.ip.unmapped() != peer_.unmapped()) return false;
  ++arrivals_;
  // The same port of ours again: the mapping may have changed (the NAT's
  // entry expired and a new one was made); the latest source wins.
  std::optional<Path>* oldest = &slots_[0];
  for (auto& s : slots_) {
    if (s && s->local_port == local_port) {
      s->remote = source;
      s->window = window;
      s->order = arrivals_;
      return true;
    }
    if (!s) {
      oldest = &s;
    } else if (*oldest && s->order < (*oldest)->order) {
      oldest = &s;
    }
  }
  *oldest = Path{local_port, source, window, arrivals_};
  return true;
}

}  // namespace buckwild::session
