#!/usr/bin/env bash
# The soak test (issue #20): the daemons under everything at once for a while.
# Stream mode, an impaired underlay (loss, jitter and reordering, both ways),
# rounds of hundreds of short connections and a larger transfer, each checked
# byte for byte; bob restarted with his clock stepped within the allowance,
# alice restarted with hers stepped the other way; a flood of well-formed junk
# from a stranger. Meanwhile each daemon's RSS and open descriptors are
# sampled every 2 s. At the end: every transfer was right, the daemons ran
# throughout (no crash; a restart is a clean stop and start), RSS and
# descriptors stayed under their bounds (peaks reported), and no sanitizer
# said anything (run it with an ASan build's daemon).
#
#   tests/e2e/soak.sh                          as root, after a build; 300 s
#   SOAK_SECONDS=1800 tests/e2e/soak.sh        the long soak, by hand
#   BUCKWILD=build-asan/src/cli/buckwild ...   the daemon of an ASan build
#
# Ends with "N passed, M failed".
source "$(dirname "$0")/lib.sh"

SOAK_SECONDS=${SOAK_SECONDS:-300}
TOOLS="python3 $ROOT/tests/e2e/stream_tools.py"
IMPAIR=$ROOT/tools/impair/impair.sh
FLOOD=${FLOOD:-$ROOT/build/tests/buckwild_flood}
STRANGER=10.200.0.3
# Bounds for what one daemon holds. A sanitizer build's RSS is several times
# a release build's (shadow memory, quarantine): the bound follows the binary.
if grep -q __asan_init "$BUCKWILD" 2>/dev/null; then MAX_RSS_MIB=1200; else MAX_RSS_MIB=300; fi
# Descriptors: a live connection holds its socket and, on either path, the
# sockets its hopping ports are sent from (a few windows' worth); a round has
# 201 live at once. Idle again, a daemon must be back near where it started.
ROUND_FLOWS=101
MAX_FDS=$((64 + 6 * ROUND_FLOWS))
IDLE_FD_SLACK=16
E2E_SETUP='^soak: (tunnel|receive path)'

soak_cleanup() {
  "$IMPAIR" clear "$NS_A" "va$RUN_ID" >/dev/null 2>&1 || true
  "$IMPAIR" clear "$NS_B" "vb$RUN_ID" >/dev/null 2>&1 || true
  cleanup
}
trap soak_cleanup EXIT

write_soak_configs() {
  local host
  for host in alice bob; do
    sed -e '/^tcp_mode = /d' "$ROOT/examples/$host.toml" >"$WORK/$host.toml"
    printf '\n[security]\nmax_connections_per_source = 1000\n' >>"$WORK/$host.toml"
    chmod 600 "$WORK/$host.toml"
  done
}

# The daemons' PIDs, for the sampler: "alice bob", rewritten on a restart.
write_pids() { echo "$ALICE $BOB" >"$WORK/daemon.pids.new" && mv "$WORK/daemon.pids.new" "$WORK/daemon.pids"; }

start_pair() {
  start_daemon B "$WORK/bob.toml"
  BOB=$DAEMON_PID
  start_daemon A "$WORK/alice.toml"
  ALICE=$DAEMON_PID
  write_pids
  wait_until 15 tunnel_up || { tail -n 20 "$WORK"/daemon-*.log >&2; return 1; }
  sleep 1
  IDLE_FDS_START=$(idle_fds)
}

# The larger of the two daemons' descriptor counts now.
idle_fds() {
  local pid n m=0
  for pid in $ALICE $BOB; do
    n=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    ((n > m)) && m=$n
  done
  echo "$m"
}

# waits until a server in B listens on PORT (python starts slowly under load)
listening() { in_b ss -Hltn "sport = :$1" | grep -q .; }

# Samples both daemons' RSS (KiB) and descriptors every 2 s until the file
# $WORK/stop-sampler exists or the soak's time (and a margin) is over.
sampler() {
  local deadline=$((SECONDS + SOAK_SECONDS + 120)) pid rss fds
  while ((SECONDS < deadline)) && [[ ! -e $WORK/stop-sampler ]]; do
    for pid in $(cat "$WORK/daemon.pids" 2>/dev/null); do
      rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
      [[ -n $rss ]] && echo "$pid $rss $fds" >>"$WORK/samples"
    done
    # Both daemons' sessions as they see them, for a post-mortem (E2E_KEEP).
    local h
    for h in A B; do
      echo "$(date +%T.%N) $h $("$BUCKWILD" status --json --socket "$WORK/ctl-$h.sock" 2>/dev/null |
        python3 -c 'import json,sys; s=json.load(sys.stdin); print(json.dumps(s["peers"]))' 2>/dev/null)" \
        >>"$WORK/status-samples"
    done
    sleep 2
  done
}

