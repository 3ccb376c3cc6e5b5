#!/usr/bin/env python3
"""TCP request/response latency for bench/run.sh: many small exchanges on one
connection, one at a time (TCP_NODELAY), timed on the client.

  rr.py server HOST PORT [--once]      echo fixed-size messages back
  rr.py client HOST PORT --count N --max-seconds S --size B --out FILE
      prints one JSON line {"count", "median_us", "p99_us", ...}; FILE gets
      every exchange's latency in microseconds, one a line (for the plots)
  rr.py first HOST PORT --max-seconds S
      tries one exchange every 2 ms until one succeeds; prints the wall-clock
      time of that success in ms since the epoch (start-up measurements)

Bounded: the client stops after N exchanges or S seconds, whichever is first,
and every socket operation has a timeout.
"""
import argparse
import json
import socket
import sys
import time


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        buf += chunk
    return bytes(buf)


def serve(host, port, once, size):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(8)
    print(f"rr server on {host}:{port}", file=sys.stderr, flush=True)
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(60)
        try:
            while True:
                conn.sendall(recv_exact(conn, size))
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()
        if once:
            return


def client(args):
    deadline = time.monotonic() + args.max_seconds
    s = socket.create_connection((args.host, args.port), timeout=args.connect_timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5)
    msg = b"x" * args.size
    for _ in range(args.warmup):
        s.sendall(msg)
        recv_exact(s, args.size)
    lat = []
    while len(lat) < args.count and time.monotonic() < deadline:
        t0 = time.perf_counter_ns()
        s.sendall(msg)
        recv_exact(s, args.size)
        lat.append((time.perf_counter_ns() - t0) / 1000.0)
    s.close()
    if not lat:
        raise SystemExit("rr.py: no exchange completed")
    srt = sorted(lat)

    def pct(p):
        return srt[min(len(srt) - 1, int(round(p / 100.0 * (len(srt) - 1))))]

    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(f"{v:.1f}" for v in lat) + "\n")
    print(json.dumps({"count": len(lat), "median_us": round(pct(50), 1), "p99_us": round(pct(99), 1),
                      "min_us": round(srt[0], 1), "max_us": round(srt[-1], 1)}))


def first(args):
    deadline = time.monotonic() + args.max_seconds
    msg = b"f" * args.size
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((args.host, args.port), timeout=0.5) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(0.5)
                s.sendall(msg)
                recv_exact(s, args.size)
                print(time.time_ns() // 1_000_000, flush=True)
                return
        except (OSError, ConnectionError):
            time.sleep(0.002)
    raise SystemExit(f"rr.py: no exchange through {args.host}:{args.port} within {args.max_seconds} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client", "first"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--connect-timeout", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.role == "server":
        serve(args.host, args.port, args.once, args.size)
    elif args.role == "first":
        first(args)
    else:
        client(args)


if __name__ == "__main__":
    main()
