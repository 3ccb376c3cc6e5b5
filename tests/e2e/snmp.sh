#!/usr/bin/env bash
# End-to-end tests of the [snmp] AgentX subagent (issue 16): a real snmpd
# (master agentx, its AgentX socket in this run's directory, SNMP on
# 127.0.0.1 inside bob's namespace) and snmptrapd; bob's daemon registers
# BUCKWILD-MIB with it. snmpwalk shows the session row for alice and counters
# that move under ping; snmpd restarted mid-test has the subagent back within
# 10 s, the tunnel untouched.
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
get() { SNMP_OIDS=("$@"); snmp snmpget -Oqv; }
walk() { SNMP_OIDS=("$@"); snmp snmpwalk -Oq; }

# The bwPeerTable index of a name: length, then its octets.
peer_index() {
  local name=$1 i out=${#1}
  for ((i = 0; i < ${#name}; i++)); do out+=".$(printf '%d' "'${name:i:1}")"; done
  echo "$out"
}
ALICE_ROW=$(peer_index alice)

start_snmpd() {
  cat >"$WORK/snmpd.conf" <<CONF
master agentx
agentXSocket $AGENTX
agentXPerms 0600 0700
agentXTimeout 1
rocommunity $COMMUNITY 127.0.0.1
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
  start_daemon B "$WORK/bob.toml"
  BOB=$DAEMON_PID
  start_daemon A "$WORK/alice.toml"
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
# valid, no hopping port unbound, nothing rejected).
t_walks_under_iperf() {
  local drops0 drops1 walks=0 deadline mbps
  drops0=$(get bwFilterDropBadPort.0 bwDropHopPortBindFailures.0 bwDropRejected.0 | paste -sd' ') || return 1
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
  log "iperf3 $mbps Mbit/s during $walks walks; drops (bad port, unbound port, rejected): $drops0 -> $drops1"
  echo "snmp: iperf3 $mbps Mbit/s during $walks snmpwalks" >>"$WORK/results"
  ((walks >= 3 && mbps > 0)) && [[ $drops1 == "$drops0" ]]
}

t_tunnel_untouched() {
  tunnel_up || return 1
  local established
  established=$(get bwSessionsEstablished.0)
  log "sessions established: $established; hop-port bind failures: $(get bwDropHopPortBindFailures.0)"
  [[ $established == 1 && $(get bwDropHopPortBindFailures.0) == 0 ]]
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
check "daemon stops cleanly and its registration goes" t_stop

[[ -f $WORK/results ]] && cat "$WORK/results" >&2
echo "$passed passed, $failed failed"
((failed == 0)) || { printf 'failed: %s\n' "${failures[@]}" >&2; exit 1; }
