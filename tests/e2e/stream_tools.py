#!/usr/bin/env python3
"""Clients and servers for the stream-mode end-to-end tests (tests/e2e/stream.sh).

Every server stops by itself (a deadline and a connection budget) and every
client has a deadline, so nothing outlives the test.

  serve-many ADDR PORT SIZE N         send SIZE deterministic bytes to each of N clients
  many ADDR PORT SIZE N               N concurrent clients; each checks its SIZE bytes
  serve-halfclose ADDR PORT           read to EOF, then answer with the data reversed
  halfclose ADDR PORT SIZE            send SIZE bytes, shut down writing, check the reply
  serve-stream ADDR PORT SIZE         send SIZE deterministic bytes to one client
  slow ADDR PORT SIZE STALL PIDFILE   read 1 MB, stop reading STALL s while sampling the
                                      RSS of the PIDs in PIDFILE, then read the rest
  refused ADDR PORT                   print the seconds until connect() is refused
"""
import asyncio
import hashlib
import socket
import sys
import time

DEADLINE = 240  # seconds any one command may run


def pattern(size, seed=0):
    """Deterministic bytes: counter-mode SHA-256, so corruption cannot hide."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, block)).digest() * 64
        block += 1
    return bytes(out[:size])


async def serve_many(addr, port, size, count):
    data = pattern(size)
    done = asyncio.Event()
    served = 0

    async def handle(reader, writer):
        nonlocal served
        writer.write(data)
        await writer.drain()
        writer.close()
        # close() only starts the flush of what drain() left buffered (up to
        # the transport's high-water mark): the served count, which ends the
        # process, must wait for the last byte to reach the kernel.
        await writer.wait_closed()
        served += 1
        if served >= count:
            done.set()

    server = await asyncio.start_server(handle, addr, port, backlog=1024)
    async with server:
        try:
            await asyncio.wait_for(done.wait(), DEADLINE)
        except asyncio.TimeoutError:
            pass


async def many(addr, port, size, count):
    expected = pattern(size)
    want = hashlib.sha256(expected).hexdigest()

    async def one(i):
        reader, writer = await asyncio.open_connection(addr, port)
        h = hashlib.sha256()
        n = 0
        first_wrong = None  # the offset of the first byte not as sent
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            h.update(chunk)
            if first_wrong is None and chunk != expected[n:n + len(chunk)]:
                good = expected[n:n + len(chunk)]
                first_wrong = n + next((k for k in range(min(len(chunk), len(good)))
                                        if chunk[k] != good[k]), min(len(chunk), len(good)))
            n += len(chunk)
        writer.close()
        if n != size:
            return f"connection {i}: {n} of {size} bytes, then EOF"
        if h.hexdigest() != want:
            return f"connection {i}: {size} bytes, the first wrong at offset {first_wrong}"
        return True

    start = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True), DEADLINE)
    good = sum(1 for r in results if r is True)
    errors = [repr(r) for r in results if r is not True][:3]
    print(f"{good}/{count} connections complete and correct in {time.monotonic() - start:.1f} s"
          + (f"; first failures: {errors}" if errors else ""))
    return good == count


def listener(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    s.settimeout(DEADLINE)
    return s


def connect(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(60)
    c.connect((addr, port))
    return c


def read_all(sock):
    parts = []
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


def serve_halfclose(addr, port):
    with listener(addr, port) as s:
        conn, peer = s.accept()
        with conn:
            conn.settimeout(60)
            data = read_all(conn)  # the client's FIN ends this
            # First line: the address the server saw the client connect from.
            conn.sendall(peer[0].encode() + b"\n" + data[::-1])


def halfclose(addr, port, size):
    data = pattern(size, seed=7)
    with connect(addr, port) as c:
        own = c.getsockname()[0]
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        reply = read_all(c)
    seen, _, reply = reply.partition(b"\n")
    seen = seen.decode(errors="replace")
    ok = reply == data[::-1]
    print(f"sent {size} bytes and shut down writing; reply {len(reply)} bytes, "
          f"{'matches' if ok else 'DOES NOT match'}; the server saw {seen}, the client is {own}")
    return ok and seen == own


def serve_stream(addr, port, size):
    data = pattern(size, seed=3)
    with listener(addr, port) as s:
        conn, _ = s.accept()
        with conn:
            conn.settimeout(120)
            conn.sendall(data)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slow(addr, port, size, stall, pidfile):
    pids = [int(p) for p in open(pidfile).read().split()]
    want = hashlib.sha256(pattern(size, seed=3)).hexdigest()
    before = {p: rss_kib(p) for p in pids}
    h = hashlib.sha256()
    got = 0
    peak = dict(before)
    with connect(addr, port) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        while got < (1 << 20):
            chunk = c.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
        end = time.monotonic() + stall
        while time.monotonic() < end:  # not reading: the windows must close
            for p in pids:
                peak[p] = max(peak[p], rss_kib(p))
            time.sleep(0.2)
        while True:
            chunk = c.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
    ok = got == size and h.hexdigest() == want
    growth = {p: peak[p] - before[p] for p in pids}
    print(f"read {got} of {size} bytes after a {stall} s stall, checksum "
          f"{'ok' if ok else 'WRONG'}; daemon RSS (KiB) before/peak during the stall: "
          + ", ".join(f"{p}: {before[p]}/{peak[p]} (+{growth[p]})" for p in pids))
    # Bounded: a stalled flow may hold its connection buffers on each side
    # (2 MiB each way by default) plus a read chunk, not the whole transfer.
    return ok and all(g < 32 * 1024 for g in growth.values())


def refused(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(10)
    start = time.monotonic()
    try:
        c.connect((addr, port))
    except ConnectionRefusedError:
        print(f"{time.monotonic() - start:.4f}")
        return True
    except OSError as e:
        print(f"not refused: {e!r}", file=sys.stderr)
        return False
    print("connected: the port is not closed", file=sys.stderr)
    return False


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "serve-many":
        asyncio.run(serve_many(args[0], int(args[1]), int(args[2]), int(args[3])))
        return True
    if cmd == "many":
        return asyncio.run(many(args[0], int(args[1]), int(args[2]), int(args[3])))
    if cmd == "serve-halfclose":
        serve_halfclose(args[0], int(args[1]))
        return True
    if cmd == "halfclose":
        return halfclose(args[0], int(args[1]), int(args[2]))
    if cmd == "serve-stream":
        serve_stream(args[0], int(args[1]), int(args[2]))
        return True
    if cmd == "slow":
        return slow(args[0], int(args[1]), int(args[2]), float(args[3]), args[4])
    if cmd == "refused":
        return refused(args[0], int(args[1]))
    print(__doc__, file=sys.stderr)
    return False


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv) else 1)
