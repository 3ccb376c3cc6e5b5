#!/usr/bin/env bash
# End-to-end test of path MTU discovery (issue #20, defect 3; docs/protocol.md
# §11.10): peers with different interface MTUs and a narrower link between.
#
#   alice 10.201.0.1 (mtu 9000) --- 10.201.0.254 [router] 10.202.0.254 (mtu 1400) --- bob 10.202.0.2 (mtu 1500)
#   tunnel 10.77.0.1                                                                    10.77.0.2
#
# The router's link to bob carries 1400 bytes: what the router forwards
# towards bob above that it drops (don't-fragment), and bob's 1472-byte
# datagrams towards it are dropped by the veth itself (a black hole, no ICMP).
# Both daemons must find a path MTU of at most 1400, large pings and
# downloads must work both ways (stream mode for TCP, DATAGRAM/FRAGMENT for
# ICMP), and nothing on the underlay may be IP-fragmented.
#
#   tests/e2e/mtu.sh     as root, after a build; E2E_RECEIVE_PATH=ebpf|userspace
# Ends with "N passed, M failed".
source "$(dirname "$0")/lib.sh"

NS_R=bwR$RUN_ID
PY=/usr/bin/python3
E2E_SETUP='^(tunnel comes up.*|receive path is .*)$'
in_r() { ip netns exec "$NS_R" "$@"; }
bw() { "$BUCKWILD" "$@"; }

mtu_cleanup() {
  ip netns pids "$NS_R" 2>/dev/null | xargs -r kill 2>/dev/null || true
  cleanup
  ip netns del "$NS_R" 2>/dev/null || true
}
trap mtu_cleanup EXIT

make_mtu_hosts() {
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip netns add "$NS_R"
  ip link add "va$RUN_ID" type veth peer name "ra$RUN_ID"
  ip link add "vb$RUN_ID" type veth peer name "rb$RUN_ID"
  ip link set "va$RUN_ID" netns "$NS_A"
  ip link set "ra$RUN_ID" netns "$NS_R"
  ip link set "vb$RUN_ID" netns "$NS_B"
  ip link set "rb$RUN_ID" netns "$NS_R"
  in_a ip link set "va$RUN_ID" mtu 9000
  in_r ip link set "ra$RUN_ID" mtu 9000
  in_r ip link set "rb$RUN_ID" mtu 1400
  in_b ip link set "vb$RUN_ID" mtu 1500
  in_a ip addr add 10.201.0.1/24 dev "va$RUN_ID"
  in_r ip addr add 10.201.0.254/24 dev "ra$RUN_ID"
  in_r ip addr add 10.202.0.254/24 dev "rb$RUN_ID"
  in_b ip addr add 10.202.0.2/24 dev "vb$RUN_ID"
  local ns
  for ns in "$NS_A" "$NS_B" "$NS_R"; do ip netns exec "$ns" ip link set lo up; done
  in_a ip link set "va$RUN_ID" up
  in_b ip link set "vb$RUN_ID" up
  in_r ip link set "ra$RUN_ID" up
  in_r ip link set "rb$RUN_ID" up
  in_a ip route add default via 10.201.0.254
  in_b ip route add default via 10.202.0.254
  in_r sysctl -qw net.ipv4.ip_forward=1
}

write_mtu_configs() {
  sed -e 's/^endpoint = .*/endpoint = "10.202.0.2"/' "$ROOT/examples/alice.toml" >"$WORK/alice.toml"
  sed -e 's/^endpoint = .*/endpoint = "10.201.0.1"/' "$ROOT/examples/bob.toml" >"$WORK/bob.toml"
  chmod 600 "$WORK/alice.toml" "$WORK/bob.toml"
}

start_pair() {
  start_daemon B "$WORK/bob.toml" BUCKWILD_CONTROL_SOCKET="$WORK/ctl-B.sock"
  start_daemon A "$WORK/alice.toml" BUCKWILD_CONTROL_SOCKET="$WORK/ctl-A.sock"
  wait_until 10 tunnel_up || { tail -n 20 "$WORK"/daemon-*.log >&2; return 1; }
  log "tunnel MTUs: alice $(in_a cat /sys/class/net/bw0/mtu), bob $(in_b cat /sys/class/net/bw0/mtu)"
}

# path_mtu_found HOST MAX: the status shows a completed search of at most MAX
# bytes and no less than 1400 - 8 (the search's granularity). Bob's direction
# carries up to 1404 bytes: a veth accepts frames 4 bytes (a VLAN tag) over
# its MTU, so the narrow link drops only above that on the way in.
path_mtu_found() {
  bw status --socket "$WORK/ctl-$1.sock" --json | $PY -c '
import json, sys
s = json.load(sys.stdin)
pm = [p["session"]["path_mtu"] for p in s["peers"] if p.get("session")][0]
print(pm, file=sys.stderr)
sys.exit(0 if pm["state"] == "complete" and 1392 <= pm["mtu"] <= int(sys.argv[1]) else 1)' "$2"
}

t_path_mtu() {
  local t0=$SECONDS ok=1
  wait_until 60 path_mtu_found A 1400 || ok=0
  wait_until 60 path_mtu_found B 1404 || ok=0
  log "searches done after $((SECONDS - t0)) s"
  grep -H "path MTU" "$WORK"/daemon-*.log | tail -n 12 >&2
  path_mtu_found A 1400 || ok=0
  path_mtu_found B 1404 || ok=0
  grep -q "path MTU 139[2-9]\|path MTU 1400" "$WORK/daemon-A.log" || ok=0
  grep -q "path MTU 139[2-9]\|path MTU 140[0-4]" "$WORK/daemon-B.log" || ok=0
  [[ $ok -eq 1 ]]
}

