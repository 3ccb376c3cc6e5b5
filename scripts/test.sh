#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root), builds, and runs every test:
#   1. the release build's unit tests (CTest),
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the end-to-end tests in network namespaces (tests/e2e/run.sh),
#   4. a short pass of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup.sh

echo "== release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== ASan + UBSan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBUCKWILD_SANITIZE=ON \
  -DBUCKWILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== end-to-end tests in network namespaces"
bash tests/e2e/run.sh

echo "== fuzz targets (short pass; scripts/fuzz.sh 600 for a long one)"
bash scripts/fuzz.sh "${BUCKWILD_FUZZ_SECONDS:-20}"
