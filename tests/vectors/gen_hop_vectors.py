#!/usr/bin/env python3
"""Independent cross-check of the Buckwild hop key schedule (docs/protocol.md).

Uses only the Python standard library (hashlib, hmac), shares no code with the
C++ implementation, and prints the known-answer values that
tests/unit/core/hop/*_test.cc pin: first as plain hex lines, then as a
Markdown table for docs/protocol.md.

Usage: python3 tests/vectors/gen_hop_vectors.py
"""

import datetime
import hashlib
import hmac

HOP_INTERVAL_MS = 250
WINDOWS_PER_DAY = 345600
MIN_PORT = 1024
PORT_RANGE = 64512
OFFSET_STRIDE = 15


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    if not salt:
        salt = bytes(32)
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


def utc_date_string(day: int) -> str:
    # datetime's proleptic Gregorian calendar, independent of civil_from_days.
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()


def daily_key(psk: bytes, day: int) -> bytes:
    assert 16 <= len(psk) <= 64
    return hkdf(b"daily_key_salt", psk, b"daily_key" + utc_date_string(day).encode("ascii"), 32)


def session_key(dkey: bytes, session_id: int, nonce: bytes, dh_shared: bytes) -> bytes:
    return hkdf(session_id.to_bytes(8, "big"), dkey + dh_shared, b"session_key" + nonce, 32)


def direction_keys(skey: bytes, label: str):
    return (
        hkdf_expand(skey, b"buckwild packet key " + label.encode(), 32),
        hkdf_expand(skey, b"buckwild packet iv " + label.encode(), 12),
        hkdf_expand(skey, b"buckwild packet mac " + label.encode(), 32),
    )


def offset_permutation(dkey: bytes, session_id: int):
    material = hkdf(b"connection_offset_salt", dkey,
                    b"port_offset" + session_id.to_bytes(8, "big"), 256)
    table = [[material[r * 64 + x] & 0x3F for x in range(64)] for r in range(4)]

    def pi(cid: int) -> int:
        left, right = cid >> 6, cid & 63
        for r in range(4):
            left, right = right, left ^ table[r][right]
        return (left << 6) | right

    return pi


def port_base(dkey: bytes, window_of_day: int, session_id: int, direction: int) -> int:
    msg = window_of_day.to_bytes(8, "big") + session_id.to_bytes(8, "big") + bytes([direction])
    mac = hmac.new(dkey, msg, hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") % PORT_RANGE


def port(dkey: bytes, window_of_day: int, session_id: int, direction: int, offset: int) -> int:
    return MIN_PORT + (port_base(dkey, window_of_day, session_id, direction)
                       + offset * OFFSET_STRIDE) % PORT_RANGE


def main() -> None:
    psk = bytes(range(0x00, 0x20))
    day = 20417
    session_id = 0x0123456789ABCDEF
    nonce = bytes(range(0xA0, 0xC0))
    dh_shared = bytes(range(0x40, 0x60))

    dkey = daily_key(psk, day)
    skey_dh = session_key(dkey, session_id, nonce, dh_shared)
    skey_nodh = session_key(dkey, session_id, nonce, b"")
    pkey, piv, pmac = direction_keys(skey_dh, "i2r")
    pi = offset_permutation(dkey, session_id)
    perm = [pi(i) for i in range(4096)]
    assert sorted(perm) == list(range(4096)), "Feistel output is not a permutation"
    offsets = perm[:8]

    rows = []  # (name, value)
    rows.append(("utc_date_string(day)", utc_date_string(day)))
    rows.append(("daily_key", dkey.hex()))
    rows.append(("session_key (dh_shared)", skey_dh.hex()))
    rows.append(("session_key (no dh)", skey_nodh.hex()))
    rows.append(("i2r packet_key (dh)", pkey.hex()))
    rows.append(("i2r packet_iv (dh)", piv.hex()))
    rows.append(("i2r mac_key (dh)", pmac.hex()))
    rows.append(("offset(0..7)", " ".join(str(o) for o in offsets)))
    ports = []
    for w in (0, 1, 2, WINDOWS_PER_DAY - 1):
        for direction in (0, 1):
            for cid in (0, 1):
                p = port(dkey, w, session_id, direction, pi(cid))
                ports.append((w, direction, cid, p))
                rows.append((f"port(w={w}, dir={direction}, c={cid})", str(p)))

    print("# Buckwild hop vectors")
    print(f"psk        = {psk.hex()}")
    print(f"day        = {day}  ({utc_date_string(day)})")
    print(f"session_id = 0x{session_id:016x}")
    print(f"nonce      = {nonce.hex()}")
    print(f"dh_shared  = {dh_shared.hex()}")
    for name, value in rows:
        print(f"{name} = {value}")

    print()
    print("| Input | Value |")
    print("|---|---|")
    print(f"| PSK | `{psk.hex()}` |")
    print(f"| day | {day} ({utc_date_string(day)}) |")
    print(f"| session_id | `0x{session_id:016x}` |")
    print(f"| nonce | `{nonce.hex()}` |")
    print(f"| dh_shared | `{dh_shared.hex()}` |")
    print()
    print("| Output | Value |")
    print("|---|---|")
    for name, value in rows[1:8]:
        print(f"| {name} | `{value}` |")
    print()
    print("| window of day | absolute window | dir | connection id | offset | port |")
    print("|---|---|---|---|---|---|")
    for w, direction, cid, p in ports:
        print(f"| {w} | {day * WINDOWS_PER_DAY + w} | {direction} | {cid} | {pi(cid)} | {p} |")


if __name__ == "__main__":
    main()
