#!/usr/bin/env bash
# What a UDP_GRO socket reads across a veth pair (docs/architecture.md, "UDP
# GSO/GRO and the filter"), for a sender of single datagrams and one of
# UDP_SEGMENT (GSO) sends of 40 × 1200 bytes, with no XDP on the receiving
# veth, with XDP in the driver, and with generic XDP. Needs root, clang, ip,
# ethtool. Creates and deletes the namespaces bwp_a and bwp_b.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
obj=$dir/xdp_pass.o
clang -O2 -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -c "$here/xdp_pass.c" -o "$obj" || exit 1
del_ns() { ip netns del bwp_a 2>/dev/null; ip netns del bwp_b 2>/dev/null; }
trap 'del_ns; rm -rf "$dir"' EXIT
del_ns
ip netns add bwp_a && ip netns add bwp_b
ip link add bwpa netns bwp_a type veth peer name bwpb netns bwp_b
ip -n bwp_a addr add 10.99.0.1/24 dev bwpa && ip -n bwp_b addr add 10.99.0.2/24 dev bwpb
ip -n bwp_a link set bwpa up && ip -n bwp_b link set bwpb up
ip netns exec bwp_b ethtool -K bwpb gro on
for hook in none xdpdrv xdpgeneric; do
  [[ $hook != none ]] && ip -n bwp_b link set dev bwpb "$hook" obj "$obj" sec xdp
  echo "receiver hook $hook; sender $(ip netns exec bwp_a ethtool -k bwpa | grep tx-udp-segmentation)"
  for send in single gso; do
    ip netns exec bwp_b python3 "$here/probe.py" recv "$send" & p=$!
    sleep 0.5
    ip netns exec bwp_a python3 "$here/probe.py" send "$send"
    wait $p
  done
  [[ $hook != none ]] && ip -n bwp_b link set dev bwpb "$hook" off
done
