#!/usr/bin/env bash
# The flood test (issue #7): a third address on host A (a stranger to bob)
# sends E2E_FLOOD_COUNT datagrams (default one million) with well-formed
# Buckwild headers to bob, as fast as one process can: to random ports of the
# hopping range, first alone and then during an iperf3 transfer through the
# tunnel, and, during the transfer, to the tunnel's current port, followed as
# it hops (an on-path attacker sees it in alice's datagrams). It runs on three
# receive paths in turn: eBPF with the frame filter in XDP, eBPF with it in
# TC ingress, and user space.
#
#   tests/e2e/flood.sh          as root, after a build (scripts/test.sh runs it)
#
# This machine has two cores, and the flooder is a process on it: while it
# runs it takes about one of them from the transfer, wherever its datagrams
# end. So the same transfer also carries a control flood: the same count from
# the same process to host C, whose interface drops every UDP datagram at TC
# ingress (tools/impair at 100 %). What a flood to bob costs beyond the
# control is what bob pays for receiving it.
#
# Checks, on both eBPF paths: the frame filter accounts for the random-port
# flood and none of it reaches the kernel stack; flooded alone, bob's daemon
# spends no CPU on it; during the transfer, bob's daemon spends no more CPU
# per byte moved under either flood than before them. On every path: the
# followed flood did follow the hops. The rest are measurements, summarised
# at the end: what disposing of one datagram costs bob, and the transfer's
# throughput and bob's daemon CPU before and during each flood.
# Ends with "N passed, M failed".
source "$(dirname "$0")/lib.sh"
NS_C=bwC$RUN_ID
IMPAIR=$ROOT/tools/impair/impair.sh
# The kernel times BPF programs while this is 1 (bob logs the mean run time);
# the previous value is put back at exit.
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -q -w kernel.bpf_stats_enabled="$STATS_WAS"; cleanup_sink; cleanup' EXIT
sysctl -q -w kernel.bpf_stats_enabled=1

FLOOD=${FLOOD:-$ROOT/build/tests/buckwild_flood}
COUNT=${E2E_FLOOD_COUNT:-1000000}
FLOOD_LIMIT=60      # the flooder stops after this long even if not done
STRANGER=10.200.0.3
SINK=10.202.0.2     # host C
TICK=$(getconf CLK_TCK)

[[ -x $FLOOD ]] || die "no $FLOOD: build first"

