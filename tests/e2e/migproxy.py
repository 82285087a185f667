#!/usr/bin/env python3
"""tests/e2e/migproxy.py - a man in the middle of a cvisor migration stream
(tests/e2e/migrate.sh), for the hostile-peer cases.

  migproxy.py proxy PORT TARGET_PORT [--record FILE] [--replace OLD NEW]
      Listen on 127.0.0.1:PORT (prints "ready"), take one connection, and
      relay it both ways to 127.0.0.1:TARGET_PORT. --record writes what the
      source sent to FILE; --replace rewrites OLD to NEW (same length) in
      the source's HELLO (message type 1) and recomputes its CRC-32, as a
      peer that patches the stream would.
  migproxy.py replay PORT FILE
      Send FILE to 127.0.0.1:PORT, read the answers until the target closes
      (at most 10 s) and print their message types.
"""
import socket
import struct
import sys
import threading
import zlib

HELLO = 1


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        got = s.recv(n - len(buf))
        if not got:
            return buf
        buf += got
    return buf


def pump(src, dst, rec, patch):
    """Relay src to dst; the first HELLO patched when asked."""
    try:
        while patch is not None:
            hdr = read_exact(src, 8)
            if len(hdr) < 8:
                break
            mtype, length = struct.unpack("<II", hdr)
            body = read_exact(src, length)
            read_exact(src, 4)  # the old CRC
            if mtype == HELLO:
                body = body.replace(patch[0], patch[1])
                patch = None
            msg = hdr + body + struct.pack("<I", zlib.crc32(hdr + body))
            if rec:
                rec.write(msg)
            dst.sendall(msg)
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            if rec:
                rec.write(data)
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def proxy(argv):
    port, tport = int(argv[0]), int(argv[1])
    rec, patch = None, None
    i = 2
    while i < len(argv):
        if argv[i] == "--record":
            rec = open(argv[i + 1], "wb")
            i += 2
        elif argv[i] == "--replace":
            old, new = argv[i + 1].encode(), argv[i + 2].encode()
            assert len(old) == len(new), "--replace keeps the length"
            patch = (old, new)
            i += 3
        else:
            sys.exit("unknown argument " + argv[i])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("ready", flush=True)
    src, _ = ls.accept()
    dst = socket.create_connection(("127.0.0.1", tport))
    up = threading.Thread(target=pump, args=(src, dst, rec, patch))
    up.start()
    pump(dst, src, None, None)
    up.join()
    if rec:
        rec.close()


def replay(argv):
    s = socket.create_connection(("127.0.0.1", int(argv[0])))
    with open(argv[1], "rb") as f:
        data = f.read()
    s.settimeout(10)
    answers = b""
    try:
        s.sendall(data)
        while True:
            got = s.recv(1 << 16)
            if not got:
                break
            answers += got
    except OSError:
        pass
    types = []
    while len(answers) >= 8:
        mtype, length = struct.unpack("<II", answers[:8])
        types.append(str(mtype))
        answers = answers[8 + length + 4:]
    print("answers: " + " ".join(types))


if __name__ == "__main__":
    {"proxy": proxy, "replay": replay}[sys.argv[1]](sys.argv[2:])
