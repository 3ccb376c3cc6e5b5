#!/usr/bin/env python3
"""UDP datagrams through the tunnel in back-to-back bursts, each checked.

  udp_burst.py receive ADDR PORT COUNT SIZE SECONDS
      binds ADDR:PORT, prints "ready", and waits at most SECONDS for COUNT
      datagrams of SIZE bytes; prints what came and exits 0 only if every
      one came once, whole, with the bytes it was sent with.
  udp_burst.py send ADDR PORT COUNT SIZE
      sends COUNT numbered datagrams of SIZE bytes in bursts of 64, 5 ms
      apart: a burst reaches the far daemon in one receive batch, where equal
      datagrams of one flow may be written to its TUN as one USO packet.
"""
import hashlib
import socket
import sys
import time

BURST = 64


def payload(seq, size):
    head = seq.to_bytes(8, "big")
    block = hashlib.sha256(head).digest()
    body = (block * (size // len(block) + 1))[: size - len(head)]
    return head + body


def receive(addr, port, count, size, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((addr, port))
    print("ready", flush=True)
    seen = set()
    corrupt = duplicates = 0
    deadline = time.monotonic() + seconds
    while len(seen) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(65535)
        except socket.timeout:
            break
        seq = int.from_bytes(data[:8], "big") if len(data) >= 8 else -1
        if len(data) != size or not 0 <= seq < count or data != payload(seq, size):
            corrupt += 1
        elif seq in seen:
            duplicates += 1
        else:
            seen.add(seq)
    print(f"received {len(seen)} of {count}, {corrupt} corrupt, {duplicates} duplicates", flush=True)
    return 0 if len(seen) == count and corrupt == 0 and duplicates == 0 else 1


def send(addr, port, count, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    for start in range(0, count, BURST):
        for seq in range(start, min(start + BURST, count)):
            s.sendto(payload(seq, size), (addr, port))
        time.sleep(0.005)
    return 0


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "receive":
        return receive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                       float(sys.argv[6]))
    if len(sys.argv) == 6 and sys.argv[1] == "send":
        return send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