# CPU seconds (user + system) a process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
udp_noports() { ip netns exec "$1" awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print $3}' /proc/net/snmp; }
# Datagrams the stack dropped because a socket's receive queue was full.
udp_rcvbuf_errors() { ip netns exec "$1" awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print $6}' /proc/net/snmp; }
# Frames a veth end dropped on receive (its backlog full, without XDP).
veth_rx_drops() { in_b cat "/sys/class/net/vb$RUN_ID/statistics/rx_dropped"; }
# A veth drops on the sending side (tx_dropped) when the receiver's queue is
# full: with XDP attached that is its 256-packet ring, shared by the flood and
# the tunnel's own datagrams.
veth_drops() { in_a cat "/sys/class/net/va$RUN_ID/statistics/tx_dropped"; }
# Every drop verdict of bob's frame filter, summed.
filter_drops() {
  frame_filter_counter "$BOB" "$WORK/daemon-B.log" drop_bad_port drop_bad_version \
    drop_unknown_type drop_bad_header drop_truncated drop_bad_length drop_rate_limited \
    drop_discovery_rate drop_discovery_total
}
now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
summary() { log "$*"; echo "$*" >>"$WORK/summary"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# Host C: a veth from A whose far end drops every UDP datagram at TC ingress.
make_sink() {
  ip netns add "$NS_C"
  ip link add "vca$RUN_ID" type veth peer name "vcc$RUN_ID"
  ip link set "vca$RUN_ID" netns "$NS_A"
  ip link set "vcc$RUN_ID" netns "$NS_C"
  in_a ip addr add 10.202.0.1/24 dev "vca$RUN_ID"
  ip netns exec "$NS_C" ip addr add "$SINK/24" dev "vcc$RUN_ID"
  in_a ip link set "vca$RUN_ID" up
  ip netns exec "$NS_C" ip link set "vcc$RUN_ID" up
  "$IMPAIR" set "$NS_C" "vcc$RUN_ID" --loss-pct 100 --udp-only >/dev/null
  in_a ping -c1 -W2 "$SINK" >/dev/null  # ARP is not UDP: it passes
}
cleanup_sink() {
  "$IMPAIR" clear "$NS_C" "vcc$RUN_ID" >/dev/null 2>&1 || true
  ip netns pids "$NS_C" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$NS_C" 2>/dev/null || true
}

start_pair() {
  start_daemon B "$WORK/bob.toml" "BUCKWILD_NETWORK_EBPF_ATTACH=$ATTACH" \
    "BUCKWILD_LOGGING_AUDIT_LOG_PATH=$WORK/audit-B.$VARIANT.jsonl"
  BOB=$DAEMON_PID
  BOB_STARTED=$(date +%s)
  start_daemon A "$WORK/alice.toml"
  ALICE=$DAEMON_PID
  wait_until 10 tunnel_up || { tail -n 20 "$WORK"/daemon-*.log >&2; return 1; }
}

stop_pair() {
  stop_pid "$ALICE"
  stop_pid "$BOB"
  # What bob said at shutdown about its valid-port rewrites and security events.
  local line
  line=$(grep -o 'eBPF path: .*' "$WORK/daemon-B.log" | tail -n 1) && summary "$VARIANT: bob's $line"
  summary "$VARIANT: bob logged $(grep -c 'security: ' "$WORK/daemon-B.log") security-event lines" \
    "and $(grep -c 'suppressed .* similar messages' "$WORK/daemon-B.log") suppression summaries"
  # The next pair starts with fresh logs.
  mv "$WORK/daemon-A.log" "$WORK/daemon-A.$VARIANT.log"
  mv "$WORK/daemon-B.log" "$WORK/daemon-B.$VARIANT.log"
}

# Bob's audit log after millions of flood datagrams: every line a JSON object,
# the flood in it as counted records, and the file bounded by design whatever
# the flood's rate: each 10 s flush writes at most 256 records with a source
# (SecurityAuditLimits::max_keys) plus one summed record per event and reason
# beyond them, and there is one flush per 10 s of bob's life (and one as it
# stops). A spoofed flood from a /16 fills the 256 every interval it spans, so
# the bound is per flush, not one size for the file.
AUDIT_MAX_KEYS=256
audit_bounded() {
  local file=$WORK/audit-B.$VARIANT.jsonl
  [[ -s $file ]] || { log "no audit log"; return 1; }
  local size lived
  size=$(stat -c %s "$file")
  lived=$(( $(date +%s) - BOB_STARTED ))
  /usr/bin/python3 - "$file" "$VARIANT" "$AUDIT_MAX_KEYS" "$lived" <<'PY' || return 1
import json, sys
path, variant, max_keys, lived = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
counted, flushes, other, lines = {}, {}, 0, 0
for line in open(path):
    lines += 1
    r = json.loads(line)
    assert isinstance(r, dict) and "time" in r and "event" in r and "severity" in r, line
    d = r.get("details", {})
    if "count" not in d:
        other += 1
        continue
    key = r["event"] + "/" + d["reason"]
    counted[key] = counted.get(key, 0) + d["count"]
    # One flush writes its records within a second; its sourced records are
    # at most max_keys, its summed ones one per event and reason.
    f = flushes.setdefault(r["time"][:19], {"sourced": 0, "summed": set()})
    if r.get("source_address") is None:
        assert (key) not in f["summed"], f"two summed records for {key} in one flush: {line}"
        f["summed"].add(key)
    else:
        f["sourced"] += 1
worst = max((f["sourced"] for f in flushes.values()), default=0)
print(f"{variant}: {lines} audit lines ({other} single events) in {len(flushes)} flushes over {lived} s, "
      f"at most {worst} sourced records in one; counted: {counted}", file=sys.stderr)
ok = bool(counted) and worst <= max_keys
# Flushes every 10 s; a flush's writes may straddle a second boundary.
ok = ok and len(flushes) <= 2 * (lived // 10 + 2)
ok = ok and other <= 100
sys.exit(0 if ok else 1)
PY
  summary "$VARIANT: bob's audit log after the floods: $(wc -l <"$file") lines, $size bytes over ${lived} s"
}

frame_filter_is_expected() {  # the start-up line names the hook asked for
  [[ $RECEIVE_PATH == ebpf ]] || return 0
  grep -q "frame filter: $ATTACH on vb$RUN_ID" "$WORK/daemon-B.log"
}

# The flood with nothing else running, in ROUNDS rounds of a control flood to
# C and a flood to bob, the flooder pinned to one CPU. On a veth the receiving
# half (XDP, TC, or the stack finding no socket) runs in a software interrupt
# on the sending CPU, inside the flooder's own system calls, so the flooder's
# time per datagram is the cost of sending plus the cost of disposing of it.
# The difference between the flood to bob and the control flood is what
# disposing of one datagram costs bob beyond a TC drop on a plain host; each
# takes the fastest of its rounds (the machine's own noise only adds time).
ROUNDS=3
t_flood_alone() {
  local drops0 noports0 veth0 bob0 out round control=() flooded=()
  drops0=$(filter_drops); noports0=$(udp_noports "$NS_B"); veth0=$(veth_drops); bob0=$(cpu_ticks "$BOB")
  for round in $(seq 1 "$ROUNDS"); do
    out=$(in_a taskset -c 0 "$FLOOD" "$STRANGER" "$SINK" "$COUNT" "$FLOOD_LIMIT" --skip-port 1025) ||
      { log "flooder: $out"; return 1; }
    control+=("$(field seconds "$out")")
    out=$(in_a taskset -c 0 "$FLOOD" "$STRANGER" 10.200.0.2 "$COUNT" "$FLOOD_LIMIT" --skip-port 1025) ||
      { log "flooder: $out"; return 1; }
    flooded+=("$(field seconds "$out")")
  done
  sleep 0.5  # let the last batch be processed
  local sent drops noports veth bob
  sent=$((ROUNDS * COUNT))
  drops=$(( $(filter_drops) - drops0 )); noports=$(( $(udp_noports "$NS_B") - noports0 ))
  veth=$(( $(veth_drops) - veth0 )); bob=$(( $(cpu_ticks "$BOB") - bob0 ))
  local fastest_control fastest_flooded cost_ns
  fastest_control=$(printf '%s\n' "${control[@]}" | sort -g | head -n 1)
  fastest_flooded=$(printf '%s\n' "${flooded[@]}" | sort -g | head -n 1)
  cost_ns=$(calc "round(($fastest_flooded - $fastest_control) / $COUNT * 1e9)")
  local program=""
  if [[ $RECEIVE_PATH == ebpf ]]; then
    local hook=xdp ns
    [[ $ATTACH == tc-ingress ]] && hook=tc
    ns=$(grep -o "eBPF program $hook: .*" "$WORK/daemon-B.log" | tail -n 1 | sed -n 's/.*, \([0-9]*\) ns each.*/\1/p')
    program="; the $hook program itself ran ${ns:-?} ns a datagram (the kernel's timing)"
  fi
  summary "$VARIANT: flood alone, pinned to one CPU, $ROUNDS rounds of $COUNT: to bob in" \
    "${flooded[*]} s, to the control sink in ${control[*]} s; disposing of a datagram costs bob" \
    "$cost_ns ns beyond the sink's TC drop ($(calc "round(1e9 / max($cost_ns, 1))") per CPU-second);" \
    "frame filter dropped $drops, kernel stack found no port for $noports, veth queue dropped" \
    "$veth; bob's daemon used $(calc "round($bob / $TICK, 3)") s$program"
  echo "$sent $drops $noports $veth $bob" >"$WORK/flood-alone.$VARIANT"
}

# One flood during the transfer, stopped after DURING_LIMIT seconds; appends
# "name start end bob_ticks sender_cpu veth_drops ports" (times from the
# transfer's start) to the floods file.
DURING_LIMIT=5
flood_during() {
  local name=$1 to=$2 t_start=$3 f0 f1 c0 c1 v0 v1 out
  shift 3
  v0=$(veth_drops); c0=$(cpu_ticks "$BOB"); f0=$(now)
  local ok=0
  out=$(in_a "$FLOOD" "$STRANGER" "$to" "$COUNT" "$DURING_LIMIT" "$@" 2>&1) || ok=$?
  f1=$(now); c1=$(cpu_ticks "$BOB"); v1=$(veth_drops)
  # Exit 3: the time limit came first (measured all the same); else a failure.
  if ((ok != 0 && ok != 3)); then
    log "$name flood failed: $out"
    return 1
  fi
  echo "$name $(calc "$f0 - $t_start") $(calc "$f1 - $t_start") $((c1 - c0)) $(field cpu "$out")" \
    "$((v1 - v0)) $(field ports "$out")" >>"$WORK/floods.$VARIANT"
}

# A 27 s transfer: 4 s clean; the control flood to C; 3 s; the flood to random
# ports of bob; 3 s; the flood that follows the tunnel's current port (an
# on-path attacker: alice's datagrams show it); clean to the end.
t_flood_during_iperf() {
  spawn B "$WORK/iperf-server.log" iperf3 -s -1 -B 10.77.0.2
  local srv=$SPAWNED
  sleep 0.5
  in_a iperf3 -c 10.77.0.2 -t 27 -i 0.25 -J >"$WORK/iperf.$VARIANT.json" &
  local client=$!
  local t_start b0 tb0
  t_start=$(now)
  : >"$WORK/floods.$VARIANT"
  sleep 1
  b0=$(cpu_ticks "$BOB"); tb0=$(now)
  sleep 3
  echo "clean $(calc "$tb0 - $t_start") $(calc "$(now) - $t_start") $(( $(cpu_ticks "$BOB") - b0 )) 0 0" \
    >>"$WORK/floods.$VARIANT"
  local floods=0
  flood_during control "$SINK" "$t_start" --skip-port 1025 && floods=$((floods + 1))
  sleep 3
  flood_during random 10.200.0.2 "$t_start" --skip-port 1025 && floods=$((floods + 1))
  sleep 3
  flood_during followed 10.200.0.2 "$t_start" --follow "va$RUN_ID" && floods=$((floods + 1))
  wait "$client" || { stop_pid $srv; return 1; }
  stop_pid $srv
  ((floods == 3)) || return 1
  python3 - "$WORK/iperf.$VARIANT.json" "$WORK/floods.$VARIANT" "$TICK" "$COUNT" \
    >"$WORK/flood-iperf.$VARIANT" <<'PY'
import json, sys
intervals = [i["sum"] for i in json.load(open(sys.argv[1]))["intervals"]]
tick, count = float(sys.argv[3]), int(sys.argv[4])
phases = {}
for line in open(sys.argv[2]):
    name, start, end, bob_ticks, sender_cpu, veth, *ports = line.split()
    phases[name] = (float(start), float(end), int(bob_ticks), float(sender_cpu), int(veth),
                    ports[0] if ports else "")
def mbits_during(start, end):
    # Mean Mbit/s of the intervals at least half inside [start, end].
    picked = [s for s in intervals
              if min(s["end"], end) - max(s["start"], start) >= (s["end"] - s["start"]) / 2]
    return sum(s["bits_per_second"] for s in picked) / max(len(picked), 1) / 1e6
rows = {}
for name, (start, end, ticks, sender_cpu, veth, ports) in phases.items():
    mbits = mbits_during(start, end)
    cpu = ticks / tick / (end - start)                  # bob's daemon, CPU-seconds per second
    per_gbit = cpu / (mbits / 1000) if mbits else 0.0   # ... per Gbit/s carried
    rows[name] = (mbits, cpu, per_gbit, end - start, sender_cpu, veth, ports)
clean = rows["clean"][0]
parts = [f"{clean:.1f} Mbit/s clean, bob's daemon {rows['clean'][1]:.3f} CPU s/s"
         f" ({rows['clean'][2]:.3f} s per Gbit)"]
for name, label in (("control", "control flood to C"), ("random", "flood to random ports of bob"),
                    ("followed", "flood following the tunnel's port")):
    mbits, cpu, per_gbit, took, sender_cpu, veth, ports = rows[name]
    aimed = f", {ports} ports followed" if ports else ""
    parts.append(f"{label} ({took:.2f} s, sender CPU {sender_cpu:.2f} s{aimed}, veth queue "
                 f"dropped {veth}): {mbits:.1f} Mbit/s = {mbits / clean:.2f} of clean and "
                 f"{mbits / max(rows['control'][0], 0.1):.2f} of control; bob's daemon {cpu:.3f}"
                 f" CPU s/s ({per_gbit:.3f} s per Gbit)")
print("; ".join(parts))
with open(sys.argv[2] + ".cost", "w") as f:
    f.write(f"{rows['clean'][2]} {rows['random'][2]} {rows['followed'][2]} {rows['followed'][6] or 0}\n")
PY
  summary "$VARIANT: during iperf3: $(cat "$WORK/flood-iperf.$VARIANT")"
}

accounted_for() {  # the frame filter (and the veth queue, when it overflows) account for the flood
  local sent drops noports veth bob
  read -r sent drops noports veth bob <"$WORK/flood-alone.$VARIANT"
  log "sent $sent: frame filter dropped $drops, veth queue dropped $veth, stack found no port for $noports"
  (( drops + veth >= sent * 99 / 100 && noports <= sent / 100 ))
}

daemon_untouched() {  # flooded alone, bob's daemon used no more than 50 ms of CPU a round
  local sent drops noports veth bob
  read -r sent drops noports veth bob <"$WORK/flood-alone.$VARIANT"
  log "bob's daemon used $((bob * 1000 / TICK)) ms over $ROUNDS floods"
  (( bob * 1000 / TICK <= 50 * ROUNDS ))
}

# Bob's daemon CPU per Gbit/s carried is no higher during the flood NAME
# (random or followed) than in the 3 clean seconds before, with 30 % for the
# noise of 0.25 s throughput samples. A daemon that received the flood would
# spend up to a core on it.
daemon_cost_flat() {
  local clean random followed ports flooded
  [[ -s $WORK/floods.$VARIANT.cost ]] || return 1
  read -r clean random followed ports <"$WORK/floods.$VARIANT.cost"
  flooded=$random
  [[ $1 == followed ]] && flooded=$followed
  log "bob's daemon: $clean s per Gbit clean, $flooded during the $1 flood"
  python3 -c "import sys; sys.exit(0 if $flooded <= 1.3 * $clean else 1)"
}

# The followed flood hopped with the tunnel: at least four windows' ports.
followed_the_hops() {
  local clean random followed ports
  [[ -s $WORK/floods.$VARIANT.cost ]] || return 1
  read -r clean random followed ports <"$WORK/floods.$VARIANT.cost"
  log "the flooder aimed at $ports ports"
  ((ports >= 4))
}

# Discovery under attack: junk DISCOVERYs and CONFIRMs (well-formed, fresh
# timestamps) from random spoofed sources of 10.99.0.0/16 to bob's discovery
# port, as fast as one process sends them, for DISCOVERY_FLOOD_SECONDS. A
# second into it alice restarts: she must have her session again within 2 s
# of her daemon starting (her discovery comes from her own address and offers
# her PSK, which a stranger's junk cannot spend: docs/protocol.md §6.5). Bob
# answers no stranger (his RESPONSE count grows only by alice's), and his
# daemon's CPU over the flood stays within DISCOVERY_CPU_BOUND of one core.
DISCOVERY_FLOOD=${DISCOVERY_FLOOD:-$ROOT/build/tests/buckwild_discovery_flood}
DISCOVERY_FLOOD_SECONDS=5
DISCOVERY_CPU_BOUND=0.8
status_field() {  # status_field A|B PYTHON-EXPRESSION-ON-s
  "$BUCKWILD" status --json --socket "$WORK/ctl-$1.sock" |
    python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}
alice_has_session() { (($(status_field A 's["counters"]["sessions"]' 2>/dev/null || echo 0) >= 1)); }
t_discovery_under_flood() {
  [[ -x $DISCOVERY_FLOOD ]] || { log "no $DISCOVERY_FLOOD: build first"; return 1; }
  local responses_before cpu_before flooder out took seen started up=0 i
  local rcvbuf_before veth_before rx_before
  responses_before=$(status_field B 's["discovery"]["responses"]')
  rcvbuf_before=$(udp_rcvbuf_errors "$NS_B")
  veth_before=$(veth_drops)
  rx_before=$(veth_rx_drops)
  cpu_before=$(cpu_ticks "$BOB")
  in_a "$DISCOVERY_FLOOD" 10.200.0.2 1025 100000000 "$DISCOVERY_FLOOD_SECONDS" 10.99.0.0 \
    >"$WORK/discovery-flood.$VARIANT" 2>&1 &
  flooder=$!
  sleep 1
  stop_pid "$ALICE"
  started=$(now)
  start_daemon A "$WORK/alice.toml"
  ALICE=$DAEMON_PID
  for ((i = 0; i < 200; i++)); do  # 10 s at most
    if alice_has_session; then up=1; break; fi
    sleep 0.05
  done
  seen=$(calc "$(now) - $started")
  # The time to the session is taken from alice's own log (its line is
  # stamped when the session is made); polling status costs two process
  # starts a round, which a loaded machine stretches to a second.
  took=$(python3 - "$WORK/daemon-A.log" "$started" <<'PY'
import datetime, sys
last = None
for line in open(sys.argv[1]):
    if "established with" in line and "(bob)" in line:
        last = line
if last is None:
    print(1e9)
else:
    t = datetime.datetime.strptime(last[:23], "%Y-%m-%d %H:%M:%S.%f")  # local time, as the daemon logs
    print(f"{t.timestamp() - float(sys.argv[2]):.3f}")
PY
)
  wait "$flooder" || true
  out=$(tail -n 1 "$WORK/discovery-flood.$VARIANT")
  local cpu responses strangers
  cpu=$(calc "($(cpu_ticks "$BOB") - $cpu_before) / $TICK / ($DISCOVERY_FLOOD_SECONDS + 1)")
  local dropped="bob's socket queue dropped $(($(udp_rcvbuf_errors "$NS_B") - rcvbuf_before)),"
  dropped+=" veth dropped $(($(veth_drops) - veth_before)) sending, $(($(veth_rx_drops) - rx_before)) receiving"
  responses=$(status_field B 's["discovery"]["responses"]')
  strangers=$(status_field B 's["discovery"]')
  summary "$VARIANT: spoofed discovery flood ($out): alice's session after ${took} s" \
    "by her log, ${seen} s by status (up: $up); bob's daemon used $(printf %.2f "$cpu") of a core; $dropped; responses $responses_before -> $responses;" \
    "bob's responder: $strangers"
  ((up)) || return 1
  python3 -c "import sys; sys.exit(0 if $took <= 2.0 and $cpu <= $DISCOVERY_CPU_BOUND else 1)" || return 1
  # Alice's restart needs one RESPONSE (two if her first DISCOVERY's went missing).
  ((responses - responses_before >= 1 && responses - responses_before <= 3))
}

make_hosts
write_configs
in_a ip addr add "$STRANGER/24" dev "va$RUN_ID"
make_sink
: >"$WORK/summary"

# FLOOD_VARIANTS picks receive paths (default all three), for a rerun of one.
for VARIANT in ${FLOOD_VARIANTS:-xdp tc userspace}; do
  case $VARIANT in
    xdp) RECEIVE_PATH=ebpf ATTACH=xdp-driver RECEIVE_PATH_LINE='receive path: eBPF' ;;
    tc) RECEIVE_PATH=ebpf ATTACH=tc-ingress RECEIVE_PATH_LINE='receive path: eBPF' ;;
    userspace) RECEIVE_PATH=userspace ATTACH=auto RECEIVE_PATH_LINE='receive path: user space' ;;
  esac
  check "$VARIANT: tunnel comes up" start_pair
  check "$VARIANT: receive path is $RECEIVE_PATH, frame filter $ATTACH" receive_path_is_expected
  if [[ $RECEIVE_PATH == ebpf ]]; then
    check "$VARIANT: the start-up line names $ATTACH" frame_filter_is_expected
  fi
  check "$VARIANT: $ROUNDS floods of $COUNT datagrams to random hopping ports, alone" t_flood_alone
  check "$VARIANT: floods during an iperf3 transfer: control, random ports, following the tunnel" \
    t_flood_during_iperf
  check "$VARIANT: the flooder followed the tunnel's port as it hopped" followed_the_hops
  if [[ $RECEIVE_PATH == ebpf ]]; then
    check "$VARIANT: the frame filter drops the flood (>= 99 %, none reach the stack)" accounted_for
    check "$VARIANT: bob's daemon spends no CPU on the flood" daemon_untouched
    # CPU per Gbit in windows of a few seconds on two shared cores: once in a
    # while softirq work lands on the daemon and one window reads 1.6x. A daemon
    # that received the flood reads 2x or more in every window, so a window
    # over the bound is measured once more before the checks below judge.
    if ! daemon_cost_flat random >/dev/null 2>&1 || ! daemon_cost_flat followed >/dev/null 2>&1; then
      log "$VARIANT: bob's CPU per Gbit rose during a flood in this window; measuring it once more"
      check "$VARIANT: floods during an iperf3 transfer, measured again" t_flood_during_iperf
    fi
    check "$VARIANT: bob's daemon CPU per byte moved does not rise with a random-port flood" \
      daemon_cost_flat random
    check "$VARIANT: bob's daemon CPU per byte moved does not rise with a followed flood" \
      daemon_cost_flat followed
  fi
  check "$VARIANT: a spoofed junk discovery flood: alice re-establishes within 2 s, bob answers no stranger, bounded CPU" \
    t_discovery_under_flood
  stop_pair
  check "$VARIANT: the audit log holds the flood as bounded, valid JSON records" audit_bounded
done

log "summary:"
cat "$WORK/summary" >&2
echo "$passed passed, $failed failed"
((failed == 0))
