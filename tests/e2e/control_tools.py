#!/usr/bin/env python3
"""Helpers for tests/e2e/control.sh: reading status documents, scraping the
metrics endpoint, and abusing the control socket. Every command has a deadline.

  hop A.json B.json                  the second status (taken 300 ms later) is a
                                     later window, the peer's ports moved, counters grew
  field FILE PATH                    print a field of a status document ("peers.0.name")
  scrape URL                         GET URL, parse it with prometheus_client, print a summary;
                                     fails without buckwild_build_info or a peer-labelled sample
  abuse SOCKET N_BAD N_IDLE SECONDS  N_BAD malformed requests (each must get an error reply)
                                     and N_IDLE idle clients held open for SECONDS
"""
import json
import socket
import sys
import time
import urllib.request


def load(path):
    with open(path) as f:
        return json.load(f)


def field(doc, path):
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def hop(a_path, b_path):
    a, b = load(a_path), load(b_path)
    sa, sb = a["peers"][0]["session"], b["peers"][0]["session"]
    problems = []
    if sa is None or sb is None:
        problems.append("no session in one of the documents")
    else:
        if sa["id"] != sb["id"]:
            problems.append("the session changed between the calls")
        if b["window"]["index"] <= a["window"]["index"]:
            problems.append("window did not advance: %s -> %s" % (a["window"]["index"], b["window"]["index"]))
        if sa["send_port"] == sb["send_port"] and sa["listen_ports"] == sb["listen_ports"]:
            problems.append("ports did not change: %s" % sa["listen_ports"])
        if sb["tx_packets"] <= sa["tx_packets"] or sb["rx_packets"] <= sa["rx_packets"]:
            problems.append("packet counters did not move")
    if b["counters"]["datagrams_sent"] <= a["counters"]["datagrams_sent"]:
        problems.append("datagrams_sent did not move")
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print("window %d -> %d, send port %d -> %d, tx packets %d -> %d" % (
            a["window"]["index"], b["window"]["index"], sa["send_port"], sb["send_port"],
            sa["tx_packets"], sb["tx_packets"]))
    return 0 if not problems else 1


def scrape(url):
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url, timeout=5) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode()
    families = list(text_string_to_metric_families(text))
    names = {f.name for f in families}
    samples = [s for f in families for s in f.samples]
    peer_samples = [s for s in samples if "peer" in s.labels]
    print("%d families, %d samples, %d with a peer label; content type %s" % (
        len(families), len(samples), len(peer_samples), ctype))
    ok = "buckwild_build" in names or "buckwild_build_info" in names
    if not ok:
        print("no buckwild_build_info", file=sys.stderr)
    if not peer_samples:
        print("no sample with a peer label", file=sys.stderr)
        ok = False
    if not ctype.startswith("text/plain"):
        print("content type %r" % ctype, file=sys.stderr)
        ok = False
    return 0 if ok else 1


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def read_lines(s, count, deadline):
    buf = b""
    while buf.count(b"\n") < count and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n")[:count]


def abuse(path, n_bad, n_idle, seconds):
    deadline = time.monotonic() + 120
    bad = [b"", b"nonsense", b"status please", b"\xff\xfe\x00garbage", b"{\"cmd\":\"status\"}",
           b"STOP", b"reload reload", b" " * 100, b"\x1b[2J", b"x" * 4000]
    errors = 0
    # Malformed requests over a few connections, each pipelined, every one answered.
    per_conn = 100
    for start in range(0, n_bad, per_conn):
        n = min(per_conn, n_bad - start)
        s = connect(path)
        s.sendall(b"".join(bad[(start + i) % len(bad)] + b"\n" for i in range(n)))
        for line in read_lines(s, n, deadline):
            reply = json.loads(line)
            if reply.get("ok") is False and reply.get("error"):
                errors += 1
        s.close()
    print("%d malformed requests, %d error replies" % (n_bad, errors))
    # Idle clients: connected, silent. The daemon keeps at most its limit and
    # closes the rest; none of it may stall the packet path.
    idle = []
    refused = 0
    for _ in range(n_idle):
        try:
            idle.append(connect(path))
        except OSError:
            refused += 1
    time.sleep(seconds)
    closed = 0
    for s in idle:
        s.setblocking(False)
        try:
            s.recv(4096)  # an error line or EOF: the daemon turned it away
            closed += 1
        except BlockingIOError:
            pass  # still connected and silent
        except OSError:
            closed += 1
        s.close()
    print("%d idle clients: %d refused at connect, %d turned away by the daemon, the rest kept" % (
        n_idle, refused, closed))
    return 0 if errors == n_bad else 1


def main():
    cmd = sys.argv[1]
    if cmd == "hop":
        return hop(sys.argv[2], sys.argv[3])
    if cmd == "field":
        print(json.dumps(field(load(sys.argv[2]), sys.argv[3])).strip('"'))
        return 0
    if cmd == "scrape":
        return scrape(sys.argv[2])
    if cmd == "abuse":
        return abuse(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
