#!/usr/bin/python3
"""Checks an underlay capture (pcap, Ethernet) between the two test hosts.

    analyze_capture.py PCAP ORACLE PSK_BASE64 MARKER [--nat]

Prints a summary and exits 1 if any of these fails (issue #5's capture test):
  * every IPv4 packet between 10.200.0.1 and 10.200.0.2 is UDP;
  * at least 15 distinct destination ports in each direction;
  * every Buckwild data packet's destination port is one the schedule
    (docs/protocol.md §10, computed by the core through ORACLE) gives for its
    session, direction and the window of its timestamp (±1 window);
  * MARKER, sent in the clear through the tunnel, appears nowhere on the wire.

--nat: 10.200.0.1 is the public address of a NAT in front of the initiator
(tests/e2e/nat.sh), captured on the public side. The initiator's datagrams
arrive from ports the NAT chose, and the responder answers along them
(docs/protocol.md §11.6): then B->A packets are checked by their *source*
port, which is the responder's own receive port of the initiator's direction
(±2 windows: it may answer along the previous window's path), and at least 15
distinct source and 15 distinct destination ports are required each way.
"""
import struct
import subprocess
import sys

A, B = bytes([10, 200, 0, 1]), bytes([10, 200, 0, 2])
DISCOVERY_TYPES = {0x0C, 0x0D, 0x0E}
DAY_MS = 86_400_000


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        yield sec + frac / (1e9 if nano else 1e6), frame


def main():
    pcap, oracle, psk, marker = sys.argv[1:5]
    nat = "--nat" in sys.argv[5:]
    marker = marker.encode()
    non_udp, leaked = 0, 0
    ports = {0: set(), 1: set()}
    sources = {0: set(), 1: set()}
    checks = []  # (session hex, unix ms, dir, dst port)
    total = 0
    for t, frame in packets(pcap):
        if marker in frame:
            leaked += 1
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue  # ARP, IPv6 neighbour discovery: link-local, not host-to-host traffic
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        src, dst, proto = ip[12:16], ip[16:20], ip[9]
        if {src, dst} != {A, B}:
            continue
        total += 1
        if proto != 17:
            non_udp += 1
            continue
        udp = ip[ihl:]
        sport, dport = struct.unpack(">HH", udp[0:4])
        payload = udp[8:]
        direction = 0 if src == A else 1  # alice initiates
        if len(payload) < 60 or payload[0] != 1 or payload[1] in DISCOVERY_TYPES:
            continue
        ports[direction].add(dport)
        sources[direction].add(sport)
        sid = payload[4:12].hex()
        ts = struct.unpack(">I", payload[28:32])[0]
        capture_ms = int(t * 1000)
        day = round((capture_ms - ts) / DAY_MS)
        if nat and direction == 1:
            checks.append((sid, day * DAY_MS + ts, 0, sport, 2))
        else:
            checks.append((sid, day * DAY_MS + ts, direction, dport, 1))

    query = "".join(f"{s} {ms} {d} {span}\n" for s, ms, d, _, span in checks)
    out = subprocess.run([oracle, psk], input=query, capture_output=True, text=True, check=True).stdout
    mismatched = sum(1 for (_, _, _, port, _), line in zip(checks, out.splitlines())
                     if str(port) not in line.split())
    print(f"capture: {total} packets between the hosts, {non_udp} not UDP; "
          f"{len(ports[0])} distinct ports A->B, {len(ports[1])} B->A "
          f"(source ports: {len(sources[0])} A->B, {len(sources[1])} B->A); "
          f"{len(checks)} data packets checked against the schedule, {mismatched} off it; "
          f"marker seen {leaked} times")
    ok = (non_udp == 0 and len(ports[0]) >= 15 and len(ports[1]) >= 15 and mismatched == 0
          and leaked == 0 and len(checks) > 0)
    if nat:
        ok = ok and len(sources[0]) >= 15 and len(sources[1]) >= 15
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
