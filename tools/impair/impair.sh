#!/usr/bin/env bash
# Network impairment for an interface without netem: random loss, a one-way
# delay with jitter, reordering and a rate cap on the packets crossing it in
# one direction.
#
#   impair.sh set   NETNS DEV [--loss-pct P | --loss-ppm N] [--delay-ms D]
#                             [--jitter-ms J [--jitter-dist uniform|normal]
#                              [--jitter-max-ms B]] [--reorder-pct P [--reorder-ms E]]
#                             [--rate-mbit M | --rate-Bps N [--burst-bytes N]
#                              [--queue-bytes N]] [--seed N]
#                             [--udp-only] [--egress] [--no-gso]
#   impair.sh clear NETNS DEV
#   impair.sh show  NETNS DEV
#   impair.sh build            compile only; prints the build directory
#
# NETNS is a name from `ip netns list`, or "-" for the namespace this runs in.
#   --loss-pct P / --loss-ppm N  drop that fraction of the packets at random
#                  (a tc BPF program, impair.bpf.c)
#   --delay-ms D   hold each packet D ms (an iptables NFQUEUE rule and
#                  impair_delay.c, a small daemon started in NETNS)
#   --jitter-ms J  vary each packet's delay around D: uniform in [D-J, D+J]
#                  (--jitter-dist normal: normal with sigma J), bounded by
#                  --jitter-max-ms B (default J, or 3J for normal), never below
#                  0. Jitter keeps the packets' order (as a link's queue does)
#   --reorder-pct P  hold P % of the packets, at random, --reorder-ms E more
#                  (default 5): the packets behind them overtake them
#   --rate-mbit M / --rate-Bps N  cap the rate (megabits / bytes per second):
#                  a token bucket of --burst-bytes (default 1514) in front of a
#                  queue of --queue-bytes (default 262144); packets that do not
#                  fit the queue are dropped (tail drop; counted, see show).
#                  Applied before the delay, jitter and reordering
#   --seed N       seed of the jitter and reordering draws (default: random)
#   --udp-only     impair UDP only (a tunnel's underlay; the TCP of a
#                  benchmark's control connection passes untouched)
#   --egress       impair the packets DEV sends instead of those it receives
#                  (the default). Right for a router namespace's forwarded
#                  traffic; on a host's own traffic, egress loss is reported to
#                  the sending socket (ENOBUFS; TCP retries without a loss) and
#                  held packets count against its socket buffer. Ingress has
#                  neither effect: the sender sees a lossy, slow link.
#   --no-gso       turn TSO/GSO off on DEV (clear restores them), so that TCP
#                  sent through DEV is impaired per segment, not per 64 KB GSO
#                  packet: use it on the sending end of a link
# set replaces the whole configuration (an option not given is 0 / off) and
# can be run again at any time; clear removes everything set added and does
# nothing on a clean interface. One direction per interface: impair both ends
# of a link for loss or delay both ways. See tools/impair/README.md.
#
# Environment: IMPAIR_BUILD_DIR (where the programs are compiled; default a
# cache directory under /tmp keyed by the sources), CLANG (default clang-16).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/impair.bpf.c
DELAY_SRC=$HERE/impair_delay.c
SCHED_SRC=$HERE/impair_sched.h
PREF=4242  # the tc filter priority that marks our filter
STATE_DIR=/run/buckwild-impair

die() { printf 'impair.sh: %s\n' "$*" >&2; exit 1; }
usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found ($2)"; }

# output_has PATTERN COMMAND...: COMMAND's output has a line matching PATTERN
# (ERE). Not `COMMAND | grep -q`: under pipefail, grep leaving early can
# fail the pipeline with the writer's SIGPIPE.
output_has() {
  local pattern=$1 out
  shift
  out=$("$@" 2>/dev/null) || true
  grep -qE -- "$pattern" <<<"$out"
}

# ---------------------------------------------------------------- build ----
find_clang() {
  if [[ -n ${CLANG:-} ]]; then need "$CLANG" "set CLANG to a clang binary"; echo "$CLANG"; return; fi
  local c
  for c in clang-16 clang; do
    command -v "$c" >/dev/null 2>&1 && { echo "$c"; return; }
  done
  die "clang not found (scripts/setup.sh installs clang-16)"
}

