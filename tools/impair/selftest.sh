#!/usr/bin/env bash
# Checks that tools/impair does what it says, on two namespaces joined by a
# veth pair (10.201.0.1 <-> 10.201.0.2), and prints the measured figures:
#   loss 5 % on both ends    -> ~9.75 % of pings lost (each way 5 %)
#   loss 5 % on one end      -> ~5 %
#   --udp-only               -> pings (ICMP) not lost, UDP lost
#   delay 10 ms on both ends -> RTT +20 ms (ping -U: user-to-user time)
#   clear                    -> back to the bare RTT, nothing left behind
# As root; about a minute. Ends with "N passed, M failed"; exit 1 if any failed.
set -euo pipefail

IMPAIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/impair.sh
ID=${RUN_ID:-$$}
A=imA$ID B=imB$ID VA=ima$ID VB=imb$ID
passed=0 failed=0

cleanup() {
  set +e
  "$IMPAIR" clear "$A" "$VA" >/dev/null 2>&1
  "$IMPAIR" clear "$B" "$VB" >/dev/null 2>&1
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || { echo "selftest.sh: must run as root" >&2; exit 1; }
ip netns add "$A"
ip netns add "$B"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" netns "$A"
ip link set "$VB" netns "$B"
ip -n "$A" addr add 10.201.0.1/24 dev "$VA"
ip -n "$B" addr add 10.201.0.2/24 dev "$VB"
ip -n "$A" link set "$VA" up
ip -n "$B" link set "$VB" up
ip netns exec "$A" ping -c 3 -i 0.2 -W 1 10.201.0.2 >/dev/null

check() {  # check NAME CONDITION-AS-AWK VALUE
  if awk -v v="$3" "BEGIN { exit !($2) }"; then
    passed=$((passed + 1))
    printf 'ok    %-44s %s\n' "$1" "$3"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-44s %s (want %s)\n' "$1" "$3" "$2"
  fi
}
lost() {  # lost COUNT: % of COUNT pings A -> B lost (every 10 ms)
  ip netns exec "$A" ping -n -q -c "$1" -i 0.01 -W 1 10.201.0.2 2>/dev/null |
    grep -o '[0-9.]*% packet loss' | cut -d% -f1
}
rtt() {  # rtt [-U]: mean RTT A -> B in ms over 50 pings
  ip netns exec "$A" ping -n -q -c 50 -i 0.01 "$@" 10.201.0.2 2>/dev/null |
    sed -n 's|^rtt min/avg/max/mdev = [0-9.]*/\([0-9.]*\)/.*|\1|p'
}

base=$(rtt -U)
"$IMPAIR" set "$A" "$VA" --loss-pct 5 2>/dev/null
"$IMPAIR" set "$B" "$VB" --loss-pct 5 2>/dev/null
check "5 % both ends: % of 1000 pings lost" "v >= 6 && v <= 14" "$(lost 1000)"
"$IMPAIR" set "$A" "$VA" 2>/dev/null
check "5 % on B only: % of 1000 pings lost" "v >= 2.5 && v <= 8" "$(lost 1000)"
"$IMPAIR" set "$B" "$VB" --loss-pct 50 --udp-only 2>/dev/null
check "50 % --udp-only: % of 200 pings lost" "v == 0" "$(lost 200)"
counters() { "$IMPAIR" show "$B" "$VB" | sed -n 's/.*packets seen \([0-9]*\), dropped \([0-9]*\).*/\1 \2/p'; }
read -r seen0 dropped0 < <(counters)
for _ in $(seq 200); do
  ip netns exec "$A" bash -c 'echo x >/dev/udp/10.201.0.2/9' 2>/dev/null || true
done
read -r seen1 dropped1 < <(counters)
got="$((dropped1 - dropped0)) of $((seen1 - seen0))"
check "50 % --udp-only: UDP datagrams dropped" "v + 0 >= 60 && v + 0 <= 140" "$got"

"$IMPAIR" set "$A" "$VA" --delay-ms 10 2>/dev/null
"$IMPAIR" set "$B" "$VB" --delay-ms 10 2>/dev/null
d=$(rtt -U)
check "10 ms both ends: RTT rise (ms), bare $base" "v >= 19.5 && v <= 22" "$(awk -v a="$d" -v b="$base" 'BEGIN { printf "%.3f", a - b }')"
"$IMPAIR" set "$A" "$VA" --delay-ms 10 --loss-pct 5 2>/dev/null
"$IMPAIR" set "$B" "$VB" --delay-ms 10 --loss-pct 5 2>/dev/null
check "10 ms + 5 % both ends: % of 400 pings lost" "v >= 4 && v <= 17" "$(lost 400)"
pid_before=$("$IMPAIR" show "$B" "$VB" | sed -n 's/.*impair_delay PID \([0-9]*\).*/\1/p')
"$IMPAIR" set "$B" "$VB" --delay-ms 10 --loss-pct 5 2>/dev/null
pid_after=$("$IMPAIR" show "$B" "$VB" | sed -n 's/.*impair_delay PID \([0-9]*\).*/\1/p')
check "set again: same delay daemon kept" "v == \"$pid_before\"" "$pid_after"
"$IMPAIR" clear "$A" "$VA"
"$IMPAIR" clear "$B" "$VB"
"$IMPAIR" clear "$B" "$VB"  # twice: nothing to do
left=$( { ip netns exec "$A" tc filter show dev "$VA" ingress; ip netns exec "$B" iptables -t mangle -S | grep -c buckwild-impair || true; { compgen -G "/run/buckwild-impair/*$ID*" || true; } | wc -l; } | paste -sd' ')
check "clear leaves no filter, rule or state" 'v == "0 0"' "$left"
check "after clear: RTT (ms) back to bare" "v < $base + 1" "$(rtt -U)"

echo "$passed passed, $failed failed"
((failed == 0))