# One round: 100 concurrent connections of 64 KiB and one of 8 MiB, every
# byte checked by its client, taking at least 5 s: about 20 new connections a
# second, within what one session can open for ever (2047 connection ids of
# one side, each resting 60 s after its connection: ~34 a second).
# Appends to $WORK/rounds.
round() {
  local r=$1 port=$((6000 + $1 % 500 * 2)) out rc=0 started=$SECONDS
  spawn B "$WORK/serve-$r.log" $TOOLS serve-many 10.77.0.2 "$port" 65536 100
  local small=$SPAWNED
  spawn B "$WORK/serve-$r.log" $TOOLS serve-many 10.77.0.2 "$((port + 1))" $((8 * 1024 * 1024)) 1
  local big=$SPAWNED
  wait_until 10 listening "$port" && wait_until 10 listening "$((port + 1))" || rc=1
  out=$(in_a $TOOLS many 10.77.0.2 "$port" 65536 100 2>&1) || rc=$?
  out="$out; $(in_a $TOOLS many 10.77.0.2 "$((port + 1))" $((8 * 1024 * 1024)) 1 2>&1)" || rc=$?
  stop_pid "$small"
  stop_pid "$big"
  echo "round $r (t=$((SECONDS - SOAK_START)) s): rc $rc: $out" >>"$WORK/rounds"
  if ((rc != 0)); then
    local h
    for h in A B; do
      echo "  $h: $("$BUCKWILD" status --json --socket "$WORK/ctl-$h.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream"])')" >>"$WORK/rounds"
    done
  fi
  local left=$((started + 5 - SECONDS))
  ((left > 0)) && sleep "$left"
  ((rc == 0))
}

restart() {  # restart A|B OFFSET_MS: a clean stop, and a start with the clock stepped
  local host=$1 offset=$2
  if [[ $host == B ]]; then
    stop_pid "$BOB"
    start_daemon B "$WORK/bob.toml" BUCKWILD_TESTING_CLOCK_OFFSET_MS="$offset"
    BOB=$DAEMON_PID
  else
    stop_pid "$ALICE"
    start_daemon A "$WORK/alice.toml" BUCKWILD_TESTING_CLOCK_OFFSET_MS="$offset"
    ALICE=$DAEMON_PID
  fi
  write_pids
  echo "restarted $host with its clock at ${offset} ms (t=$((SECONDS - SOAK_START)) s)" >>"$WORK/rounds"
  wait_until 15 tunnel_up
}

flood() {  # a stranger's well-formed junk to bob's hopping range for up to 10 s
  in_a ip addr add "$STRANGER/24" dev "va$RUN_ID" 2>/dev/null || true
  local out
  out=$(in_a "$FLOOD" "$STRANGER" 10.200.0.2 300000 10 --skip-port 1025 2>&1 | tail -n 1) || true
  echo "flood (t=$((SECONDS - SOAK_START)) s): $out" >>"$WORK/rounds"
}

t_soak() {
  SOAK_START=$SECONDS
  local deadline=$((SECONDS + SOAK_SECONDS)) r=0 bad=0
  local restart_b=$((SOAK_SECONDS / 4)) flood_at=$((SOAK_SECONDS / 2)) restart_a=$((3 * SOAK_SECONDS / 4))
  local did_b=0 did_a=0 did_flood=0 flooder=
  # A round takes at least 5 s: bounded whatever happens.
  while ((SECONDS < deadline && r < SOAK_SECONDS / 5 + 1)); do
    local t=$((SECONDS - SOAK_START))
    if ((!did_b && t >= restart_b)); then did_b=1; restart B 150 || bad=$((bad + 1)); fi
    if ((!did_flood && t >= flood_at)); then
      did_flood=1
      flood &
      flooder=$!
    fi
    if ((!did_a && t >= restart_a)); then did_a=1; restart A -150 || bad=$((bad + 1)); fi
    round "$r" || bad=$((bad + 1))
    r=$((r + 1))
  done
  [[ -n $flooder ]] && wait "$flooder"
  log "$r rounds, $bad failed; $(grep -c . "$WORK/rounds") lines in the record"
  cat "$WORK/rounds" >&2
  ((bad == 0 && r >= 3 && did_b && did_a && did_flood))
}