# Compiles impair.bpf.o and impair_delay into the build directory (once per
# version of the sources) and prints the directory.
build() {
  local clang
  clang=$(find_clang)
  need cc "apt-get install build-essential"
  [[ -r /usr/include/bpf/bpf_helpers.h ]] || die "/usr/include/bpf/bpf_helpers.h missing (apt-get install libbpf-dev)"
  [[ -r $SRC && -r $DELAY_SRC && -r $SCHED_SRC ]] || die "$SRC, $DELAY_SRC or $SCHED_SRC missing"
  local key dir
  key=$( { cat "$SRC" "$DELAY_SRC" "$SCHED_SRC"; "$clang" --version | head -n1; cc --version | head -n1; } | sha256sum | cut -c1-16)
  dir=${IMPAIR_BUILD_DIR:-/tmp/buckwild-impair-$key}
  if [[ -e $dir/impair.bpf.o && -x $dir/impair_delay && -e $dir/.key && $(cat "$dir/.key") == "$key" ]]; then
    echo "$dir"
    return
  fi
  mkdir -p "$dir"
  local multiarch tmp
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  if ! "$clang" -target bpf -O2 -g -Wall -Werror -I"/usr/include/$multiarch" \
       -c "$SRC" -o "$tmp/impair.bpf.o" 2>"$tmp/err"; then
    cat "$tmp/err" >&2
    rm -rf "$tmp"
    die "compiling $SRC failed"
  fi
  if ! cc -O2 -Wall -Wextra -Werror -o "$tmp/impair_delay" "$DELAY_SRC" -lm 2>"$tmp/err"; then
    cat "$tmp/err" >&2
    rm -rf "$tmp"
    die "compiling $DELAY_SRC failed"
  fi
  # rename(2) each: concurrent callers see whole files or none.
  mv -f "$tmp/impair.bpf.o" "$dir/impair.bpf.o"
  mv -f "$tmp/impair_delay" "$dir/impair_delay"
  echo "$key" >"$tmp/key" && mv -f "$tmp/key" "$dir/.key"
  rm -rf "$tmp"
  echo "$dir"
}

# ------------------------------------------------------------- helpers ----
NS=-
DEV=
in_ns() {
  if [[ $NS == - ]]; then "$@"; else ip netns exec "$NS" "$@"; fi
}

check_target() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (tc, BPF, iptables)"
  need tc "apt-get install iproute2"
  if [[ $NS != - ]]; then
    [[ -e /run/netns/$NS ]] && output_has "^$NS( |\$)" ip netns list || die "no network namespace '$NS' (ip netns list)"
  fi
  in_ns ip link show dev "$DEV" >/dev/null 2>&1 || die "no interface '$DEV' in namespace $NS"
}

state() { echo "$STATE_DIR/${NS//\//_}.$DEV.$1"; }

# prog_id ingress|egress: the id of our BPF program there, or nothing.
prog_id() {
  in_ns tc filter show dev "$DEV" "$1" pref "$PREF" 2>/dev/null |
    sed -n 's/.* id \([0-9][0-9]*\) name impair .*/\1/p' | head -n1
}

# map_id PROG_ID MAP_NAME
map_id() {
  local id
  for id in $(bpftool prog show id "$1" | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr ',' ' '); do
    if output_has "^$id: .* name $2 " bpftool map show id "$id"; then
      echo "$id"
      return
    fi
  done
}

# le BYTES VALUE: VALUE as BYTES little-endian bytes, in bpftool's syntax.
le() {
  local n=$1 v=$2 out='' i
  for ((i = 0; i < n; i++)); do
    out+=" $((v & 255))"
    v=$((v >> 8))
  done
  echo "$out"
}

# The NFQUEUE number for DEV: derived from its ifindex, so unique in NETNS.
queue_num() {
  local idx
  idx=$(in_ns cat "/sys/class/net/$DEV/ifindex" 2>/dev/null) ||
    idx=$(in_ns ip -o link show dev "$DEV" | cut -d: -f1)
  echo $((32768 + idx % 32768))
}

# The running impair_delay for DEV, if any: prints its PID.
delay_pid() {
  local f pid
  f=$(state delay.pid)
  [[ -r $f ]] || return 0
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  local cmd
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 0
  [[ $cmd == *impair_delay* ]] || return 0
  echo "$pid"
}

