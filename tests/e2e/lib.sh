# Shared helpers for the end-to-end tests and the demo: two hosts as network
# namespaces joined by a veth pair, a daemon in each. Sourced, not run.
#
#   underlay  10.200.0.1/24 (host A, "alice")  <-veth->  10.200.0.2/24 (host B, "bob")
#   tunnel    10.77.0.1 (bw0 in A)                       10.77.0.2 (bw0 in B)
#
# Every process started here is recorded and stopped by PID in cleanup();
# the namespaces are created with a per-run suffix and deleted at exit.
#
# E2E_RECEIVE_PATH=ebpf (default) or userspace picks the daemons' receive path
# (userspace sets BUCKWILD_NETWORK_EBPF=false); the scripts check that the
# daemons say they run the one asked for.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUCKWILD=${BUCKWILD:-$ROOT/build/src/cli/buckwild}
RUN_ID=${RUN_ID:-$$}
NS_A=bwA$RUN_ID
NS_B=bwB$RUN_ID
WORK=$(mktemp -d /tmp/buckwild-e2e.XXXXXX)
chmod 755 "$WORK"  # servers that drop privileges (nginx workers) read files here
PIDS=()
RECEIVE_PATH=${E2E_RECEIVE_PATH:-ebpf}
case $RECEIVE_PATH in
  ebpf) RECEIVE_PATH_LINE='receive path: eBPF' ;;
  userspace) RECEIVE_PATH_LINE='receive path: user space' ;;
  *) echo "E2E_RECEIVE_PATH must be ebpf or userspace, not '$RECEIVE_PATH'" >&2; exit 2 ;;
esac

log() { printf '%s [e2e] %s\n' "$(date +%T)" "$*" >&2; }

# check NAME COMMAND...: runs one named check and counts it. E2E_ONLY=REGEX
# runs only the checks whose names match it, plus the set-up checks the
# script names in E2E_SETUP (a regex), for shorter runs while developing.
passed=0
failed=0
failures=()
check() {
  local name=$1
  shift
  if [[ -n ${E2E_ONLY:-} && ! $name =~ $E2E_ONLY && ! ( -n ${E2E_SETUP:-} && $name =~ $E2E_SETUP ) ]]; then
    return 0
  fi
  log "--- $name"
  if "$@"; then
    passed=$((passed + 1))
    log "ok   $name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    log "FAIL $name"
  fi
}
die() { log "FAIL: $*"; exit 1; }

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -n $pid ]] && wait "$pid" 2>/dev/null || true
  done
  # Anything still running inside our namespaces was started by this run
  # (a server's own children, say): stop it before the namespaces go.
  local ns
  for ns in "$NS_A" "$NS_B"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  sleep 0.2
  for ns in "$NS_A" "$NS_B"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  # E2E_KEEP=DIR keeps the run's logs and configs there for a post-mortem.
  if [[ -n ${E2E_KEEP:-} ]]; then
    mkdir -p "$E2E_KEEP" && cp -r "$WORK"/. "$E2E_KEEP"/ 2>/dev/null || true
  fi
  rm -rf "$WORK"
}

make_hosts() {
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip link add "va$RUN_ID" type veth peer name "vb$RUN_ID"
  ip link set "va$RUN_ID" netns "$NS_A"
  ip link set "vb$RUN_ID" netns "$NS_B"
  in_a ip addr add 10.200.0.1/24 dev "va$RUN_ID"
  in_b ip addr add 10.200.0.2/24 dev "vb$RUN_ID"
  in_a ip link set lo up
  in_b ip link set lo up
  in_a ip link set "va$RUN_ID" up
  in_b ip link set "vb$RUN_ID" up
}

# spawn A|B LOGFILE COMMAND...: starts COMMAND in that host in the background.
# `ip netns exec` execs the command, so $! is the command itself: SPAWNED
# holds its PID, and cleanup() stops it.
spawn() {
  local ns=$NS_A
  [[ $1 == B ]] && ns=$NS_B
  local logfile=$2
  shift 2
  ip netns exec "$ns" "$@" >>"$logfile" 2>&1 &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}

