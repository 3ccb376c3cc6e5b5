#!/usr/bin/env bash
# End-to-end test of a hub on several cores (docs/architecture.md "Workers"):
# bob serves two spokes with [network] workers = 2 on the eBPF receive path.
# He looks for alice (his first [[peer]]) from worker 0 and for carol from
# worker 1; the frame filter's sk_lookup steers each spoke's datagrams to its
# worker's socket and the virtual interface's queue steering hands each
# packet for a spoke to that worker's TUN queue.
#
#   alice 10.200.0.1 --- 10.200.0.2 [bob] 10.201.0.2 --- 10.201.0.1 carol
#   tunnel 10.77.0.1             10.77.0.2                 10.77.0.3
#
#   tests/e2e/workers.sh          as root, after a build (scripts/test.sh runs it)
#   E2E_WORKERS_MB=20 ...         a smaller download per spoke (default 100)
#
# Ends with "N passed, M failed".
source "$(dirname "$0")/lib.sh"

NS_C=bwC$RUN_ID
DOWNLOAD_MB=${E2E_WORKERS_MB:-100}
PSK=$(sed -n 's/^key = "\(.*\)"/\1/p' "$ROOT/examples/alice.toml" | head -n1)
[[ $RECEIVE_PATH == ebpf ]] || die "workers.sh needs the eBPF receive path (E2E_RECEIVE_PATH=ebpf)"

in_c() { ip netns exec "$NS_C" "$@"; }
workers_cleanup() {
  cleanup
  ip netns pids "$NS_C" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$NS_C" 2>/dev/null || true
}
trap workers_cleanup EXIT

make_hub() {
  make_hosts
  ip netns add "$NS_C"
  ip link add "vc$RUN_ID" type veth peer name "vd$RUN_ID"
  ip link set "vc$RUN_ID" netns "$NS_C"
  ip link set "vd$RUN_ID" netns "$NS_B"
  in_c ip addr add 10.201.0.1/24 dev "vc$RUN_ID"
  in_b ip addr add 10.201.0.2/24 dev "vd$RUN_ID"
  in_c ip link set lo up
  in_c ip link set "vc$RUN_ID" up
  in_b ip link set "vd$RUN_ID" up
}

# Each peer proves its own PSK (a [[psk]] may authenticate one [[peer]]).
PSK_C=$("$BUCKWILD" genpsk)

# spoke_config ADDRESS HUB_ENDPOINT KEY
spoke_config() {
  cat <<CONF
[network]
virtual_device = "bw0"
virtual_address = "$1/24"
[protocol]
tcp_mode = "stream"
[logging]
level = "info"
syslog = false
[[psk]]
id = "demo"
key = "$3"
[[peer]]
name = "bob"
endpoint = "$2"
virtual_address = "10.77.0.2"
psk = "demo"
CONF
}

write_configs() {
  cat >"$WORK/bob.toml" <<CONF
[network]
virtual_device = "bw0"
virtual_address = "10.77.0.2/24"
workers = 2
[protocol]
tcp_mode = "stream"
[logging]
level = "info"
syslog = false
[[psk]]
id = "alice"
key = "$PSK"
[[psk]]
id = "carol"
key = "$PSK_C"
[[peer]]
name = "alice"
endpoint = "10.200.0.1"
virtual_address = "10.77.0.1"
psk = "alice"
[[peer]]
name = "carol"
endpoint = "10.201.0.1"
virtual_address = "10.77.0.3"
psk = "carol"
CONF
  spoke_config 10.77.0.1 10.200.0.2 "$PSK" >"$WORK/alice.toml"
  spoke_config 10.77.0.3 10.201.0.2 "$PSK_C" >"$WORK/carol.toml"
  chmod 600 "$WORK"/*.toml
}

bob_status() { "$BUCKWILD" status --socket "$WORK/ctl-B.sock" --json; }

# peer_worker NAME: the worker bob's status names for NAME's session ("-" without one).
peer_worker() {
  bob_status | python3 -c '
import json, sys
for p in json.load(sys.stdin)["peers"]:
    if p["name"] == sys.argv[1]:
        print(p["worker"] if p.get("session") else "-")' "$1"
}

start_hub() {
  start_daemon B "$WORK/bob.toml"
  BOB=$DAEMON_PID
  start_daemon A "$WORK/alice.toml"
  spawn C "$WORK/daemon-C.log" env BUCKWILD_CONTROL_SOCKET="$WORK/ctl-C.sock" "$BUCKWILD" run --config "$WORK/carol.toml"
  wait_until 15 both_up || { tail -n 20 "$WORK"/daemon-*.log >&2; return 1; }
  grep -q "workers: 2" "$WORK/daemon-B.log" || { log "bob does not run 2 workers: $(grep -m1 'workers' "$WORK/daemon-B.log")"; return 1; }
}
# spawn has no C: carol's namespace is this script's own.
spawn() {
  local ns=$NS_A
  [[ $1 == B ]] && ns=$NS_B
  [[ $1 == C ]] && ns=$NS_C
  local logfile=$2
  shift 2
  ip netns exec "$ns" "$@" >>"$logfile" 2>&1 &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}
both_up() { in_a ping -c1 -W1 10.77.0.2 >/dev/null && in_c ping -c1 -W1 10.77.0.2 >/dev/null; }

t_sessions_on_their_workers() {
  local a c
  a=$(peer_worker alice) && c=$(peer_worker carol) || return 1
  log "bob: alice's session on worker $a, carol's on worker $c"
  [[ $a == 0 && $c == 1 ]]
}

t_ping_through_both() {
  in_a ping -q -c 20 -i 0.05 10.77.0.2 >/dev/null &&
    in_c ping -q -c 20 -i 0.05 10.77.0.2 >/dev/null &&
    in_b ping -q -c 20 -i 0.05 10.77.0.1 >/dev/null &&
    in_b ping -q -c 20 -i 0.05 10.77.0.3 >/dev/null
}

# thread_ticks PID: "TID NAME TICKS" for each thread (user + system time).
thread_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    awk -v tid="${t##*/}" '{ sub(/^[^)]*\) /, ""); print tid, $12 + $13 }' "$t/stat" 2>/dev/null |
      while read -r tid ticks; do echo "$tid $(cat "$t/comm") $ticks"; done
  done
}

