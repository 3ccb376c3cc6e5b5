#!/usr/bin/env bash
# Benchmarks against the peers (issue #8): raw veth, Buckwild (stream and
# packet mode), wireguard-go, OpenVPN and kcptun on the same two-namespace
# topology in one run, with loss and delay from tools/impair. Not a test.
#
#   bench/run.sh                      as root, from anywhere; see bench/README.md
#
# Installs what it needs (scripts/setup.sh and the peers' Debian packages),
# builds Buckwild in Release into build-bench/, measures every configuration,
# writes bench/results/<date>.md (and latest.md) with PNG plots beside it, and
# deletes every namespace and stops every process it started, also on error or
# interrupt. Bounded: every loop has a count or a deadline, every measurement
# a timeout, and a cell that would start after BENCH_BUDGET is skipped (and
# says so in the table).
#
# Environment:
#   BENCH_SECONDS=10     seconds per iperf3 cell
#   BENCH_ONLY="..."     configurations to run, from: veth buckwild-stream
#                        buckwild-packet wireguard-go openvpn kcptun
#   BENCH_BUDGET=1500    seconds for the whole run, installation and build included
#   BENCH_RR_COUNT=2000  request/response exchanges (also bounded to 10 s)
#   BENCH_PING_COUNT=100 pings for the RTT (every 10 ms)
#   BENCH_CC=cubic       iperf3's congestion control (-C); the namespaces'
#                        default is the host's (bbr here), which ignores loss
#   BENCH_SKIP_SETUP=1   do not install packages (they are there already)
#   BENCH_NO_IMPAIRED=1  clean cells only (throughput, CPU, RSS, latency): for A/B runs
#   BENCH_CELLS="..."    impaired cells to run, from: loss1 loss5 d20 d20l1 d20l5 d100
#                        d100l1 d20j5 (default all)
#   BENCH_VETH_GRO=1     GRO on both veths, as a NIC has it (a veth does not)
#   BUCKWILD=PATH        use this buckwild binary instead of building one
#   BENCH_JOBS=N         ninja -j N for the build (default: ninja's own)
#   BENCH_OUT=DIR        where results go (default bench/results)
#   BENCH_KEEP=1         keep the raw data (iperf3 JSON, logs, both daemons' status
#                        after the clean cells, each namespace's nstat and link
#                        counters around each cell) in BENCH_OUT/tmp/
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
IMPAIR=$ROOT/tools/impair/impair.sh
CELL_SECONDS=${BENCH_SECONDS:-10}
ALL_CONFIGS="veth buckwild-stream buckwild-packet wireguard-go openvpn kcptun"
ONLY=${BENCH_ONLY:-$ALL_CONFIGS}
BUDGET=${BENCH_BUDGET:-1500}
RR_COUNT=${BENCH_RR_COUNT:-2000}
PING_COUNT=${BENCH_PING_COUNT:-100}
CC=${BENCH_CC:-cubic}
OUT=${BENCH_OUT:-$BENCH/results}
RUN_ID=${RUN_ID:-$$}
NS_A=bnA$RUN_ID
NS_B=bnB$RUN_ID
VA=bna$RUN_ID  # underlay veth in A: 10.200.0.1
VB=bnb$RUN_ID  # underlay veth in B: 10.200.0.2
PORT=5201      # iperf3 and the request/response server, in B
PIDS=()        # processes running now, stopped by PID (all are also in $WORK/pids)
T_START=$SECONDS