stop_delay() {
  local pid
  pid=$(delay_pid)
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$(state delay.pid)"
}

# our_rules iptables|ip6tables: our rules for DEV as delete commands, one a line.
our_rules() {
  local chain
  for chain in PREROUTING POSTROUTING; do
    in_ns "$1" -w -t mangle -S "$chain" 2>/dev/null |
      grep -F -- "--comment \"buckwild-impair $DEV\"" | sed 's/^-A /-D /' || true
  done
}

remove_rules() {
  local t rule
  for t in iptables ip6tables; do
    command -v "$t" >/dev/null 2>&1 || continue
    while IFS= read -r rule; do
      [[ -n $rule ]] || continue
      eval "in_ns $t -w -t mangle $rule" || true
    done < <(our_rules "$t")
  done
}

restore_gso() {
  local sf
  sf=$(state gso)
  [[ -e $sf ]] || return 0
  local tso gso
  read -r tso gso <"$sf" || true
  in_ns ethtool -K "$DEV" tso "${tso:-on}" gso "${gso:-on}" 2>/dev/null || true
  rm -f "$sf"
}

# remove_filter ingress|egress
remove_filter() {
  output_has '^qdisc clsact ' in_ns tc qdisc show dev "$DEV" || return 0
  in_ns tc filter del dev "$DEV" "$1" pref "$PREF" 2>/dev/null || true
  # The clsact qdisc goes too unless someone else has filters on it.
  if [[ -z $(in_ns tc filter show dev "$DEV" egress) && -z $(in_ns tc filter show dev "$DEV" ingress) ]]; then
    in_ns tc qdisc del dev "$DEV" clsact 2>/dev/null || true
  fi
}