t_downloads_use_both_workers() {
  mkdir -p "$WORK/www" "$WORK/nginx"
  head -c $((DOWNLOAD_MB * 1024 * 1024)) /dev/urandom >"$WORK/www/file.bin"
  local want
  want=$(sha256sum <"$WORK/www/file.bin" | cut -d' ' -f1)
  nginx_conf 10.77.0.2 "$WORK/www" "$WORK/nginx" >"$WORK/nginx/nginx.conf"
  spawn B "$WORK/nginx/out.log" nginx -c "$WORK/nginx/nginx.conf"
  local web=$SPAWNED
  wait_until 5 in_a curl -s -o /dev/null "http://10.77.0.2/file.bin" --max-filesize 1 || true
  local before after
  before=$(thread_ticks "$BOB")
  in_a curl -sS -f --max-time 120 -o "$WORK/got-a.bin" "http://10.77.0.2/file.bin" &
  local ca=$!
  in_c curl -sS -f --max-time 120 -o "$WORK/got-c.bin" "http://10.77.0.2/file.bin" &
  local cc=$!
  local rc=0
  wait $ca || rc=1
  wait $cc || rc=1
  after=$(thread_ticks "$BOB")
  stop_pid $web
  local got_a got_c
  got_a=$(sha256sum <"$WORK/got-a.bin" | cut -d' ' -f1)
  got_c=$(sha256sum <"$WORK/got-c.bin" | cut -d' ' -f1)
  # Each worker's thread did its share: ticks per thread over the downloads.
  local busy
  busy=$(join <(sort <<<"$before") <(sort <<<"$after") | awk '{ d = $5 - $3; if (d > 0) printf "%s:%d ", $2, d }')
  log "downloads of $DOWNLOAD_MB MB to alice and carol at once: curl $rc; bob's threads' CPU ticks: $busy"
  echo "workers: $DOWNLOAD_MB MB to each spoke; bob's threads: $busy" >>"$WORK/results"
  [[ $rc == 0 && $got_a == "$want" && $got_c == "$want" ]] || { log "a download failed or differs"; return 1; }
  local main_ticks w1_ticks
  main_ticks=$(join <(sort <<<"$before") <(sort <<<"$after") | awk '$2 == "buckwild" { print $5 - $3 }' | head -1)
  w1_ticks=$(join <(sort <<<"$before") <(sort <<<"$after") | awk '$2 == "buckwild-w1" { print $5 - $3 }' | head -1)
  ((${main_ticks:-0} > 10 && ${w1_ticks:-0} > 10)) || { log "one worker did (almost) nothing"; return 1; }
}

t_reload_keeps_sessions() {
  local before after
  before=$(bob_status | python3 -c 'import json,sys; print(sorted(p["session"]["id"] for p in json.load(sys.stdin)["peers"] if p.get("session")))')
  kill -HUP "$BOB"
  sleep 1
  after=$(bob_status | python3 -c 'import json,sys; print(sorted(p["session"]["id"] for p in json.load(sys.stdin)["peers"] if p.get("session")))')
  log "sessions before the reload $before, after $after"
  [[ $before == "$after" && $before != "[]" ]] && t_ping_through_both
}

make_hub
write_configs
E2E_SETUP='^(the hub and both spokes come up.*)$'
check "the hub and both spokes come up, the hub with 2 workers" start_hub
check "each spoke's session is on the worker that looks for it (alice 0, carol 1)" t_sessions_on_their_workers
check "ping: each spoke to the hub and the hub to each spoke" t_ping_through_both
check "$DOWNLOAD_MB MB to both spokes at once, checksums; both workers' threads busy" t_downloads_use_both_workers
check "SIGHUP reload: both sessions kept, traffic still flows" t_reload_keeps_sessions
[[ -f $WORK/results ]] && cat "$WORK/results"
if ((failed > 0)); then
  log "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