# Large pings both ways with don't-fragment set on the inner packet: each
# fits its sender's tunnel MTU and is larger than the path.
t_pings() {
  local rc=0 size
  for size in 1372 1400 4000 8000; do
    in_a ping -q -c 3 -i 0.2 -W 2 -M do -s "$size" 10.77.0.2 >/dev/null || { log "alice -s $size failed"; rc=1; }
  done
  # bob's tunnel MTU is 1412 (1500 less our 88 bytes).
  for size in 1372 1384; do
    in_b ping -q -c 3 -i 0.2 -W 2 -M do -s "$size" 10.77.0.1 >/dev/null || { log "bob -s $size failed"; rc=1; }
  done
  # Larger than bob's tunnel MTU: the kernel fragments the inner packet
  # before the tunnel (its own interface), the tunnel carries the pieces.
  in_b ping -q -c 3 -i 0.2 -W 2 -s 4000 10.77.0.1 >/dev/null || { log "bob -s 4000 failed"; rc=1; }
  return $rc
}

# A 20 MB download each way (stream mode: the applications' TCP travels as
# Buckwild connections), checksums compared; a stall would hit --max-time.
fetch() {  # fetch A|B URL
  local host=$1 url=$2 got
  if [[ $host == A ]]; then in_a curl -sS -f --max-time 60 -o "$WORK/got-$host.bin" "$url" || return 1
  else in_b curl -sS -f --max-time 60 -o "$WORK/got-$host.bin" "$url" || return 1; fi
  got=$(sha256sum <"$WORK/got-$host.bin" | cut -d' ' -f1)
  [[ $got == "$WANT" ]]
}

t_downloads() {
  spawn B "$WORK/http-B.log" $PY -m http.server --bind 10.77.0.2 --directory "$WORK/www" 8080
  spawn A "$WORK/http-A.log" $PY -m http.server --bind 10.77.0.1 --directory "$WORK/www" 8080
  wait_until 5 in_a curl -s -o /dev/null "http://10.77.0.2:8080/small" || return 1
  wait_until 5 in_b curl -s -o /dev/null "http://10.77.0.1:8080/small" || return 1
  local t0=$SECONDS rc=0
  fetch A "http://10.77.0.2:8080/20mb.bin" || { log "alice's download from bob failed"; rc=1; }
  fetch B "http://10.77.0.1:8080/20mb.bin" || { log "bob's download from alice failed"; rc=1; }
  log "two 20 MB downloads in $((SECONDS - t0)) s"
  return $rc
}

ip_counter() {  # ip_counter NS NAME: a field of the Ip: line of /proc/net/snmp
  ip netns exec "$1" awk -v name="$2" '
    $1 == "Ip:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
    $1 == "Ip:" && h { print $col[name]; exit }' /proc/net/snmp
}

# The router counts every IP fragment that reaches it, either way (an nftables
# counter ahead of any defragmentation, priority -450): the hosts' own
# counters would include the inner packets' IP fragmentation on the tunnel
# interfaces, which is the applications' business.
count_router_fragments() {
  in_r nft -f - <<NFT
table ip mtu {
  chain arriving {
    type filter hook prerouting priority -450; policy accept;
    ip frag-off & 0x3fff != 0 counter
  }
}
NFT
}

# Nothing on the underlay was fragmented, and the router dropped (rather than
# fragmented) what did not fit: the probes above 1400.
t_no_fragments() {
  local frags created fails
  frags=$(in_r nft list chain ip mtu arriving | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
  created=$(ip_counter "$NS_R" FragCreates)
  fails=$(ip_counter "$NS_R" FragFails)
  log "router: $frags IP fragments arrived; FragCreates $created, FragFails $fails (too large with don't-fragment: dropped)"
  [[ -n $frags && $frags -eq 0 && $created -eq 0 ]]
}

[[ $(id -u) -eq 0 ]] || die "run as root (network namespaces)"
[[ -x $BUCKWILD ]] || die "no daemon binary at $BUCKWILD: build first"
write_mtu_configs
make_mtu_hosts
count_router_fragments
mkdir -p "$WORK/www"
echo ok >"$WORK/www/small"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$WORK/www/20mb.bin"
WANT=$(sha256sum <"$WORK/www/20mb.bin" | cut -d' ' -f1)

check "tunnel comes up across MTUs 9000 / 1400 / 1500" start_pair
check "receive path is $RECEIVE_PATH" receive_path_is_expected
# Alice's 9 000-byte link is above what a veth's driver XDP takes: her frame
# filter must fall back to TC ingress, which judges bob's GSO packets by their
# first datagram, not to generic XDP, which dropped them as one datagram of
# the wrong length until the download stalled.
filter_at_tc_on_the_jumbo_link() {
  local line
  line=$(grep -m1 -o "receive path: .*" "$WORK/daemon-A.log")
  log "alice: $line"
  [[ $line == *"tc-ingress on va"* ]]
}
if [[ $RECEIVE_PATH == ebpf ]]; then
  check "alice's frame filter is at TC ingress on her 9000-byte link, not generic XDP" \
    filter_at_tc_on_the_jumbo_link
fi
check "both daemons find the path MTU (1392-1400, bob 1392-1404), shown in status and logged" t_path_mtu
check "large pings both ways (-M do -s 1372 … 8000)" t_pings
check "20 MB downloads both ways in stream mode, checksums match" t_downloads
check "no IP fragmentation on the underlay" t_no_fragments

log "$passed passed, $failed failed"
for f in "${failures[@]:-}"; do [[ -n $f ]] && log "  failed: $f"; done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
