"""One long-lived TCP echo conversation through the tunnel (run.sh's recovery
cases): the same connection must carry on across a clock step, an outage
longer than the dead-peer timeout, and so on.

  echo_conversation.py server ADDR PORT DIR   echoes lines; writes DIR/accepted
  echo_conversation.py client ADDR PORT DIR   one connection, a line every 0.2 s

The client writes DIR/count ("N SECONDS", N lines echoed so far) after each
answer, and stops when DIR/stop exists: it prints a summary and exits 0 if
every line came back intact on the one connection, 1 on a reset, a wrong
answer or an answer later than 60 s. Both give up after 300 s.
"""
import os
import select
import socket
import sys
import time

LIMIT_S = 300


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def server(addr, port, work):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(4)
    accepted = 0
    write_atomic(os.path.join(work, "accepted"), "0\n")
    conns = []
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([ls] + conns, [], [], 0.5)
        for s in ready:
            if s is ls:
                c, _ = ls.accept()
                conns.append(c)
                accepted += 1
                write_atomic(os.path.join(work, "accepted"), "%d\n" % accepted)
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                conns.remove(s)
                s.close()
                continue
            s.sendall(data)
    return True


def client(addr, port, work):
    start = time.monotonic()
    s = socket.create_connection((addr, port), timeout=10)
    s.settimeout(60)
    local = s.getsockname()[1]
    buf = b""
    n = 0
    longest = 0.0
    stop = os.path.join(work, "stop")
    while not os.path.exists(stop) and time.monotonic() - start < LIMIT_S:
        line = b"%d\n" % (n + 1)
        sent = time.monotonic()
        try:
            s.sendall(line)
            while b"\n" not in buf:
                got = s.recv(4096)
                if not got:
                    print("line %d: the connection was closed" % (n + 1), flush=True)
                    return False
                buf += got
        except OSError as e:
            print("line %d: %s (local port %d)" % (n + 1, e, local), flush=True)
            return False
        answer, buf = buf.split(b"\n", 1)
        if answer + b"\n" != line:
            print("line %d: wrong answer %r" % (n + 1, answer), flush=True)
            return False
        n += 1
        longest = max(longest, time.monotonic() - sent)
        write_atomic(os.path.join(work, "count"), "%d %.3f\n" % (n, longest))
        time.sleep(0.2)
    print("%d lines echoed on one connection (local port %d); longest wait %.2f s"
          % (n, local, longest), flush=True)
    s.close()
    return True


def main(argv):
    mode, addr, port, work = argv[1], argv[2], int(argv[3]), argv[4]
    return (server if mode == "server" else client)(addr, port, work)


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv) else 1)