# ------------------------------------------------------------ commands ----
cmd_set() {
  local loss_ppm=0 delay_ns=0 flags=0 no_gso=0 dir=ingress
  local jitter_ns=0 jitter_max_ns=0 jitter_dist=uniform reorder_ppm=0 reorder_ns=5000000
  local rate_Bps=0 burst_bytes=1514 queue_bytes=262144 seed=
  # ms_to_ns OPTION VALUE: VALUE ms (a number, at most 10 s) in ns.
  ms_to_ns() {
    [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$1 needs a number of milliseconds, got '${2:-}'"
    local ns
    ns=$(awk -v d="$2" 'BEGIN { printf "%d", d * 1000000 + 0.5 }')
    ((ns <= 10000000000)) || die "$1 must be at most 10000"
    echo "$ns"
  }
  # integer OPTION VALUE MAX
  integer() {
    [[ ${2:-} =~ ^[0-9]+$ ]] && ((${#2} <= 12 && $2 <= $3)) || die "$1 needs an integer 0..$3, got '${2:-}'"
    echo "$2"
  }
  while (($#)); do
    case $1 in
      --loss-pct)
        [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--loss-pct needs a number 0..100, got '${2:-}'"
        loss_ppm=$(awk -v p="$2" 'BEGIN { printf "%d", p * 10000 + 0.5 }')
        ((loss_ppm <= 1000000)) || die "--loss-pct must be at most 100"
        shift 2 ;;
      --loss-ppm)
        [[ ${2:-} =~ ^[0-9]+$ && ${2:-} -le 1000000 ]] || die "--loss-ppm needs an integer 0..1000000, got '${2:-}'"
        loss_ppm=$2
        shift 2 ;;
      --delay-ms)
        [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--delay-ms needs a number of milliseconds, got '${2:-}'"
        delay_ns=$(awk -v d="$2" 'BEGIN { printf "%d", d * 1000000 + 0.5 }')
        ((delay_ns <= 10000000000)) || die "--delay-ms must be at most 10000"
        shift 2 ;;
      --jitter-ms) jitter_ns=$(ms_to_ns "$1" "${2:-}"); shift 2 ;;
      --jitter-max-ms) jitter_max_ns=$(ms_to_ns "$1" "${2:-}"); shift 2 ;;
      --jitter-dist)
        [[ ${2:-} == uniform || ${2:-} == normal ]] || die "--jitter-dist is uniform or normal, got '${2:-}'"
        jitter_dist=$2
        shift 2 ;;
      --reorder-pct)
        [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--reorder-pct needs a number 0..100, got '${2:-}'"
        reorder_ppm=$(awk -v p="$2" 'BEGIN { printf "%d", p * 10000 + 0.5 }')
        ((reorder_ppm <= 1000000)) || die "--reorder-pct must be at most 100"
        shift 2 ;;
      --reorder-ms) reorder_ns=$(ms_to_ns "$1" "${2:-}"); shift 2 ;;
      --rate-Bps) rate_Bps=$(integer "$1" "${2:-}" 100000000000); shift 2 ;;
      --rate-mbit)
        [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--rate-mbit needs a number of megabits per second, got '${2:-}'"
        rate_Bps=$(awk -v m="$2" 'BEGIN { printf "%d", m * 125000 + 0.5 }')
        ((rate_Bps <= 100000000000)) || die "--rate-mbit must be at most 800000"
        shift 2 ;;
      --burst-bytes) burst_bytes=$(integer "$1" "${2:-}" 1073741824); ((burst_bytes > 0)) || die "--burst-bytes must be at least 1"; shift 2 ;;
      --queue-bytes) queue_bytes=$(integer "$1" "${2:-}" 1073741824); ((queue_bytes > 0)) || die "--queue-bytes must be at least 1"; shift 2 ;;
      --seed) seed=$(integer "$1" "${2:-}" 999999999999); ((seed > 0)) || die "--seed must be at least 1"; shift 2 ;;
      --udp-only) flags=$((flags | 1)); shift ;;
      --egress) dir=egress; shift ;;
      --ingress) dir=ingress; shift ;;
      --no-gso) no_gso=1; shift ;;
      *) die "set: unknown option '$1' (see impair.sh --help)" ;;
    esac
  done
  local other=egress
  [[ $dir == egress ]] && other=ingress
  check_target
  mkdir -p "$STATE_DIR"
  local bdir
  bdir=$(build)

  # Segmentation offloads.
  if ((no_gso)); then
    need ethtool "apt-get install ethtool"
    local sf
    sf=$(state gso)
    if [[ ! -e $sf ]]; then
      in_ns ethtool -k "$DEV" | awk '/^(tcp-segmentation-offload|generic-segmentation-offload):/ {print $2}' |
        paste -sd' ' >"$sf"
    fi
    in_ns ethtool -K "$DEV" tso off gso off 2>/dev/null || in_ns ethtool -K "$DEV" gso off ||
      die "ethtool could not turn segmentation offloads off on $DEV"
  elif [[ -e $(state gso) ]]; then
    need ethtool "apt-get install ethtool"
    restore_gso
  fi

  # Loss: the BPF program on a clsact hook, configured through its map.
  remove_filter "$other"
  if ((loss_ppm > 0)); then
    need bpftool "apt-get install bpftool"
    output_has '^qdisc clsact ' in_ns tc qdisc show dev "$DEV" ||
      in_ns tc qdisc add dev "$DEV" clsact || die "could not add a clsact qdisc to $DEV"
    local pid
    pid=$(prog_id "$dir")
    if [[ -z $pid ]]; then
      local err
      err=$(in_ns tc filter replace dev "$DEV" "$dir" pref "$PREF" handle 1 bpf direct-action \
            obj "$bdir/impair.bpf.o" sec tc 2>&1) || die "loading $bdir/impair.bpf.o on $DEV failed: $err"
      pid=$(prog_id "$dir")
      [[ -n $pid ]] || die "the BPF program is not on $DEV after loading it"
    fi
    local mid
    mid=$(map_id "$pid" impair_config)
    [[ -n $mid ]] || die "no impair_config map on program $pid"
    # struct impair_config { u32 loss_ppm; u32 flags; }
    # shellcheck disable=SC2046
    bpftool map update id "$mid" key 0 0 0 0 value $(le 4 "$loss_ppm") $(le 4 "$flags") ||
      die "writing the configuration to map $mid failed"
  else
    remove_filter "$dir"
  fi

  # Delay, jitter, reordering and the rate cap: an NFQUEUE rule for DEV and
  # impair_delay holding the queue.
  local held_args=()
  ((jitter_ns > 0)) && held_args+=(--jitter-ns "$jitter_ns" --jitter-dist "$jitter_dist")
  ((jitter_ns > 0 && jitter_max_ns > 0)) && held_args+=(--jitter-max-ns "$jitter_max_ns")
  ((reorder_ppm > 0)) && held_args+=(--reorder-ppm "$reorder_ppm" --reorder-extra-ns "$reorder_ns")
  ((rate_Bps > 0)) && held_args+=(--rate-Bps "$rate_Bps" --burst-bytes "$burst_bytes" --queue-bytes "$queue_bytes")
  [[ -n $seed ]] && held_args+=(--seed "$seed")
  if ((delay_ns > 0 || jitter_ns > 0 || reorder_ppm > 0 || rate_Bps > 0)); then
    need iptables "apt-get install iptables"
    local q
    q=$(queue_num)
    local match=(PREROUTING -i "$DEV")
    [[ $dir == egress ]] && match=(POSTROUTING -o "$DEV")
    ((flags & 1)) && match+=(-p udp)
    # --queue-bypass: while no impair_delay listens (between a stop and a
    # start), packets pass undelayed instead of being dropped.
    local rule=("${match[@]}" -m comment --comment "buckwild-impair $DEV"
                -j NFQUEUE --queue-num "$q" --queue-bypass)
    local running want_cmd
    running=$(delay_pid)
    want_cmd="$bdir/impair_delay $q $delay_ns${held_args[*]:+ ${held_args[*]}}"
    if [[ -n $running && $(tr '\0' ' ' 2>/dev/null <"/proc/$running/cmdline") != "$want_cmd " ]]; then
      stop_delay
      running=
    fi
    if [[ -z $running ]]; then
      local log
      log=$(state delay.log)
      : >"$log"
      # Started directly (not through in_ns, a function: $! would be a
      # subshell's): ip netns exec execs the program, so $! is its PID.
      if [[ $NS == - ]]; then
        "$bdir/impair_delay" "$q" "$delay_ns" "${held_args[@]}" </dev/null >>"$log" 2>&1 &
      else
        ip netns exec "$NS" "$bdir/impair_delay" "$q" "$delay_ns" "${held_args[@]}" </dev/null >>"$log" 2>&1 &
      fi
      local dpid=$!
      echo "$dpid" >"$(state delay.pid)"
      local i ok=0
      for ((i = 0; i < 100; i++)); do
        grep -q '^impair_delay: queue .* held$' "$log" && { ok=1; break; }
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.05
      done
      if ((!ok)); then
        kill "$dpid" 2>/dev/null || true
        rm -f "$(state delay.pid)"
        die "impair_delay did not start: $(cat "$log")"
      fi
    fi
    # Nothing to do when ours is the only rule for DEV; otherwise (the other
    # direction, with or without -p udp) they all go and ours is added.
    local t
    for t in iptables ip6tables; do
      command -v "$t" >/dev/null 2>&1 || continue
      if in_ns "$t" -w -t mangle -C "${rule[@]}" 2>/dev/null && (($(our_rules "$t" | wc -l) == 1)); then
        continue
      fi
      local r
      while IFS= read -r r; do
        [[ -n $r ]] && { eval "in_ns $t -w -t mangle $r" || true; }
      done < <(our_rules "$t")
      local err
      err=$(in_ns "$t" -w -t mangle -A "${rule[@]}" 2>&1) || {
        [[ $t == ip6tables ]] && continue  # IPv6 is a bonus: the kernel may lack ip6tables
        stop_delay
        die "adding the NFQUEUE rule failed: $err"
      }
    done
  else
    remove_rules
    stop_delay
  fi
  printf 'impair.sh: %s %s %s: loss %s ppm, delay %s ns%s%s%s%s\n' "$NS" "$DEV" "$dir" "$loss_ppm" "$delay_ns" \
    "$( ((jitter_ns > 0)) && echo ", jitter $jitter_ns ns ($jitter_dist)")" \
    "$( ((reorder_ppm > 0)) && echo ", reorder $reorder_ppm ppm (+$reorder_ns ns)")" \
    "$( ((rate_Bps > 0)) && echo ", rate $rate_Bps B/s (burst $burst_bytes B, queue $queue_bytes B)")" \
    "$( ((flags & 1)) && echo ', UDP only')" "$( ((no_gso)) && echo ', GSO/TSO off')" >&2
}

