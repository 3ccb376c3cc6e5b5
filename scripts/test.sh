#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root), builds, and runs every test:
#   1. the release build's unit tests (CTest),
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the end-to-end tests in network namespaces (tests/e2e/run.sh for the
#      packet path, tests/e2e/stream.sh for transparent TCP, tests/e2e/nat.sh
#      for an initiator behind NAT, tests/e2e/mtu.sh for path MTU discovery
#      across different MTUs, each on the eBPF and the user-space receive path; tests/e2e/flood.sh;
#      tests/e2e/workers.sh for a hub on two workers; tests/e2e/control.sh
#      for status, reload, metrics and stop; tests/e2e/snmp.sh for the AgentX
#      subagent with a real snmpd; tests/e2e/ntp.sh for the NTP client against
#      chronyd and a lying server, and peer time sync),
#   4. the package: tests/e2e/package.sh builds the .deb from the release build,
#      installs it with dpkg -i, checks it and purges it; then tests/e2e/soak.sh,
#      five minutes of everything at once (its 30-minute and ASan runs are by hand),
#   5. a short pass of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup.sh

# A compiler cache: a machine that builds Buckwild again (a CI runner, a
# developer) compiles only what changed. Paths are hashed relative to this
# checkout, so a fresh clone elsewhere still hits; the compiler, its flags and
# so the binaries are exactly those of a build without it.
# The debug builds (ASan, fuzz) also map the checkout's path to "." in their
# debug info: otherwise ccache hashes the working directory of every -g compile
# and a clone elsewhere (CI) rebuilds them from scratch, about 11 minutes here.
launcher=()
debug_map=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$PWD
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  debug_map=(-DCMAKE_C_FLAGS="-fdebug-prefix-map=$PWD=." -DCMAKE_CXX_FLAGS="-fdebug-prefix-map=$PWD=.")
fi

# How long each stage took, printed at the end (the whole run should stay
# well under CI's limit).
stage_names=()
stage_seconds=()
stage_started=0
stage_name="setup (scripts/setup.sh)"
stage() {
  if [[ -n $stage_name ]]; then
    stage_names+=("$stage_name")
    stage_seconds+=($((SECONDS - stage_started)))
  fi
  stage_name=$1
  stage_started=$SECONDS
  echo "== $1"
}

stage "release build (exactly a packager's build, with warnings as errors)"
# The prefix a distribution builds for (and the .deb needs: its units name /usr/bin/buckwild).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUCKWILD_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr "${launcher[@]}" >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

stage "ASan + UBSan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBUCKWILD_SANITIZE=ON -DBUCKWILD_WERROR=ON \
  -DBUCKWILD_BENCH=OFF "${launcher[@]}" "${debug_map[@]}" >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== end-to-end tests in network namespaces"
# Both receive paths: eBPF (the default where the kernel allows it) and user
# space (BUCKWILD_NETWORK_EBPF=false); each script checks that the daemons say
# they run the path asked for. Then the flood test, which runs both itself.
e2e_log=$(mktemp)
# run.sh's three iperf3 runs (clocks equal, 40 ms skew, a rekey every 10 s)
# last 30 s each here, 120 windows and 3 rekeys: the whole run stays well
# under CI's limit. By hand they last 60 s.
iperf_seconds=${E2E_IPERF_SECONDS:-30}
e2e_passed=0
for path in ebpf userspace; do
  for script in run.sh stream.sh nat.sh mtu.sh; do
    stage "e2e: $script, receive path $path"
    E2E_RECEIVE_PATH=$path E2E_IPERF_SECONDS=$iperf_seconds bash "tests/e2e/$script" | tee "$e2e_log"
    e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
  done
done
# The data path once more with the TUN and UDP offloads off ([network]
# tun_offload and udp_offload = false): the checks that count offload work
# expect none, every other check the same result. Shorter iperf3 runs.
for script in run.sh stream.sh mtu.sh; do
  stage "e2e: $script, offloads off"
  BUCKWILD_NETWORK_TUN_OFFLOAD=false BUCKWILD_NETWORK_UDP_OFFLOAD=false E2E_IPERF_SECONDS=10 \
    bash "tests/e2e/$script" | tee "$e2e_log"
  e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
done
stage "e2e: flood.sh"
bash tests/e2e/flood.sh | tee "$e2e_log"
e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
stage "e2e: workers.sh (a hub with 2 workers, two spokes)"
bash tests/e2e/workers.sh | tee "$e2e_log"
e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
stage "e2e: control.sh"
bash tests/e2e/control.sh | tee "$e2e_log"
e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
stage "e2e: ntp.sh (about 2.5 minutes)"
bash tests/e2e/ntp.sh | tee "$e2e_log"
stage "e2e: snmp.sh"
bash tests/e2e/snmp.sh | tee "$e2e_log"
e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
stage "e2e: package.sh (the .deb: cpack, dpkg -i, checks, dpkg --purge)"
BUILD_DIR=build bash tests/e2e/package.sh | tee "$e2e_log"
e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
stage "e2e: soak.sh (5 minutes: loss, jitter, reordering, restarts, stepped clocks, a flood)"
bash tests/e2e/soak.sh | tee "$e2e_log"
e2e_passed=$((e2e_passed + $(awk '/^[0-9]+ passed, 0 failed$/ {print $1}' "$e2e_log" | tail -n 1)))
rm -f "$e2e_log"

stage "fuzz targets (short pass; scripts/fuzz.sh 600 for a long one)"
bash scripts/fuzz.sh "${BUCKWILD_FUZZ_SECONDS:-10}"

stage "done"
echo "== time per stage (s)"
for i in "${!stage_names[@]}"; do
  printf '%6d  %s\n' "${stage_seconds[$i]}" "${stage_names[$i]}"
done
printf '%6d  %s\n' "$SECONDS" "in all"

# Every stage above stops the script on failure, so reaching here means all passed.
release=$(ctest --test-dir build -N | awk '/Total Tests:/ {print $3}')
asan=$(ctest --test-dir build-asan -N | awk '/Total Tests:/ {print $3}')
fuzz=$(find build-fuzz/fuzz -maxdepth 1 -name 'fuzz_*' -type f -executable ! -name fuzz_seeds | wc -l)
echo "== summary: $release unit tests (release), $asan (ASan+UBSan), ${e2e_passed:-0} end-to-end checks, $fuzz fuzz targets"
echo "$((release + asan + ${e2e_passed:-0} + fuzz)) passed, 0 failed"
