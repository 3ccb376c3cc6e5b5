#!/usr/bin/env python3
"""A lying NTP server for tests/e2e/ntp.sh: answers every NTPv4 client request
like a healthy stratum-2 server whose clock is --ahead seconds fast. chronyd
cannot serve a clock other than the system's without setting it, and the
test must never touch this machine's clock, hence this small responder.

    ntp_liar.py --listen ADDRESS[:PORT] --ahead SECONDS [--max-requests N]
"""
import argparse
import socket
import struct
import time

NTP_DELTA = 2208988800


def ntp_time(t):
    sec = int(t)
    frac = int((t - sec) * (1 << 32)) & 0xFFFFFFFF
    return ((sec + NTP_DELTA) & 0xFFFFFFFF) << 32 | frac


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--ahead", type=float, required=True)
    ap.add_argument("--max-requests", type=int, default=100000)
    args = ap.parse_args()
    host, _, port = args.listen.partition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port or 123)))
    for _ in range(args.max_requests):  # bounded, like every loop in the tests
        data, peer = sock.recvfrom(512)
        now = time.time() + args.ahead
        if len(data) < 48:
            continue
        first = data[0]
        version = (first >> 3) & 7
        mode = first & 7
        if mode != 3:
            continue
        transmit = data[40:48]
        reply = struct.pack(
            "!BBbbIII",
            (0 << 6) | (version << 3) | 4,  # no leap warning, server mode
            2,  # stratum 2: looks healthy
            4,
            -20,
            0x00000080,  # root delay ~2 ms
            0x00000080,  # root dispersion ~2 ms
            0x0A7B0101,  # a plausible reference id
        )
        reply += struct.pack("!Q", ntp_time(now - 16))  # reference time
        reply += transmit  # origin: the client's nonce, as an honest server would
        reply += struct.pack("!Q", ntp_time(now))  # receive
        reply += struct.pack("!Q", ntp_time(time.time() + args.ahead))  # transmit
        sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
