#!/usr/bin/env bash
# End-to-end test of the daemon's own time (issue #18): its NTP client against
# real NTP servers, and peer time sync between two daemons.
#
#   three server namespaces, each linked to alice and to bob:
#     ntp1, ntp2  chronyd -x (serves its local clock; never sets the system clock)
#     ntp3        tests/e2e/ntp_liar.py: a healthy-looking server 10 s fast
#   alice  NTP on, testing.clock_offset_ms = 3000 (its system clock 3 s fast)
#   bob    NTP on, no offset
#
# Checks: alice's time converges to the honest servers (a correction of about
# -3 s, a clock_drift audit record), the liar is reported as rejected, pings
# through the tunnel lose nothing; with every server stopped both daemons
# report holdover and the session stays up; then alice restarts with NTP off
# and testing.clock_drift_ppm = 3333 (200 ms a minute): peer time sync keeps
# bob's estimate of alice's clock within the tolerance for a minute, and no
# ping is lost.
#
#   tests/e2e/ntp.sh            as root, after a build (scripts/test.sh runs it)
#   E2E_NTP_DRIFT_SECONDS=30    a shorter drift phase while developing (default 65)
source "$(dirname "$0")/lib.sh"
trap ntp_cleanup EXIT

DRIFT_SECONDS=${E2E_NTP_DRIFT_SECONDS:-65}
NS_N=(bwN1$RUN_ID bwN2$RUN_ID bwN3$RUN_ID)
E2E_SETUP='^(servers answer|tunnel comes up on NTP time)$'

ntp_cleanup() {
  local ns
  for ns in "${NS_N[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  cleanup
  for ns in "${NS_N[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

in_n() { local k=$1; shift; ip netns exec "${NS_N[$((k - 1))]}" "$@"; }

make_servers() {
  local k
  for k in 1 2 3; do
    local ns=${NS_N[$((k - 1))]}
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    # To alice: 10.123.k.1 (server) - 10.123.k.2 (alice); to bob: 10.124.k.x.
    ip link add "na$k$RUN_ID" type veth peer name "sa$k$RUN_ID"
    ip link set "na$k$RUN_ID" netns "$ns"
    ip link set "sa$k$RUN_ID" netns "$NS_A"
    ip link add "nb$k$RUN_ID" type veth peer name "sb$k$RUN_ID"
    ip link set "nb$k$RUN_ID" netns "$ns"
    ip link set "sb$k$RUN_ID" netns "$NS_B"
    ip netns exec "$ns" ip addr add "10.123.$k.1/24" dev "na$k$RUN_ID"
    ip netns exec "$ns" ip addr add "10.124.$k.1/24" dev "nb$k$RUN_ID"
    ip netns exec "$ns" ip link set "na$k$RUN_ID" up
    ip netns exec "$ns" ip link set "nb$k$RUN_ID" up
    in_a ip addr add "10.123.$k.2/24" dev "sa$k$RUN_ID"
    in_a ip link set "sa$k$RUN_ID" up
    in_b ip addr add "10.124.$k.2/24" dev "sb$k$RUN_ID"
    in_b ip link set "sb$k$RUN_ID" up
  done
}

# start_servers: chronyd in ntp1 and ntp2, the liar in ntp3; SERVER_PIDS.
SERVER_PIDS=()
start_servers() {
  local k
  SERVER_PIDS=()
  for k in 1 2; do
    local dir=$WORK/chrony$k
    mkdir -p "$dir"
    # Serves its own (the system's) clock as stratum 8; -x: never adjusts the
    # clock; every file it writes is in the test's directory.
    cat >"$dir/chrony.conf" <<CONF
local stratum 8
allow all
port 123
cmdport 0
pidfile $dir/chronyd.pid
driftfile $dir/drift
CONF
    ip netns exec "${NS_N[$((k - 1))]}" chronyd -x -d -u root -f "$dir/chrony.conf" >>"$dir/chronyd.log" 2>&1 &
    SERVER_PIDS+=($!)
    PIDS+=($!)
  done
  ip netns exec "${NS_N[2]}" python3 "$ROOT/tests/e2e/ntp_liar.py" --listen 0.0.0.0:123 --ahead 10 \
    >>"$WORK/liar.log" 2>&1 &
  SERVER_PIDS+=($!)
  PIDS+=($!)
}

stop_servers() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
  SERVER_PIDS=()
}

