// Notices when the configuration file changes (the architecture document's
// hot reload): an inotify watch on the file's directory, so an editor that
// writes a new file and renames it over the old one is seen as well as one
// that writes in place. A burst of events (write, close, rename) becomes one
// call, `settle` after the last of them.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/common/time.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

class ConfigWatch {
 public:
  // Watches `path` from now on; `on_change` runs on the loop.
  static SysResult<std::unique_ptr<ConfigWatch>> start(EventLoop& loop, const std::string& path,
                                                       std::function<void()> on_change,
                                                       Duration settle = milliseconds(200));
  ~ConfigWatch();
  ConfigWatch(const ConfigWatch&) = delete;
  ConfigWatch& operator=(const ConfigWatch&) = delete;

 private:
  ConfigWatch(EventLoop& loop, UniqueFd fd, std::string name, std::function<void()> on_change,
              Duration settle);
  void on_readable();

  EventLoop& loop_;
  UniqueFd fd_;
  std::string name_;  // the file's name in its directory
  std::function<void()> on_change_;
  Duration settle_;
  TimerId timer_ = kNoTimer;
};

}  // namespace buckwild::daemon
