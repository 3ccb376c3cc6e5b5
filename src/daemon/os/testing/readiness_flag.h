// A descriptor that is readable exactly while a condition holds: how the
// in-memory fakes (FakeTunDevice, FakeDatagramNetwork) wake an event loop.
#pragma once

#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

// An eventfd that is readable while set. set()/clear() are idempotent, so the
// owner can call them after every change to its queue.
class ReadinessFlag {
 public:
  // Aborts if no eventfd can be created: fakes are test infrastructure, and a
  // test cannot run without one.
  ReadinessFlag();

  int fd() const { return fd_.get(); }
  void set();
  void clear();
  bool is_set() const { return set_; }

 private:
  UniqueFd fd_;
  bool set_ = false;
};

}  // namespace buckwild::daemon
