#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-19, libc++, ASan+UBSan) and runs each one.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     default 60; CI runs a short pass
#
# Findings (crash-*, leak-*, timeout-*) are written to fuzz/findings/ and make the
# script exit non-zero. The corpus grows in build-fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz

# A compiler cache where there is one, with the checkout's path mapped out of
# the debug info (scripts/test.sh's reasons).
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$PWD
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
    -DCMAKE_C_FLAGS="-fdebug-prefix-map=$PWD=." -DCMAKE_CXX_FLAGS="-fdebug-prefix-map=$PWD=.")
fi
CC=clang-19 CXX=clang++-19 cmake -S . -B "$build" -G Ninja -DBUCKWILD_FUZZ=ON "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUCKWILD_WERROR=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"

seeds="$build/seeds"
mkdir -p "$seeds" fuzz/findings
"$build/fuzz/fuzz_seeds" "$seeds"

status=0
for target in "$build"/fuzz/fuzz_*; do
  name=$(basename "$target")
  [[ $name == fuzz_seeds ]] && continue
  corpus="$build/corpus/$name"
  mkdir -p "$corpus"
  echo "fuzz.sh: $name for ${seconds}s"
  if ! "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix=fuzz/findings/"$name"- "$corpus" "$seeds" >"$build/$name.log" 2>&1; then
    echo "fuzz.sh: $name found a problem:" >&2
    tail -n 40 "$build/$name.log" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$build/$name.log" | tail -n 2 | sed "s/^/  /"
  fi
done
exit $status