cmd_clear() {
  (($# == 0)) || die "clear takes no options"
  [[ $(id -u) -eq 0 ]] || die "must run as root (tc, BPF, iptables)"
  if [[ $NS != - && ! -e /run/netns/$NS ]] || ! in_ns ip link show dev "$DEV" >/dev/null 2>&1; then
    # The interface is gone (its namespace deleted, say), and with it the
    # filter and the rules: only a daemon and our notes can be left.
    stop_delay
    rm -f "$(state gso)" "$(state delay.log)"
    return 0
  fi
  check_target
  remove_filter ingress
  remove_filter egress
  remove_rules
  stop_delay
  if [[ -e $(state gso) ]]; then need ethtool "apt-get install ethtool"; restore_gso; fi
  rm -f "$(state delay.log)"
}

cmd_show() {
  (($# == 0)) || die "show takes no options"
  check_target
  local said=0 dir
  for dir in ingress egress; do
    local pid
    pid=$(prog_id "$dir")
    [[ -n $pid ]] || continue
    said=1
    local cid sid
    cid=$(map_id "$pid" impair_config)
    sid=$(map_id "$pid" impair_stats)
    # bpftool -j adds a "formatted" rendering from the maps' BTF.
    local cfg loss flags
    cfg=$(bpftool -j map lookup id "$cid" key 0 0 0 0 | grep -o '"formatted":.*')
    loss=$(grep -o '"loss_ppm":[0-9]*' <<<"$cfg" | cut -d: -f2)
    flags=$(grep -o '"flags":[0-9]*' <<<"$cfg" | cut -d: -f2)
    local counts=() k
    for k in 0 1; do
      local sum
      sum=$(bpftool -j map lookup id "$sid" key "$k" 0 0 0 | grep -o '"formatted":.*' |
        grep -o '"value":[0-9]*' | cut -d: -f2 | paste -sd+)
      counts+=("$((${sum:-0}))")
    done
    printf '%s %s %s loss: %s ppm%s; packets seen %s, dropped %s\n' "$NS" "$DEV" "$dir" "$loss" \
      "$( ((flags & 1)) && echo ' (UDP only)')" "${counts[0]}" "${counts[1]}"
  done
  local dpid
  dpid=$(delay_pid)
  if [[ -n $dpid ]]; then
    said=1
    local args
    read -r -a args < <(tr '\0' ' ' 2>/dev/null <"/proc/$dpid/cmdline"; echo) || true
    printf '%s %s delay: %s ms%s (impair_delay PID %s, queue %s)\n' "$NS" "$DEV" \
      "$(awk -v n="${args[2]}" 'BEGIN { printf "%g", n / 1e6 }')" \
      "$( ((${#args[@]} > 3)) && echo " ${args[*]:3}")" "$dpid" "${args[1]}"
    # Its counters (drops of a full queue, the rate cap's too) go to its log on SIGUSR1.
    local log i before
    log=$(state delay.log)
    before=$(grep -c '^impair_delay: counters:' "$log" 2>/dev/null || true)
    if kill -USR1 "$dpid" 2>/dev/null; then
      for ((i = 0; i < 20; i++)); do
        sleep 0.05
        (($(grep -c '^impair_delay: counters:' "$log" 2>/dev/null || true) > ${before:-0})) && break
      done
      grep '^impair_delay: counters:' "$log" 2>/dev/null | tail -n1 | sed "s/^impair_delay: counters:/  counters:/" || true
    fi
    local chain
    for chain in PREROUTING POSTROUTING; do
      in_ns iptables -w -t mangle -L "$chain" -v -n 2>/dev/null | grep -F "buckwild-impair $DEV" |
        sed "s/^/  $chain: /" || true
    done
  fi
  ((said)) || echo "$NS $DEV: not impaired"
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
  -h | --help | help) usage ;;
  build) (($# == 0)) || die "build takes no arguments"; build ;;
  set | clear | show)
    (($# >= 2)) || die "$cmd needs NETNS and DEV (NETNS '-' = this namespace)"
    NS=$1 DEV=$2
    shift 2
    "cmd_$cmd" "$@" ;;
  *) die "unknown command '$cmd' (set, clear, show, build)" ;;
esac