log() { printf '%s [bench] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (namespaces, TUN devices, packages)"
[[ $CELL_SECONDS =~ ^[0-9]+$ && $CELL_SECONDS -ge 1 && $CELL_SECONDS -le 120 ]] ||
  die "BENCH_SECONDS must be 1..120, got '$CELL_SECONDS'"
for c in $ONLY; do
  [[ " $ALL_CONFIGS " == *" $c "* ]] || die "unknown configuration '$c' in BENCH_ONLY (known: $ALL_CONFIGS)"
done
ALL_CELLS="loss1 loss5 d20 d20l1 d20l5 d100 d100l1 d20j5"
for c in ${BENCH_CELLS:-}; do
  [[ " $ALL_CELLS " == *" $c "* ]] || die "unknown cell '$c' in BENCH_CELLS (known: $ALL_CELLS)"
done

WORK=$(mktemp -d /tmp/buckwild-bench.XXXXXX)
RESULTS=$WORK/results.tsv  # config <TAB> metric <TAB> value <TAB> note
: >"$RESULTS"

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# ------------------------------------------------------------ lifecycle ----
# stop_pids PID...: SIGTERM, up to 3 s for them to go, then SIGKILL.
stop_pids() {
  local pid i
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 30; i++)); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "$@"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# The run is in two processes: this shell only waits, in `wait`, for the one
# that does the work (main, below) and cleans up after it. An interrupt then
# reaches the trap at once: a shell waiting for a foreground command holds
# SIGINT back until the command ends, and drops it when the command handles
# it (ping and iperf3 do). main notes every process it starts in
# $WORK/pids (PID and start time, so a reused PID is never killed).
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -n ${BODY:-} ]] && kill -0 "$BODY" 2>/dev/null; then
    kill "$BODY" 2>/dev/null
  fi
  local pid start ours=()
  while read -r pid start; do
    [[ -n $pid && $(started "$pid") == "$start" ]] && ours+=("$pid")
  done < <(cat "$WORK/pids" 2>/dev/null)
  ((${#ours[@]})) && stop_pids "${ours[@]}"
  [[ -n ${BODY:-} ]] && { kill -9 "$BODY" 2>/dev/null; wait "$BODY" 2>/dev/null; }
  local ns dev
  for ns in "$NS_A" "$NS_B"; do
    [[ -e /run/netns/$ns ]] || continue
    dev=$VA
    [[ $ns == "$NS_B" ]] && dev=$VB
    "$IMPAIR" clear "$ns" "$dev" >/dev/null 2>&1
    # Anything still running in our namespaces was started by this run.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  sleep 0.3
  for ns in "$NS_A" "$NS_B"; do
    [[ -e /run/netns/$ns ]] || continue
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  # impair.sh's notes for interfaces that are gone now.
  "$IMPAIR" clear "$NS_A" "$VA" >/dev/null 2>&1
  "$IMPAIR" clear "$NS_B" "$VB" >/dev/null 2>&1
  rm -f "/var/run/wireguard/wga$RUN_ID.sock" "/var/run/wireguard/wgb$RUN_ID.sock"
  if [[ ${BENCH_KEEP:-0} == 1 && -d $WORK ]]; then
    mkdir -p "$OUT/tmp"
    rm -rf "$OUT/tmp/$RUN_ID"
    mv "$WORK" "$OUT/tmp/$RUN_ID" && log "raw data kept in $OUT/tmp/$RUN_ID"
  else
    rm -rf "$WORK"
  fi
  ((rc == 0)) || log "stopped (exit $rc); every process and namespace of this run is gone"
  exit "$rc"
}

started() { awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }  # start time, in ticks
note_pid() { echo "$1 $(started "$1")" >>"$WORK/pids"; }

# spawn A|B LOGFILE COMMAND...: COMMAND in that host, in the background.
# ip netns exec execs the command, so $! (SPAWNED) is the command itself.
spawn() {
  local ns=$NS_A
  [[ $1 == B ]] && ns=$NS_B
  local logfile=$2
  shift 2
  ip netns exec "$ns" "$@" </dev/null >>"$logfile" 2>&1 &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
  note_pid "$SPAWNED"
}

forget_pids() {  # forget_pids PID...: drop them from PIDS once stopped
  local keep=() p q gone
  for p in "${PIDS[@]:-}"; do
    gone=0
    for q in "$@"; do [[ $p == "$q" ]] && gone=1; done
    ((gone)) || keep+=("$p")
  done
  PIDS=("${keep[@]:-}")
  [[ -n ${PIDS[0]:-} ]] || PIDS=()
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for SECONDS COMMAND...: polls every 50 ms until COMMAND succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while ((SECONDS <= deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

# run_wait SECONDS OUT ERR COMMAND...: COMMAND in the background under a
# timeout, waited for with `wait`. A foreground command would hold an
# interrupt back until it ended, and bash drops SIGINT altogether when the
# command handles it (ping, iperf3 do); `wait` lets the trap run at once.
# Sets RUN_RC.
run_wait() {
  local limit=$1 out=$2 err=$3
  shift 3
  timeout "$limit" "$@" >"$out" 2>"$err" &
  local p=$!
  PIDS+=("$p")
  note_pid "$p"
  RUN_RC=0
  wait "$p" || RUN_RC=$?
  forget_pids "$p"
}

listening() { ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }
udp_bound() { [[ -n $(ip netns exec "$1" ss -Hlun "sport = :$2") ]]; }

# responder_ready PORT PID: waits (up to 10 s) until the responder in B has
# bound its UDP PORT; fails early, with START_ERROR, if PID exits.
responder_ready() {
  local deadline=$((SECONDS + 10))
  while ((SECONDS <= deadline)); do
    udp_bound "$NS_B" "$1" && return 0
    kill -0 "$2" 2>/dev/null || { START_ERROR="the responder (B) exited"; return 1; }
    sleep 0.02
  done
  START_ERROR="the responder (B) did not bind UDP port $1 within 10 s"
  return 1
}

# ---------------------------------------------------------- preparation ----
prepare() {
  if [[ ${BENCH_SKIP_SETUP:-0} != 1 ]]; then
    log "installing the build's and tests' packages (scripts/setup.sh)"
    "$ROOT/scripts/setup.sh" >&2
    local peers=(wireguard-go wireguard-tools openvpn kcptun iperf3 gnuplot-nox openssl iptables ethtool
                 iproute2 iputils-ping procps python3)
    local missing=() p
    for p in "${peers[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
      log "installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      # Services in these packages (openvpn) must not start on the host.
      local created=0
      if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created=1
      fi
      local rc=0
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
      ((created)) && rm -f /usr/sbin/policy-rc.d
      ((rc == 0)) || die "apt-get install ${missing[*]} failed"
    fi
  fi
  local t
  for t in iperf3 ip ss ping python3 gnuplot openssl wg wireguard-go openvpn kcptun-client kcptun-server iptables ethtool bpftool; do
    command -v "$t" >/dev/null || die "$t not found (run without BENCH_SKIP_SETUP=1 to install it)"
  done

  if [[ -z ${BUCKWILD:-} ]]; then
    log "building Buckwild (Release) in build-bench/"
    # Exactly a packager's build.
    cmake -S "$ROOT" -B "$ROOT/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 ||
      { tail -n 30 "$WORK/cmake.log" >&2; die "cmake failed"; }
    local jobs=()
    [[ -n ${BENCH_JOBS:-} ]] && jobs=(-j "$BENCH_JOBS")
    ninja -C "$ROOT/build-bench" "${jobs[@]}" buckwild >"$WORK/ninja.log" 2>&1 ||
      { tail -n 40 "$WORK/ninja.log" >&2; die "building buckwild failed"; }
    BUCKWILD=$ROOT/build-bench/src/cli/buckwild
  fi
  [[ -x $BUCKWILD ]] || die "no buckwild binary at $BUCKWILD"
  "$IMPAIR" build >/dev/null || die "tools/impair does not build"
}

make_hosts() {
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip link add "$VA" type veth peer name "$VB"
  ip link set "$VA" netns "$NS_A"
  ip link set "$VB" netns "$NS_B"
  in_a ip addr add 10.200.0.1/24 dev "$VA"
  in_b ip addr add 10.200.0.2/24 dev "$VB"
  in_a ip link set lo up
  in_b ip link set lo up
  in_a ip link set "$VA" up
  in_b ip link set "$VB" up
  if [[ ${BENCH_VETH_GRO:-0} == 1 ]]; then
    in_a ethtool -K "$VA" gro on >/dev/null
    in_b ethtool -K "$VB" gro on >/dev/null
  fi
  wait_for 5 in_a ping -c1 -W1 10.200.0.2 || die "the underlay does not work"
}

# ------------------------------------------------------------- results ----
record() {  # record CONFIG METRIC VALUE [NOTE]
  local note=${4:-}
  note=$(tr '\t\n' '  ' <<<"$note" | sed 's/  */ /g; s/ $//')
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$note" >>"$RESULTS"
  [[ ${QUIET_RECORD:-0} == 1 ]] || log "  $1 $2 = ${3:--}${note:+ ($note)}"
}

# within_budget SECONDS: whether a cell of about that length still fits.
within_budget() { (($(( SECONDS - T_START )) + $1 <= BUDGET)); }

# ------------------------------------------------------------ the tunnels ----
# Each start_<config> sets PEER (an address in B to ping; empty = none),
# TARGET_HOST/TARGET_PORT (where A's clients connect), BIND (where B's
# servers listen), TUN_PIDS (the tunnel's processes) and FIRST_MS, or sets
# START_ERROR and returns 1. FIRST_MS, "start to first packet through", runs
# from starting A's side (the initiator), once B's side is up and has bound
# its UDP port, to the first reply through the tunnel: process start, device
# set-up, discovery or handshake, and one round trip.

# first_ping PEER T0_MS PID...: pings every 2 ms until the first reply; bounded
# to 15 s, and gives up early when a tunnel process exits.
first_ping() {
  local peer=$1 t0=$2
  shift 2
  local deadline=$((SECONDS + 15)) pid
  while ((SECONDS < deadline)); do
    for pid in "$@"; do
      kill -0 "$pid" 2>/dev/null || { START_ERROR="process $pid exited"; return 1; }
    done
    # -c 1 -w 1: up to 1 s of requests every 2 ms, ending at the first reply.
    run_wait 3 /dev/null /dev/null ip netns exec "$NS_A" ping -n -q -c 1 -w 1 -i 0.002 "$peer"
    if ((RUN_RC == 0)); then
      FIRST_MS=$(($(now_ms) - t0))
      return 0
    fi
    sleep 0.002
  done
  START_ERROR="no reply through the tunnel within 15 s"
  return 1
}

start_veth() {
  PEER=10.200.0.2 TARGET_HOST=10.200.0.2 TARGET_PORT=$PORT BIND=10.200.0.2
  TUN_PIDS=()
  FIRST_MS=
}

start_buckwild() {  # start_buckwild stream|packet
  local mode=$1
  sed -e "s/^tcp_mode = .*/tcp_mode = \"$mode\"/" "$ROOT/examples/alice.toml" >"$WORK/alice-$mode.toml"
  sed -e "s/^tcp_mode = .*/tcp_mode = \"$mode\"/" "$ROOT/examples/bob.toml" >"$WORK/bob-$mode.toml"
  chmod 600 "$WORK/alice-$mode.toml" "$WORK/bob-$mode.toml"
  PEER=10.77.0.2 TARGET_HOST=10.77.0.2 TARGET_PORT=$PORT BIND=10.77.0.2
  spawn B "$WORK/buckwild-$mode-B.log" env BUCKWILD_CONTROL_SOCKET="$WORK/ctl-B.sock" "$BUCKWILD" run --config "$WORK/bob-$mode.toml"
  local b=$SPAWNED a=
  TUN_PIDS=("$b")
  local t0
  if responder_ready 1025 "$b"; then
    t0=$(now_ms)
    spawn A "$WORK/buckwild-$mode-A.log" env BUCKWILD_CONTROL_SOCKET="$WORK/ctl-A.sock" "$BUCKWILD" run --config "$WORK/alice-$mode.toml"
    a=$SPAWNED
  fi
  [[ -n $a ]] && TUN_PIDS=("$a" "$b")
  if [[ -z $a ]] || ! first_ping "$PEER" "$t0" "$a" "$b"; then
    sleep 0.2
    local why
    why=$(cat "$WORK/buckwild-$mode-A.log" "$WORK/buckwild-$mode-B.log" 2>/dev/null |
          grep -iE 'error|refus|not (yet|supported)|fail|cannot' | tail -n 2 | tr '\n' ' ')
    [[ -n $why ]] || why=$(tail -n 2 "$WORK/buckwild-$mode-A.log" "$WORK/buckwild-$mode-B.log" 2>/dev/null | tr '\n' ' ')
    START_ERROR="daemon refused or failed ($START_ERROR): ${why:-no log output}"
    return 1
  fi
}

start_wireguard_go() {
  local d=$WORK/wg
  mkdir -p "$d"
  (
    umask 077
    wg genkey >"$d/a.key"
    wg genkey >"$d/b.key"
  )
  wg pubkey <"$d/a.key" >"$d/a.pub"
  wg pubkey <"$d/b.key" >"$d/b.pub"
  local ia=wga$RUN_ID ib=wgb$RUN_ID  # distinct names: the UAPI sockets share /var/run
  PEER=10.78.0.2 TARGET_HOST=10.78.0.2 TARGET_PORT=$PORT BIND=10.78.0.2
  # wireguard-go refuses to run on Linux (where a kernel module exists)
  # unless told; this kernel has no WireGuard module.
  spawn B "$WORK/wireguard-go-B.log" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f "$ib"
  local b=$SPAWNED
  TUN_PIDS=("$b")
  wait_for 10 test -S "/var/run/wireguard/$ib.sock" ||
    { START_ERROR="wireguard-go did not create its device: $(tail -n 3 "$WORK/wireguard-go-B.log" | tr '\n' ' ')"; return 1; }
  in_b wg set "$ib" private-key "$d/b.key" listen-port 51820 \
    peer "$(cat "$d/a.pub")" allowed-ips 10.78.0.1/32 endpoint 10.200.0.1:51820
  in_b ip addr add 10.78.0.2/24 dev "$ib"
  in_b ip link set "$ib" up
  responder_ready 51820 "$b" || return 1
  local t0
  t0=$(now_ms)
  spawn A "$WORK/wireguard-go-A.log" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f "$ia"
  local a=$SPAWNED
  TUN_PIDS=("$a" "$b")
  wait_for 10 test -S "/var/run/wireguard/$ia.sock" ||
    { START_ERROR="wireguard-go did not create its device: $(tail -n 3 "$WORK/wireguard-go-A.log" | tr '\n' ' ')"; return 1; }
  in_a wg set "$ia" private-key "$d/a.key" listen-port 51820 \
    peer "$(cat "$d/b.pub")" allowed-ips 10.78.0.2/32 endpoint 10.200.0.2:51820
  in_a ip addr add 10.78.0.1/24 dev "$ia"
  in_a ip link set "$ia" up
  first_ping "$PEER" "$t0" "$a" "$b" || { START_ERROR="wireguard-go: $START_ERROR"; return 1; }
}

make_pki() {  # a throwaway CA, a server and a client certificate (EC P-256)
  local d=$WORK/pki
  [[ -e $d/client.crt ]] && return 0
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj /CN=bench-ca -keyout ca.key -out ca.crt
    local who
    for who in server client; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=bench-$who" -keyout "$who.key" -out "$who.csr"
      printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\nextendedKeyUsage=%s\n' \
        "$([[ $who == server ]] && echo serverAuth || echo clientAuth)" >"$who.ext"
      openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$who.ext" -out "$who.crt"
    done
    chmod 600 ./*.key
  ) >"$WORK/pki.log" 2>&1 || { START_ERROR="openssl: $(tail -n 3 "$WORK/pki.log" | tr '\n' ' ')"; return 1; }
}

start_openvpn() {
  make_pki || return 1
  local d=$WORK/pki
  PEER=10.79.0.2 TARGET_HOST=10.79.0.2 TARGET_PORT=$PORT BIND=10.79.0.2
  # Peer to peer over UDP with TLS (static keys are gone from 2.6); the data
  # channel cipher is negotiated between the two 2.6 peers from --data-ciphers.
  local common=(--dev-type tun --proto udp --data-ciphers AES-256-GCM --disable-dco
                --ca "$d/ca.crt" --verb 3 --ping 10 --ping-restart 60)
  spawn B "$WORK/openvpn-B.log" openvpn "${common[@]}" --dev "ovb$RUN_ID" --local 10.200.0.2 --lport 1194 \
    --tls-server --dh none --cert "$d/server.crt" --key "$d/server.key" --remote-cert-tls client \
    --ifconfig 10.79.0.2 10.79.0.1
  local b=$SPAWNED
  TUN_PIDS=("$b")
  responder_ready 1194 "$b" || { START_ERROR="openvpn: $START_ERROR: $(tail -n 2 "$WORK/openvpn-B.log" | tr '\n' ' ')"; return 1; }
  local t0
  t0=$(now_ms)
  spawn A "$WORK/openvpn-A.log" openvpn "${common[@]}" --dev "ova$RUN_ID" --remote 10.200.0.2 1194 --nobind \
    --tls-client --cert "$d/client.crt" --key "$d/client.key" --remote-cert-tls server \
    --ifconfig 10.79.0.1 10.79.0.2
  local a=$SPAWNED
  TUN_PIDS=("$a" "$b")
  first_ping "$PEER" "$t0" "$a" "$b" ||
    { START_ERROR="openvpn: $START_ERROR: $(grep -ihE 'error|fatal' "$WORK"/openvpn-*.log | tail -n 2 | tr '\n' ' ')"; return 1; }
  local cipher
  cipher=$(grep -ohE "Data Channel: cipher '[^']*'" "$WORK/openvpn-A.log" | tail -n1 | cut -d"'" -f2)
  OPENVPN_CIPHER=${cipher:-unknown}
}

start_kcptun() {
  # kcptun forwards one TCP port: A's clients connect to 127.0.0.1:12948 in A,
  # kcptun-server in B connects to 127.0.0.1:5201 (iperf3 or the RR server).
  PEER='' TARGET_HOST=127.0.0.1 TARGET_PORT=12948 BIND=127.0.0.1
  local common=(--key bench-"$RUN_ID" --crypt aes --mode fast3 --sndwnd 2048 --rcvwnd 2048 --nocomp --quiet)
  # The first exchange needs something to answer in B.
  spawn B "$WORK/rr-first.log" python3 "$BENCH/lib/rr.py" server 127.0.0.1 "$PORT"
  local rr=$SPAWNED
  wait_for 5 listening "$NS_B" "$PORT" || { START_ERROR="the RR server did not start"; return 1; }
  spawn B "$WORK/kcptun-B.log" kcptun-server -l 10.200.0.2:29900 -t "127.0.0.1:$PORT" "${common[@]}"
  local b=$SPAWNED
  TUN_PIDS=("$b")
  responder_ready 29900 "$b" || { START_ERROR="kcptun: $START_ERROR"; return 1; }
  # No IP tunnel to ping: the first packet through is the first TCP echo.
  # The prober starts first (its interpreter's start-up is not counted) and
  # prints the wall-clock time of its first successful exchange.
  spawn A "$WORK/first-kcptun.out" python3 "$BENCH/lib/rr.py" first 127.0.0.1 12948 --max-seconds 15
  local prober=$SPAWNED
  sleep 0.3
  local t0
  t0=$(now_ms)
  spawn A "$WORK/kcptun-A.log" kcptun-client -l "127.0.0.1:12948" -r 10.200.0.2:29900 "${common[@]}"
  local a=$SPAWNED
  TUN_PIDS=("$a" "$b")
  local deadline=$((SECONDS + 17))
  while ((SECONDS < deadline)) && kill -0 "$prober" 2>/dev/null; do sleep 0.05; done
  stop_pids "$rr" "$prober"
  forget_pids "$rr" "$prober"
  local t1
  t1=$(grep -E '^[0-9]+$' "$WORK/first-kcptun.out" | head -n1)
  [[ -n $t1 ]] || { START_ERROR="kcptun: no echo through it within 15 s: $(tail -n 2 "$WORK"/kcptun-*.log "$WORK/first-kcptun.out" | tr '\n' ' ')"; return 1; }
  FIRST_MS=$((t1 - t0))
}

dead_tunnel_pid() {  # prints a tunnel process that has exited, if any
  local pid
  for pid in "${TUN_PIDS[@]:-}"; do
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || { echo "$pid"; return; }
  done
}

# iperf_cell METRIC STREAMS: one iperf3 cell, recorded; false if it failed.
# With BENCH_KEEP=1, each namespace's TCP and UDP counters (nstat) and
# interface statistics around each cell, for finding where a cell loses.
keep_counters() {  # keep_counters CELL before|after
  [[ ${BENCH_KEEP:-0} == 1 ]] || return 0
  local ns
  for ns in "$NS_A" "$NS_B"; do
    { ip netns exec "$ns" nstat -az 2>/dev/null; ip netns exec "$ns" ip -s link 2>/dev/null; } \
      >"$WORK/$CONFIG-$1-$ns.$2" || true
  done
}

iperf_cell() {
  local ok=0
  keep_counters "$1" before
  iperf "$2" "$1" && ok=1
  keep_counters "$1" after
  local dead
  dead=$(dead_tunnel_pid)
  if [[ -n $dead ]]; then
    record "$CONFIG" "$1" "" "tunnel process $dead exited during the cell"
    return 1
  fi
  if ((ok)); then
    record "$CONFIG" "$1" "$MBPS"
  else
    record "$CONFIG" "$1" "" "$ERR"
    return 1
  fi
}

stop_tunnel() {
  ((${#TUN_PIDS[@]})) || return 0
  stop_pids "${TUN_PIDS[@]}"
  forget_pids "${TUN_PIDS[@]}"
  TUN_PIDS=()
}

# ---------------------------------------------------------- measurements ----
cpu_ticks() {  # utime + stime of TUN_PIDS (all their threads), in clock ticks
  local total=0 pid f
  for pid in "${TUN_PIDS[@]:-}"; do
    [[ -r /proc/$pid/stat ]] || continue
    # Fields after the ")" that closes the command name: utime is the 12th, stime the 13th.
    f=$(sed 's/.*) //' "/proc/$pid/stat")
    read -r -a s <<<"$f"
    total=$((total + s[11] + s[12]))
  done
  echo "$total"
}

peak_rss_mib() {  # the largest VmHWM among TUN_PIDS
  local max=0 pid kb
  for pid in "${TUN_PIDS[@]:-}"; do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    ((kb > max)) && max=$kb
  done
  awk -v k="$max" 'BEGIN { printf "%.1f", k / 1024 }'
}

# iperf STREAMS LABEL: one iperf3 run A -> B. Sets MBPS and BYTES, or ERR.
iperf() {
  local n=$1 label=$2 json=$WORK/$CONFIG-$2.json
  MBPS='' BYTES='' ERR=''
  spawn B "$WORK/$CONFIG-$label-server.log" iperf3 -s -1 -B "$BIND" -p "$PORT"
  local srv=$SPAWNED
  if ! wait_for 5 listening "$NS_B" "$PORT"; then
    ERR="iperf3 server did not start"
    stop_pids "$srv"; forget_pids "$srv"
    return 1
  fi
  run_wait $((CELL_SECONDS + 30)) "$json" "$json.err" ip netns exec "$NS_A" iperf3 -c "$TARGET_HOST" \
    -p "$TARGET_PORT" -t "$CELL_SECONDS" -P "$n" -C "$CC" -J --connect-timeout 5000
  local rc=$RUN_RC
  stop_pids "$srv"
  forget_pids "$srv"
  local parsed
  parsed=$(python3 - "$json" <<'PY' 2>/dev/null
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("ERR no JSON from iperf3"); sys.exit()
if d.get("error") and not d.get("end", {}).get("sum_received"):
    print("ERR", d["error"]); sys.exit()
r = d["end"]["sum_received"]
print(f'{r["bits_per_second"] / 1e6:.1f} {int(r["bytes"])}')
PY
  ) || true
  if [[ -z $parsed || $parsed == ERR* ]]; then
    ERR="iperf3 failed (exit $rc): ${parsed#ERR }$(head -c 200 "$json.err" | tr '\n' ' ')"
    ((rc == 124)) && ERR="iperf3 timed out after $((CELL_SECONDS + 30)) s"
    return 1
  fi
  read -r MBPS BYTES <<<"$parsed"
}

measure_ping() {
  [[ -n $PEER ]] || { record "$CONFIG" ping_ms "" "n/a: forwards a TCP port, carries no ICMP"; return; }
  local out
  # -U: user-to-user time; ping's default (kernel receive timestamps) would
  # not count time spent in user-space tunnels on the way back.
  run_wait 30 "$WORK/$CONFIG-ping.out" "$WORK/$CONFIG-ping.err" \
    ip netns exec "$NS_A" ping -U -n -q -c "$PING_COUNT" -i 0.01 -w 20 "$PEER"
  out=$(cat "$WORK/$CONFIG-ping.out" "$WORK/$CONFIG-ping.err")
  if ((RUN_RC == 0)); then
    local avg loss
    avg=$(sed -n 's|^rtt min/avg/max/mdev = [0-9.]*/\([0-9.]*\)/.*|\1|p' <<<"$out")
    loss=$(grep -o '[0-9.]*% packet loss' <<<"$out" | cut -d% -f1)
    record "$CONFIG" ping_ms "$avg" "$( [[ $loss != 0 ]] && echo "$loss % lost")"
  else
    record "$CONFIG" ping_ms "" "ping failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
  fi
}

measure_rr() {
  spawn B "$WORK/$CONFIG-rr-server.log" python3 "$BENCH/lib/rr.py" server "$BIND" "$PORT" --once
  local srv=$SPAWNED out rc=0
  if ! wait_for 5 listening "$NS_B" "$PORT"; then
    stop_pids "$srv"; forget_pids "$srv"
    record "$CONFIG" rr_median_us "" "RR server did not start"
    record "$CONFIG" rr_p99_us "" "RR server did not start"
    return
  fi
  run_wait 30 "$WORK/$CONFIG-rr.out" "$WORK/$CONFIG-rr.err" ip netns exec "$NS_A" python3 "$BENCH/lib/rr.py" \
    client "$TARGET_HOST" "$TARGET_PORT" --count "$RR_COUNT" --max-seconds 10 --out "$WORK/latency-$CONFIG.txt"
  rc=$RUN_RC
  out=$(cat "$WORK/$CONFIG-rr.out" "$WORK/$CONFIG-rr.err")
  stop_pids "$srv"
  forget_pids "$srv"
  if ((rc == 0)); then
    local med p99 count
    read -r med p99 count < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["median_us"], d["p99_us"], d["count"])' "$out")
    record "$CONFIG" rr_median_us "$med" "$count exchanges"
    record "$CONFIG" rr_p99_us "$p99" "$count exchanges"
  else
    record "$CONFIG" rr_median_us "" "failed: $(tail -n 1 <<<"$out")"
    record "$CONFIG" rr_p99_us "" "failed: $(tail -n 1 <<<"$out")"
  fi
}

impair_both() {  # impair_both LOSS_PCT DELAY_MS [JITTER_MS]: each way, on the receiving end
  local jitter=()
  [[ ${3:-0} != 0 ]] && jitter=(--jitter-ms "$3")
  "$IMPAIR" set "$NS_A" "$VA" --loss-pct "$1" --delay-ms "$2" "${jitter[@]}" --no-gso 2>>"$WORK/impair.log" &&
    "$IMPAIR" set "$NS_B" "$VB" --loss-pct "$1" --delay-ms "$2" "${jitter[@]}" --no-gso 2>>"$WORK/impair.log"
}
impair_clear() {
  "$IMPAIR" clear "$NS_A" "$VA" 2>>"$WORK/impair.log"
  "$IMPAIR" clear "$NS_B" "$VB" 2>>"$WORK/impair.log"
}

# The impaired cells: metric, loss %, one-way delay (ms) on each side, and
# jitter (ms, uniform around the delay, order kept; 0: none). 100 ms RTT is
# where a fixed window stops a single stream; the jitter cell is where
# Hysteria's users report its BBR collapsing.
IMPAIRED=("loss1 1 0 0" "loss5 5 0 0" "d20 0 10 0" "d20l1 1 10 0" "d20l5 5 10 0"
          "d100 0 50 0" "d100l1 1 50 0" "d20j5 0 10 5")
METRICS=(first_ms tput1 tput4 cpu_s_per_gb rss_clean_mib rss_mib ping_ms rr_median_us rr_p99_us
         loss1 loss5 d20 d20l1 d20l5 d100 d100l1 d20j5)

record_all() {  # record_all CONFIG NOTE: every metric not measured, and why
  local m
  for m in "${METRICS[@]}"; do QUIET_RECORD=1 record "$1" "$m" "" "$2"; done
  log "  $1: nothing measured ($2)"
}

run_config() {
  CONFIG=$1
  local cell=$((CELL_SECONDS + 3))
  # Clean cells, ping, RR, start-up, and the impaired cells.
  if ! within_budget $(((2 + ${#IMPAIRED[@]}) * cell + 20)); then
    record_all "$CONFIG" "skipped: time budget (BENCH_BUDGET=$BUDGET s) spent"
    return
  fi
  log "=== $CONFIG"
  START_ERROR='' FIRST_MS='' TUN_PIDS=()
  local ok=0
  case $CONFIG in
    veth) start_veth && ok=1 ;;
    buckwild-stream) start_buckwild stream && ok=1 ;;
    buckwild-packet) start_buckwild packet && ok=1 ;;
    wireguard-go) start_wireguard_go && ok=1 ;;
    openvpn) start_openvpn && ok=1 ;;
    kcptun) start_kcptun && ok=1 ;;
  esac
  if ((!ok)); then
    log "  $CONFIG did not start: $START_ERROR"
    stop_tunnel
    record_all "$CONFIG" "not measured: $START_ERROR"
    return
  fi
  if [[ $CONFIG == veth ]]; then
    record "$CONFIG" first_ms "" "n/a: no tunnel to start"
  else
    record "$CONFIG" first_ms "$FIRST_MS"
  fi

  # Clean throughput, and the tunnel's CPU time over both cells.
  local cpu0 bytes=0 m
  cpu0=$(cpu_ticks)
  for m in 1 4; do
    iperf_cell "tput$m" "$m" && bytes=$((bytes + BYTES))
  done
  if ((${#TUN_PIDS[@]} == 0)); then
    record "$CONFIG" cpu_s_per_gb "" "n/a: kernel only"
    record "$CONFIG" rss_clean_mib "" "n/a: kernel only"
    record "$CONFIG" rss_mib "" "n/a: kernel only"
  else
    local ticks hz
    ticks=$(($(cpu_ticks) - cpu0))
    hz=$(getconf CLK_TCK)
    if ((bytes > 0)); then
      record "$CONFIG" cpu_s_per_gb "$(awk -v t="$ticks" -v hz="$hz" -v b="$bytes" 'BEGIN { printf "%.2f", t / hz / (b / 1e9) }')" \
        "both ends, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e9 }') GB"
    else
      record "$CONFIG" cpu_s_per_gb "" "nothing moved"
    fi
  fi

  # Both daemons' counters after the clean cells, with the raw data kept.
  if [[ ${BENCH_KEEP:-0} == 1 && $CONFIG == buckwild-* ]]; then
    local side
    for side in A B; do
      timeout 10 "$BUCKWILD" status --json --socket "$WORK/ctl-$side.sock" >"$WORK/$CONFIG-status-$side.json" 2>&1 || true
    done
  fi
  measure_ping
  measure_rr
  # The high-water mark so far: what the clean cells needed, before the
  # impaired ones (100 ms RTT) grow the windows to their bandwidth-delay
  # products.
  if ((${#TUN_PIDS[@]})); then
    record "$CONFIG" rss_clean_mib "$(peak_rss_mib)" "largest of the two ends, before the impaired cells"
  fi

  local spec name loss delay jitter
  for spec in "${IMPAIRED[@]}"; do
    read -r name loss delay jitter <<<"$spec"
    if [[ ${BENCH_NO_IMPAIRED:-0} == 1 ]]; then
      record "$CONFIG" "$name" "" "skipped: BENCH_NO_IMPAIRED=1"
      continue
    fi
    if [[ -n ${BENCH_CELLS:-} && " $BENCH_CELLS " != *" $name "* ]]; then
      record "$CONFIG" "$name" "" "skipped: not in BENCH_CELLS"
      continue
    fi
    if ! within_budget "$cell"; then
      record "$CONFIG" "$name" "" "skipped: time budget spent"
      continue
    fi
    local dead
    dead=$(dead_tunnel_pid)
    if [[ -n $dead ]]; then
      record "$CONFIG" "$name" "" "not measured: tunnel process $dead had exited"
      continue
    fi
    if ! impair_both "$loss" "$delay" "$jitter"; then
      record "$CONFIG" "$name" "" "impairment failed: $(tail -n 1 "$WORK/impair.log")"
      impair_clear
      continue
    fi
    iperf_cell "$name" 1 || true
    impair_clear
  done

  if ((${#TUN_PIDS[@]})); then
    record "$CONFIG" rss_mib "$(peak_rss_mib)" "largest of the two ends"
  fi
  [[ $CONFIG == openvpn ]] && record "$CONFIG" note "" "data channel ${OPENVPN_CIPHER:-?}"
  stop_tunnel
}

verify_impair() {  # the impairment does what it says, on the bare underlay
  log "=== checking tools/impair on the underlay"
  local out
  impair_both 0 10 || die "tools/impair failed: $(tail -n 3 "$WORK/impair.log")"
  run_wait 20 "$WORK/check-delay.out" /dev/null ip netns exec "$NS_A" ping -U -n -q -c 50 -i 0.01 -w 10 10.200.0.2
  out=$(sed -n 's|^rtt min/avg/max/mdev = [0-9.]*/\([0-9.]*\)/.*|\1|p' "$WORK/check-delay.out")
  impair_both 5 0 || die "tools/impair failed"
  local lost
  run_wait 30 "$WORK/check-loss.out" /dev/null ip netns exec "$NS_A" ping -n -q -c 400 -i 0.01 -w 20 10.200.0.2
  lost=$(grep -o '[0-9.]*% packet loss' "$WORK/check-loss.out" | cut -d% -f1)
  impair_clear
  IMPAIR_CHECK="10 ms each way: ping RTT ${out:-?} ms; 5 % each way: ${lost:-?} % of 400 pings lost (expected 9.75 %)"
  log "  $IMPAIR_CHECK"
  awk -v r="${out:-0}" 'BEGIN { exit !(r >= 19 && r <= 25) }' || die "delay check failed: RTT ${out:-?} ms with 10 ms each way"
}

versions() {
  local p v
  {
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'cpu\t%s (%s cores)\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" "$(nproc)"
    local rev dirty=
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -n $(git -C "$ROOT" status --porcelain -- src 2>/dev/null) ]] && dirty=" + uncommitted changes in src/"
    printf 'buckwild\t%s (commit %s%s), Release build\n' \
      "$("$BUCKWILD" version 2>/dev/null | head -n1 || echo ?)" "$rev" "$dirty"
    local path
    path=$(cat "$WORK"/buckwild-*-B.log 2>/dev/null | grep -m1 -o 'receive path: [^(]*' | sed 's/receive path: //; s/ *$//') || true
    printf 'buckwild receive path	%s
' "${path:-not run}"
    for p in wireguard-go wireguard-tools openvpn kcptun iperf3; do
      v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo "not installed")
      printf '%s\t%s\n' "$p" "$v"
    done
    printf 'openssl\t%s\n' "$(openssl version)"
    printf 'settings\t%s s per iperf3 cell, iperf3 -C %s, %s pings, %s request/response exchanges\n' \
      "$CELL_SECONDS" "$CC" "$PING_COUNT" "$RR_COUNT"
    printf 'impair\t%s\n' "${IMPAIR_CHECK:-not checked}"
    printf 'cc\t%s\n' "$CC"
    printf 'load\t%s before measuring (1, 5, 15 min); %s after\n' "${LOAD_BEFORE:-?}" "$(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$WORK/meta.tsv"
}

# ----------------------------------------------------------------- main ----
main() {
  prepare
  make_hosts
  verify_impair
  log "configurations: $ONLY; $CELL_SECONDS s per cell"
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  local c
  for c in $ALL_CONFIGS; do
    [[ " $ONLY " == *" $c "* ]] || continue
    run_config "$c"
  done
  versions
  mkdir -p "$OUT"
  python3 "$BENCH/lib/report.py" --results "$RESULTS" --meta "$WORK/meta.tsv" --latency-dir "$WORK" \
    --out "$OUT" --configs "$ONLY" >&2 || die "writing the report failed"
  log "done in $((SECONDS - T_START)) s: $OUT/latest.md"
}

: >"$WORK/pids"
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
main &
BODY=$!
wait "$BODY"
