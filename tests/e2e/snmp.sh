#!/usr/bin/env bash
# End-to-end tests of the [snmp] AgentX subagent (issue 16): a real snmpd
# (master agentx, its AgentX socket in this run's directory, SNMP on
# 127.0.0.1 inside bob's namespace) and snmptrapd; bob's daemon registers
# BUCKWILD-MIB with it. snmpwalk shows the session row for alice and counters
# that move under ping; snmpd restarted mid-test has the subagent back within
# 10 s, the tunnel untouched; snmpset changes the log level, the discovery
# budget and alice's administrative state (bad values refused), each in the
# audit log; snmptrapd receives bwSessionUp, bwSessionDown (administratively
# down, and alice stopped), and bwAttackDetected under a junk flood.
#
#   tests/e2e/snmp.sh      as root, after a build (scripts/test.sh runs it)
#
# net-snmp's tools read the MIB from packaging/ and its imports from
# tests/mibs/. Ends with "N passed, M failed".
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT

AGENTX=$WORK/agentx.sock
SNMP_PORT=16161
TRAP_PORT=16162
COMMUNITY=bwtest
E2E_SETUP='^(snmpd and snmptrapd start|tunnel comes up)$'
SNMPD_PID=
TRAPD_PID=

snmp_opts=(-v2c -c "$COMMUNITY" -t 1 -r 0 -M "$ROOT/tests/mibs:$ROOT/packaging" -m BUCKWILD-MIB)
# snmp TOOL ARGS...: a net-snmp tool against bob's snmpd.
snmp() { local tool=$1; shift; in_b "$tool" "${snmp_opts[@]}" "$@" "127.0.0.1:$SNMP_PORT" "${SNMP_OIDS[@]}"; }
# get OID...: the values only, one a line.
get() { SNMP_OIDS=("$@"); snmp snmpget -OqvU; }
walk() { SNMP_OIDS=("$@"); snmp snmpwalk -Oq; }