# sntp_offset K: one NTP query from alice to server K; prints its offset (s).
sntp_offset() {
  in_a python3 - "10.123.$1.1" <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
t1 = time.time()
s.sendto(b"\x23" + b"\0" * 39 + b"\x01" * 8, (sys.argv[1], 123))
d, _ = s.recvfrom(512)
t4 = time.time()
rx, tx = struct.unpack("!QQ", d[32:48])
conv = lambda v: (v >> 32) - 2208988800 + (v & 0xFFFFFFFF) / 2**32
print("%.3f" % (((conv(rx) - t1) + (conv(tx) - t4)) / 2))
PY
}

servers_answer() {
  local k off
  for k in 1 2 3; do
    off=$(sntp_offset $k) || return 1
    log "server $k offset from this machine's clock: $off s"
  done
}

ntp_env() {  # ntp_env A|B: the daemon's NTP settings
  local net=10.123
  [[ $1 == B ]] && net=10.124
  echo BUCKWILD_NTP_ENABLED=true "BUCKWILD_NTP_SERVERS=$net.1.1,$net.2.1,$net.3.1" \
    BUCKWILD_NTP_VALIDATION_TIMEOUT_MS=1000 BUCKWILD_LOGGING_AUDIT_LOG_PATH="$WORK/audit-$1.jsonl"
}

status_json() { "$BUCKWILD" status --json --socket "$WORK/ctl-$1.sock"; }

