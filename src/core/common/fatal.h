// The end of the process for the few failures the core cannot continue past:
// a broken CSPRNG, a crypto primitive that fails on valid input. Everything
// else is an Error value.
#pragma once

namespace buckwild {

// Writes "buckwild: fatal: <what>" to stderr and aborts.
[[noreturn]] void fatal(const char* what);

}  // namespace buckwild
