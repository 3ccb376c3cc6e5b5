// Whether the kernel's random source is seeded: checked before any key is
// made, at start and on every reload.
#pragma once

#include "daemon/os/sys_error.h"

namespace buckwild::daemon {

// Fails (EAGAIN, in words an operator can act on) while getrandom(2) would block.
SysResult<void> check_random_seeded();

}  // namespace buckwild::daemon