# jq-less: py_status HOST EXPR: evaluates a Python expression over the status
# document `s` and prints it.
py_status() {
  status_json "$1" | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

# ping_for SECONDS: pings bob from alice 5 times a second; fails on any loss.
ping_for() {
  local count=$(($1 * 5)) out
  out=$(in_a ping -c "$count" -i 0.2 -W 1 10.77.0.2) || true
  local loss
  loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' <<<"$out")
  log "ping: $(grep -o '[0-9]* packets transmitted.*loss' <<<"$out")"
  [[ $loss == 0 ]]
}

t_tunnel_on_ntp_time() {
  start_daemon B "$WORK/bob.toml" $(ntp_env B)
  BOB=$DAEMON_PID
  start_daemon A "$WORK/alice.toml" $(ntp_env A) BUCKWILD_TESTING_CLOCK_OFFSET_MS=3000
  ALICE=$DAEMON_PID
  wait_until 15 tunnel_up || { tail -n 30 "$WORK"/daemon-*.log >&2; return 1; }
}

t_alice_converges() {
  # Our time = the system clock (3 s fast for alice) plus the correction.
  local c
  c=$(py_status A 's["time"]["correction_ms"]')
  log "alice: source $(py_status A 's["time"]["source"]'), correction $c ms"
  [[ $(py_status A 's["time"]["source"]') == ntp ]] &&
    python3 -c "import sys; sys.exit(0 if abs($c + 3000) < 50 else 1)" &&
    [[ $(py_status B 's["time"]["source"]') == ntp ]] &&
    python3 -c "import sys; sys.exit(0 if abs($(py_status B 's["time"]["correction_ms"]')) < 50 else 1)"
}

t_liar_rejected() {
  local states
  states=$(py_status A '" ".join(x["state"] for x in s["time"]["servers"])')
  log "alice's servers: $states"
  [[ $states == "selected selected rejected" ]] || return 1
  grep -q "rejected as falsetickers: 10.123.3.1:123" "$WORK/daemon-A.log" &&
    "$BUCKWILD" status --socket "$WORK/ctl-A.sock" | grep -q "ntp server 10.123.3.1:123: rejected"
}

t_drift_audited() {
  # Alice's system clock is 3 s off the NTP time: a warning and an audit record.
  grep -q '"event":"clock_drift"' "$WORK/audit-A.jsonl" &&
    grep '"event":"clock_drift"' "$WORK/audit-A.jsonl" | grep -q system_clock_diverged &&
    [[ $(py_status A 's["time"]["drift_warning"]') == True ]] &&
    ! grep -q '"event":"clock_drift"' "$WORK/audit-B.jsonl" 2>/dev/null
}

t_no_lost_pings() { ping_for 10; }

holdover() { [[ $(py_status "$1" 's["time"]["source"]') == holdover ]]; }

t_fallback_when_servers_stop() {
  stop_servers
  # Three unanswered polls (8 to 16 s apart, 1 s timeout) make a server
  # unreachable; keep pinging meanwhile.
  # `ip netns exec` execs ping, so $! is ping itself: SIGINT ends it with its summary.
  ip netns exec "$NS_A" ping -c 300 -i 0.2 -W 1 10.77.0.2 >"$WORK/ping-holdover.txt" 2>&1 &
  local ping=$!
  PIDS+=($ping)
  wait_until 60 holdover A && wait_until 10 holdover B || { kill $ping; return 1; }
  log "alice: $(grep -m1 'no majority of NTP servers can be trusted' "$WORK/daemon-A.log" | sed 's/.*time: //')"
  kill -INT $ping 2>/dev/null || true
  wait $ping 2>/dev/null || true
  log "ping during the loss of the servers: $(grep -o '[0-9]* packets transmitted.*loss' "$WORK/ping-holdover.txt")"
  grep -q ' 0% packet loss' "$WORK/ping-holdover.txt" && tunnel_up
}

t_peer_time_sync_follows_drift() {
  stop_pid "$ALICE"
  start_daemon A "$WORK/alice.toml" BUCKWILD_TESTING_CLOCK_DRIFT_PPM=3333
  ALICE=$DAEMON_PID
  wait_until 15 tunnel_up || return 1
  local t0=$SECONDS
  ping_for "$DRIFT_SECONDS" || return 1
  # Alice's clock is now ~3.3 ms ahead per second of its run; bob's estimate
  # of it (clock_offset_ms) must have followed within the tolerance.
  local elapsed offset measured resyncs
  elapsed=$(py_status A 's["uptime_ms"]')
  offset=$(py_status B '[p for p in s["peers"] if p["session"]][0]["session"]["clock_offset_ms"]')
  measured=$(py_status B '[p for p in s["peers"] if p["session"]][0]["session"]["time_sync"]["measurements"]')
  resyncs=$(py_status B '[p for p in s["peers"] if p["session"]][0]["session"]["time_sync"]["resyncs"]')
  log "after $((SECONDS - t0)) s: alice drifted $((elapsed * 3333 / 1000000)) ms, bob's estimate $offset ms ($measured measurements, $resyncs resyncs)"
  ((measured >= DRIFT_SECONDS / 10 - 1)) &&
    python3 -c "import sys; sys.exit(0 if abs($offset - $elapsed * 3333 / 1e6) <= 60 and $offset > 50 else 1)"
}

make_hosts
make_servers
write_configs
start_servers
check "servers answer" wait_until 10 servers_answer
check "tunnel comes up on NTP time" t_tunnel_on_ntp_time
check "alice converges to the honest servers" t_alice_converges
check "the liar is rejected" t_liar_rejected
check "clock drift is warned and audited" t_drift_audited
check "no lost pings on NTP time" t_no_lost_pings
check "servers stopped: holdover, session up" t_fallback_when_servers_stop
check "peer time sync follows a drifting clock" t_peer_time_sync_follows_drift

echo "$passed passed, $failed failed"
((failed == 0)) || { printf 'failed: %s\n' "${failures[@]}"; tail -n 40 "$WORK"/daemon-*.log >&2; exit 1; }