# start_daemon A|B CONFIG [ENV=VALUE ...]: starts buckwild run in that host; sets DAEMON_PID.
# Its control socket is $WORK/ctl-A.sock or ctl-B.sock.
start_daemon() {
  local host=$1 config=$2
  shift 2
  local path_env=()
  [[ $RECEIVE_PATH == userspace ]] && path_env=(BUCKWILD_NETWORK_EBPF=false)
  # Both hosts' daemons see one file system: each gets its own control socket
  # (an argument BUCKWILD_CONTROL_SOCKET=... overrides it).
  spawn "$host" "$WORK/daemon-$host.log" env "${path_env[@]}" BUCKWILD_CONTROL_SOCKET="$WORK/ctl-$host.sock" \
    "$@" "$BUCKWILD" run --config "$config"
  DAEMON_PID=$SPAWNED
}

# receive_path_is_expected: both daemons' logs name the receive path asked for.
receive_path_is_expected() {
  local host
  for host in A B; do
    grep -q "$RECEIVE_PATH_LINE" "$WORK/daemon-$host.log" || {
      log "daemon $host: $(grep -m1 'receive path' "$WORK/daemon-$host.log" || echo 'no receive-path line')"
      return 1
    }
  done
  log "$(grep -m1 -o "receive path: .*" "$WORK/daemon-B.log")"
}

# frame_filter_counter PID LOGFILE NAME...: asks a daemon for its counters
# (SIGUSR1) once and prints the sum of the frame filter's (XDP plus TC)
# counters NAME..., e.g. drop_bad_port; 0 on the user-space path.
frame_filter_counter() {
  local pid=$1 logfile=$2 lines
  shift 2
  [[ $RECEIVE_PATH == ebpf ]] || { echo 0; return; }
  lines=$(wc -l <"$logfile")
  kill -USR1 "$pid"
  local i
  for i in $(seq 1 50); do
    tail -n +"$((lines + 1))" "$logfile" | grep -q 'eBPF counters' && break
    sleep 0.1
  done
  sleep 0.1
  local name snapshot total=0
  snapshot=$(tail -n +"$((lines + 1))" "$logfile" | grep -E 'eBPF counters (xdp|tc):')
  for name in "$@"; do
    total=$((total + $(sed -n "s/.* $name=\([0-9]*\).*/\1/p" <<<"$snapshot" | awk '{s += $1} END {print s + 0}')))
  done
  echo "$total"
}

# nginx_conf LISTEN_IP ROOT PREFIX: an nginx.conf serving ROOT on LISTEN_IP:80,
# its pid, logs and temporary files under PREFIX.
nginx_conf() {  # nginx_conf LISTEN_IP ROOT PREFIX
  cat <<CONF
daemon off;
worker_processes 1;
pid $3/nginx.pid;
error_log $3/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $3/body; proxy_temp_path $3/proxy; fastcgi_temp_path $3/fcgi;
  uwsgi_temp_path $3/uwsgi; scgi_temp_path $3/scgi;
  server { listen $1:80; root $2; }
}
CONF
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wait_until SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_until() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# The examples with this run's settings: run.sh tests the packet path (TCP in
# DATAGRAM packets); stream.sh writes its own stream-mode configurations.
write_configs() {
  sed -e 's/^tcp_mode = .*/tcp_mode = "packet"/' "$ROOT/examples/alice.toml" >"$WORK/alice.toml"
  sed -e 's/^tcp_mode = .*/tcp_mode = "packet"/' "$ROOT/examples/bob.toml" >"$WORK/bob.toml"
  chmod 600 "$WORK/alice.toml" "$WORK/bob.toml"
}

tunnel_up() { in_a ping -c1 -W1 10.77.0.2 && in_b ping -c1 -W1 10.77.0.1; }