t_alive() {
  # A ping each way, for up to 10 s: one ping is lost now and then to the
  # underlay's 1 % loss each way, which is no outage.
  kill -0 "$ALICE" && kill -0 "$BOB" && wait_until 10 tunnel_up
}

t_bounded() {
  touch "$WORK/stop-sampler"
  wait "$SAMPLER" 2>/dev/null || true
  [[ -s $WORK/samples ]] || { log "no samples"; return 1; }
  local peak_rss peak_fds
  peak_rss=$(awk '$2 > m {m = $2} END {printf "%d", m / 1024}' "$WORK/samples")
  peak_fds=$(awk '$3 > m {m = $3} END {print m + 0}' "$WORK/samples")
  # Idle again (connections closed, their ports' sockets with them).
  local idle_end
  wait_until 20 test "$(idle_fds)" -le $((IDLE_FDS_START + IDLE_FD_SLACK))
  idle_end=$(idle_fds)
  if ((idle_end > IDLE_FDS_START + IDLE_FD_SLACK)); then
    local pid
    for pid in $ALICE $BOB; do
      log "daemon $pid descriptors: $(ls -l "/proc/$pid/fd" | awk 'NR > 1 {sub(/[0-9]+/, "", $NF); print $NF}' | sort | uniq -c | tr '\n' ' ')"
      "$BUCKWILD" status --json --socket "$WORK/ctl-$([[ $pid == "$ALICE" ]] && echo A || echo B).sock" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["stream"]); print([ (p["name"], p["session"] and p["session"].get("connections")) for p in s["peers"]])' >&2 || true
    done
  fi
  log "peak RSS ${peak_rss} MiB (bound $MAX_RSS_MIB), peak descriptors $peak_fds (bound $MAX_FDS);" \
    "idle descriptors $IDLE_FDS_START at the start, $idle_end at the end"
  echo "soak ${SOAK_SECONDS} s: peak RSS ${peak_rss} MiB, peak descriptors $peak_fds, idle $IDLE_FDS_START -> $idle_end" >>"$WORK/results"
  ((peak_rss <= MAX_RSS_MIB && peak_fds <= MAX_FDS && idle_end <= IDLE_FDS_START + IDLE_FD_SLACK))
}

t_no_sanitizer_report() {
  # Stop both daemons cleanly first: LeakSanitizer reports at exit.
  stop_pid "$ALICE"
  stop_pid "$BOB"
  if grep -E -n 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' \
      "$WORK"/daemon-*.log >&2; then
    return 1
  fi
  ! grep -E -n '\[critical\]|terminate called|Segmentation fault' "$WORK"/daemon-*.log >&2
}

[[ $(id -u) -eq 0 ]] || die "run as root (network namespaces)"
[[ -x $BUCKWILD ]] || die "no daemon binary at $BUCKWILD: build first"
[[ -x $FLOOD ]] || die "no $FLOOD: build first"
write_soak_configs
make_hosts
touch "$WORK/results" "$WORK/rounds"

check "soak: tunnel comes up" start_pair
check "soak: receive path is $RECEIVE_PATH" receive_path_is_expected
# Loss, delay with jitter, and reordering on the underlay, both directions
# (each side's arrivals), UDP only.
"$IMPAIR" set "$NS_A" "va$RUN_ID" --loss-pct 1 --delay-ms 5 --jitter-ms 3 --reorder-pct 1 --reorder-ms 5 --udp-only >/dev/null
"$IMPAIR" set "$NS_B" "vb$RUN_ID" --loss-pct 1 --delay-ms 5 --jitter-ms 3 --reorder-pct 1 --reorder-ms 5 --udp-only >/dev/null
sampler &
SAMPLER=$!
PIDS+=("$SAMPLER")
check "soak: ${SOAK_SECONDS} s of rounds (100 x 64 KiB + 8 MiB each), restarts with clocks stepped, a flood: every byte right" t_soak
check "soak: both daemons running and the tunnel up at the end" t_alive
check "soak: RSS and descriptors bounded" t_bounded
check "soak: no sanitizer report, no crash in the daemons' logs" t_no_sanitizer_report

cat "$WORK/results" >&2
((failed == 0)) || log "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
((failed == 0))
