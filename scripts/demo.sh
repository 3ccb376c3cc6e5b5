#!/usr/bin/env bash
# The two-host demo, as root on a fresh Debian 12 machine:
#   installs what it needs, builds, creates two network namespaces joined by a
#   veth pair, starts a buckwild daemon in each (examples/alice.toml and
#   examples/bob.toml), fetches a page through the tunnel from a web server on
#   the other host, shows ten seconds of the underlay (only UDP, the port
#   changing every 250 ms), and cleans everything up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target buckwild -j"$(nproc)" >/dev/null

source tests/e2e/lib.sh
trap cleanup EXIT
write_configs
make_hosts

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting buckwild in host B (bob, 10.200.0.2) and host A (alice, 10.200.0.1)"
start_daemon B "$WORK/bob.toml"
start_daemon A "$WORK/alice.toml"
wait_until 10 tunnel_up || { tail -n 30 "$WORK"/daemon-*.log; die "tunnel did not come up"; }
grep -h "established\|confirmed\|virtual interface" "$WORK"/daemon-*.log | sed 's/^/  /'

say "a web server in host B listens on its tunnel address 10.77.0.2"
mkdir -p "$WORK/www" "$WORK/nginx"
echo "Hello from bob, through a port-hopping Buckwild tunnel." >"$WORK/www/index.html"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path $WORK/nginx/b; proxy_temp_path $WORK/nginx/p;
  fastcgi_temp_path $WORK/nginx/f; uwsgi_temp_path $WORK/nginx/u; scgi_temp_path $WORK/nginx/s;
  server { listen 10.77.0.2:80; root $WORK/www; } }
CONF
spawn B "$WORK/nginx/out.log" nginx -c "$WORK/nginx/nginx.conf"
wait_until 5 in_a curl -sf -o /dev/null http://10.77.0.2/ || true

say "host A: curl http://10.77.0.2/"
in_a curl -s http://10.77.0.2/ | sed 's/^/  /'

say "ten seconds of the underlay between the hosts (tcpdump on host A's veth), while A pings B"
spawn A /dev/null tcpdump -i "va$RUN_ID" -nn -tt -q -w "$WORK/demo.pcap" -U udp
cap=$SPAWNED
sleep 0.5
in_a ping -q -c 40 -i 0.25 10.77.0.2 >/dev/null || true
stop_pid $cap
in_a tcpdump -nn -tt -r "$WORK/demo.pcap" 2>/dev/null | awk '
  { split($3, s, "."); split($5, d, "."); port = d[5]; sub(":", "", port)
    printf "  %s  %s -> %s.%s.%s.%s port %5s\n", $1, s[1]"."s[2]"."s[3]"."s[4], d[1], d[2], d[3], d[4], port
    ports[port] = 1; n++ }
  END { c = 0; for (p in ports) c++; printf "\n  %d UDP datagrams, %d distinct destination ports in 10 s\n", n, c }'

say "done; stopping the daemons and removing the namespaces"