# The bwPeerTable index of a name: length, then its octets.
peer_index() {
  local name=$1 i out=${#1}
  for ((i = 0; i < ${#name}; i++)); do out+=".$(printf '%d' "'${name:i:1}")"; done
  echo "$out"
}
ALICE_ROW=$(peer_index alice)
ROOT_OID=.1.3.6.1.4.1.63728
TRAP_OID=.1.3.6.1.6.3.1.1.4.1.0

# trap_count N: how many bwNotification N snmptrapd logged.
trap_count() { grep -c -- "$TRAP_OID = OID: $ROOT_OID.0.$1\b" "$WORK/traps.log" || true; }
# traps_over N COUNT: more than COUNT of them (for wait_until, which reruns it).
traps_over() { (($(trap_count "$1") > $2)); }

start_snmpd() {
  cat >"$WORK/snmpd.conf" <<CONF
master agentx
agentXSocket $AGENTX
agentXPerms 0600 0700
agentXTimeout 1
rwcommunity $COMMUNITY 127.0.0.1
trap2sink 127.0.0.1:$TRAP_PORT $COMMUNITY
CONF
  mkdir -p "$WORK/snmp-state"
  # -C: this file alone; -f: stay in the foreground, so PID is snmpd's.
  SNMP_PERSISTENT_DIR=$WORK/snmp-state spawn B "$WORK/snmpd.log" \
    env SNMP_PERSISTENT_DIR="$WORK/snmp-state" snmpd -f -C -c "$WORK/snmpd.conf" -Lf "$WORK/snmpd.log" \
    "udp:127.0.0.1:$SNMP_PORT"
  SNMPD_PID=$SPAWNED
  wait_until 10 test -S "$AGENTX"
}

start_snmp_servers() {
  cat >"$WORK/snmptrapd.conf" <<CONF
authCommunity log $COMMUNITY
CONF
  # -On: numeric OIDs (SNMPv2-MIB is not among the MIBs loaded).
  spawn B "$WORK/snmptrapd.log" snmptrapd -f -On -C -c "$WORK/snmptrapd.conf" -Lf "$WORK/traps.log" \
    -M "$ROOT/tests/mibs:$ROOT/packaging" -m BUCKWILD-MIB "udp:127.0.0.1:$TRAP_PORT"
  TRAPD_PID=$SPAWNED
  sleep 0.5
  start_snmpd
}

# snmptrapd logged snmpd's coldStart: the trap path works.
t_trap_path() {
  # snmpTrapOID.0 = coldStart, numerically.
  wait_until 10 grep -qF '.1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.5.1' "$WORK/traps.log" ||
    { cat "$WORK/traps.log" "$WORK/snmptrapd.log" >&2; return 1; }
}

start_pair() {
  write_configs
  cat >>"$WORK/bob.toml" <<CONF

[snmp]
enabled = true
agentx_socket = "$AGENTX"
CONF
  # A peer that stops answering is dead after 3 s (the sessionDown trap in
  # seconds, not the default 90); attacks reported from 20 refusals or 50
  # filter drops a second; bob's audit log.
  local quick=(BUCKWILD_PROTOCOL_HEARTBEAT_INTERVAL_MS=1000 BUCKWILD_PROTOCOL_HEARTBEAT_TIMEOUT_MS=3000)
  start_daemon B "$WORK/bob.toml" "${quick[@]}" BUCKWILD_SECURITY_ATTACK_DISCOVERY_REFUSALS_PER_SECOND=20 \
    BUCKWILD_SECURITY_ATTACK_FILTER_DROPS_PER_SECOND=50 BUCKWILD_LOGGING_AUDIT_LOG_PATH="$WORK/audit-B.jsonl"
  BOB=$DAEMON_PID
  start_daemon A "$WORK/alice.toml" "${quick[@]}"
  ALICE=$DAEMON_PID
  wait_until 10 tunnel_up || { tail -n 20 "$WORK"/daemon-*.log >&2; return 1; }
}

subagent_answers() { get bwVersion.0 2>/dev/null | grep -q '^"\?[0-9][0-9.]*'; }

t_registered() {
  wait_until 10 subagent_answers || { tail -n 20 "$WORK/daemon-B.log" "$WORK/snmpd.log" >&2; return 1; }
  grep -q 'snmp: AgentX subagent for BUCKWILD-MIB' "$WORK/daemon-B.log"
}

t_walk_has_alice() {
  local out
  out=$(walk buckwild 2>&1) || { echo "$out" >&2; return 1; }
  log "$(wc -l <<<"$out") objects; $(grep -c 'bwPeer' <<<"$out") peer cells"
  grep -E 'bwVersion.0|bwSessions.0|bwReceivePath.0|bwPeerState."alice"|bwPeerEndpoint|bwPeerRxPackets."alice"' <<<"$out" >&2
  grep -q '^BUCKWILD-MIB::bwSessions.0 1$' <<<"$out" &&
    grep -q '^BUCKWILD-MIB::bwPeerState."alice" established$' <<<"$out" &&
    grep -q '^BUCKWILD-MIB::bwPeerEndpointType."alice" ipv4$' <<<"$out" &&
    grep -q '^BUCKWILD-MIB::bwPeerEndpoint."alice" "0A C8 00 01 "$' <<<"$out" &&
    ! grep -q 'No Such\|^Timeout' <<<"$out"
}

# GETBULK (what most managers use) walks the same objects as GETNEXT.
t_bulkwalk() {
  local next bulk
  next=$(walk buckwild | wc -l)
  bulk=$(SNMP_OIDS=(buckwild); snmp snmpbulkwalk -Oq -Cr25 | wc -l)
  log "snmpwalk $next objects, snmpbulkwalk $bulk"
  ((next > 60 && next == bulk))
}

t_counters_move() {
  local before after
  mapfile -t before < <(get "bwPeerRxPackets.$ALICE_ROW" "bwPeerTxPackets.$ALICE_ROW" bwDatagramsReceived.0 bwTunPacketsOut.0)
  ((${#before[@]} == 4)) || return 1
  in_a ping -c 20 -i 0.05 -W 1 -q 10.77.0.2 >/dev/null || return 1
  sleep 0.6  # past the subagent's snapshot age
  mapfile -t after < <(get "bwPeerRxPackets.$ALICE_ROW" "bwPeerTxPackets.$ALICE_ROW" bwDatagramsReceived.0 bwTunPacketsOut.0)
  log "rx packets ${before[0]} -> ${after[0]}, tx ${before[1]} -> ${after[1]}, datagrams received ${before[2]} -> ${after[2]}, to the interface ${before[3]} -> ${after[3]}"
  local i
  for i in 0 1 2 3; do
    ((after[i] >= before[i] + 20)) || return 1
  done
}

t_not_writable() {
  local out rc=0
  out=$(SNMP_OIDS=(bwVersion.0 s x); snmp snmpset 2>&1) || rc=$?
  log "$out"
  ((rc != 0)) && grep -qi 'notWritable\|noAccess\|not writable' <<<"$out" && subagent_answers
}

t_snmpd_restart() {
  stop_pid "$SNMPD_PID"
  subagent_answers && { log "snmpd still answers after being stopped"; return 1; }
  local t0=$SECONDS
  start_snmpd || return 1
  wait_until 10 subagent_answers || { tail -n 20 "$WORK/daemon-B.log" >&2; return 1; }
  log "the subagent answered again $((SECONDS - t0)) s after snmpd started"
  get "bwPeerState.$ALICE_ROW" | grep -q established
}

# snmpwalk in a loop while iperf3 runs through the tunnel: the transfer
# completes and no datagram is lost to a hop (no filter drop for a port not
# valid, no hopping port unbound, nothing rejected). Bob receives, so his
# bwOffload counts the TCP segments he joined into GSO writes to his TUN.
t_walks_under_iperf() {
  local drops0 drops1 walks=0 deadline mbps joined0 joined1
  drops0=$(get bwFilterDropBadPort.0 bwDropHopPortBindFailures.0 bwDropRejected.0 | paste -sd' ') || return 1
  joined0=$(get bwTunCoalescedSegments.0) || return 1
  spawn B "$WORK/iperf-server.log" iperf3 -s -1 -B 10.77.0.2
  local srv=$SPAWNED
  sleep 0.5
  spawn A "$WORK/iperf.json" iperf3 -c 10.77.0.2 -t 6 -J
  local client=$SPAWNED
  deadline=$((SECONDS + 20))
  while kill -0 "$client" 2>/dev/null && ((walks < 200 && SECONDS < deadline)); do
    walk buckwild >/dev/null 2>&1 && walks=$((walks + 1))
  done
  wait "$client" || { stop_pid "$srv"; cat "$WORK/iperf.json" >&2; return 1; }
  stop_pid "$srv"
  mbps=$(/usr/bin/python3 -c "import json,sys; print(int(json.load(open(sys.argv[1]))['end']['sum_received']['bits_per_second']/1e6))" "$WORK/iperf.json") || return 1
  sleep 0.6  # past the snapshot age
  drops1=$(get bwFilterDropBadPort.0 bwDropHopPortBindFailures.0 bwDropRejected.0 | paste -sd' ')
  joined1=$(get bwTunCoalescedSegments.0)
  log "iperf3 $mbps Mbit/s during $walks walks; drops (bad port, unbound port, rejected): $drops0 -> $drops1;" \
    "bwTunCoalescedSegments $joined0 -> $joined1, bwUdpGso $(get bwUdpGso.0)"
  echo "snmp: iperf3 $mbps Mbit/s during $walks snmpwalks" >>"$WORK/results"
  ((walks >= 3 && mbps > 0 && joined1 > joined0)) && [[ $drops1 == "$drops0" ]]
}

t_tunnel_untouched() {
  tunnel_up || return 1
  local established
  established=$(get bwSessionsEstablished.0)
  log "sessions established: $established; hop-port bind failures: $(get bwDropHopPortBindFailures.0)"
  [[ $established == 1 && $(get bwDropHopPortBindFailures.0) == 0 ]]
}

# bwSessionUp for alice, with her address.
t_session_up_trap() {
  wait_until 10 traps_over 1 0 || { cat "$WORK/traps.log" >&2; return 1; }
  grep -q -- "$ROOT_OID.1.6.1.1.7.$ALICE_ROW = Hex-STRING: 0A C8 00 01" "$WORK/traps.log"
}

# bob's log has a debug line after SIGUSR1 ("status: {...}") only at debug.
debug_line_count() { grep -c 'status: {' "$WORK/daemon-B.log" || true; }
usr1_debug_lines() {
  local before
  before=$(debug_line_count)
  kill -USR1 "$BOB"
  sleep 0.5
  echo $(($(debug_line_count) - before))
}

t_set_log_level() {
  [[ $(usr1_debug_lines) == 0 ]] || { log "a debug line at level info"; return 1; }
  local out
  out=$(SNMP_OIDS=(bwLogLevel.0 i 2); snmp snmpset -Oqv 2>&1) || { log "$out"; return 1; }
  log "snmpset bwLogLevel.0 = $out"
  sleep 0.6  # past the snapshot age
  [[ $(get bwLogLevel.0) == debug ]] || return 1
  [[ $(usr1_debug_lines) == 1 ]] || { log "no debug line at level debug"; return 1; }
  grep -q 'reload (an SNMP SET) applied: settings changed logging.level' "$WORK/daemon-B.log" || return 1
  SNMP_OIDS=(bwLogLevel.0 i 3); snmp snmpset -Oqv >/dev/null 2>&1 || return 1
  [[ $(usr1_debug_lines) == 0 ]]
}

# The subagent's own checks: the client's range and type checks are turned
# off (-Ir; a numeric OID without the MIB), so the values reach it.
t_set_bad_values() {
  local out rc bad
  for bad in "bwLogLevel.0 i 9" "bwDiscoveryRateLimit.0 u 0" "bwDiscoveryRateLimit.0 u 1000001" \
    "bwPeerAdminState.$(peer_index mallory) i 2" "bwPeerAdminState.$ALICE_ROW i 3"; do
    rc=0
    # shellcheck disable=SC2086
    out=$(SNMP_OIDS=($bad); snmp snmpset -Ir 2>&1) || rc=$?
    log "snmpset $bad: $(tr '\n' ' ' <<<"$out")"
    ((rc != 0)) && grep -qi 'wrongValue\|noCreation\|notWritable' <<<"$out" || return 1
  done
  rc=0
  out=$(in_b snmpset -v2c -c "$COMMUNITY" -t 1 -r 0 "127.0.0.1:$SNMP_PORT" "$ROOT_OID.1.7.2.0" i 5 2>&1) || rc=$?
  log "snmpset $ROOT_OID.1.7.2.0 (bwDiscoveryRateLimit) i 5: $(tr '\n' ' ' <<<"$out")"
  ((rc != 0)) && grep -qi 'wrongType' <<<"$out" || return 1
  sleep 0.6
  [[ $(get bwLogLevel.0) == info && $(get bwDiscoveryRateLimit.0) == 200 ]]
}

t_set_rate_limit() {
  SNMP_OIDS=(bwDiscoveryRateLimit.0 u 500); snmp snmpset -Oqv >/dev/null 2>&1 || return 1
  local budget
  budget=$("$BUCKWILD" status --json --socket "$WORK/ctl-B.sock" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["settings"]["discovery_work_per_second"])')
  log "status after the set: discovery_work_per_second = $budget"
  [[ $budget == 500 ]]
}

# Alice administratively down on bob: her session ends (bwSessionDown, the
# reason), she is refused while down, and back within 10 s of up.
t_admin_state() {
  local downs
  downs=$(trap_count 2)
  local out
  out=$(SNMP_OIDS=("bwPeerAdminState.$ALICE_ROW" i 2); snmp snmpset -Oqv 2>&1) || { log "$out"; return 1; }
  wait_until 5 traps_over 2 "$downs" || { cat "$WORK/traps.log" >&2; return 1; }
  grep -q -- "$ROOT_OID.1.8.1.0 = STRING: administratively down" "$WORK/traps.log" || return 1
  sleep 4  # alice's session dies (3 s) and she tries again: refused
  [[ $(get "bwPeerAdminState.$ALICE_ROW") == down && $(get "bwPeerState.$ALICE_ROW") == noSession ]] ||
    return 1
  local t0=$SECONDS
  out=$(SNMP_OIDS=("bwPeerAdminState.$ALICE_ROW" i 1); snmp snmpset -Oqv 2>&1) || { log "$out"; return 1; }
  wait_until 10 tunnel_up || return 1
  log "session back $((SECONDS - t0)) s after admin up"
}

# Junk at bob's discovery port from alice's namespace, 300 a second for 3 s.
t_attack_trap() {
  in_a /usr/bin/python3 - <<'PY'
import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + 3
while time.monotonic() < end:
    s.sendto(os.urandom(120), ("10.200.0.2", 1025))
    time.sleep(1 / 300)
PY
  wait_until 5 traps_over 4 0 || { tail -n 5 "$WORK/daemon-B.log" >&2; return 1; }
  log "$(grep -m1 'attack detected' "$WORK/daemon-B.log")"
  grep -q '"event":"attack_detected"' "$WORK/audit-B.jsonl"
}

# The SETs are in bob's audit log, each a JSON object.
t_audit_has_sets() {
  /usr/bin/python3 - "$WORK/audit-B.jsonl" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
sets = [r for r in records if r["event"] in ("reload_applied", "reload_refused")
        and r["details"].get("trigger") == "an SNMP SET"]
admin = [r for r in records if r["event"] == "peer_admin_state"]
print(f"{len(sets)} SNMP settings records, {len(admin)} admin-state records", file=sys.stderr)
assert any(r["event"] == "reload_applied" for r in sets)
assert [r["details"]["admin_state"] for r in admin] == ["down", "up"], admin
PY
}

# Alice stops: bob says so within a few seconds (bwSessionDown).
t_session_down_trap() {
  local downs
  downs=$(trap_count 2)
  kill "$ALICE"
  wait "$ALICE" || true
  wait_until 10 traps_over 2 "$downs" || { cat "$WORK/traps.log" >&2; return 1; }
  grep -q -- "$ROOT_OID.1.8.1.0 = STRING: peer stopped answering" "$WORK/traps.log"
}

t_stop() {
  kill "$BOB"
  local rc=0
  wait "$BOB" || rc=$?
  ((rc == 0)) || { log "exit status $rc"; tail -n 5 "$WORK/daemon-B.log" >&2; return 1; }
  grep -q 'stopped' "$WORK/daemon-B.log" || { tail -n 20 "$WORK/daemon-B.log" >&2; return 1; }
  # Its registration went with it: the master has nothing under the root.
  local out
  out=$(walk buckwild 2>&1) || true
  log "after the stop: $out"
  ! grep -q 'bwVersion' <<<"$out"
}

make_hosts
check "snmpd and snmptrapd start" start_snmp_servers
check "tunnel comes up" start_pair
check "snmptrapd receives snmpd's coldStart" t_trap_path
check "subagent registers BUCKWILD-MIB with snmpd" t_registered
check "snmpwalk: scalars and the session row for alice" t_walk_has_alice
check "snmpbulkwalk sees the same objects" t_bulkwalk
check "snmpget: counters move under ping" t_counters_move
check "snmpset of a read-only object refused" t_not_writable
check "snmpd restarted: subagent back within 10 s" t_snmpd_restart
check "tunnel untouched: one session, no hop-port drops" t_tunnel_untouched
check "iperf3 through the tunnel while snmpwalk loops: no hop-port drops" t_walks_under_iperf
check "bwSessionUp trap for alice" t_session_up_trap
check "snmpset bwLogLevel takes effect" t_set_log_level
check "snmpset of bad values refused, nothing changed" t_set_bad_values
check "snmpset bwDiscoveryRateLimit takes effect" t_set_rate_limit
check "bwPeerAdminState down ends alice's session (bwSessionDown), up brings it back" t_admin_state
check "junk flood: bwAttackDetected trap and audit record" t_attack_trap
check "SNMP SETs in the audit log" t_audit_has_sets
check "alice stops: bwSessionDown trap" t_session_down_trap
check "daemon stops cleanly and its registration goes" t_stop

[[ -f $WORK/results ]] && cat "$WORK/results" >&2
echo "$passed passed, $failed failed"
((failed == 0)) || { printf 'failed: %s\n' "${failures[@]}" >&2; exit 1; }
