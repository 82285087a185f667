#!/usr/bin/env python3
"""ctl_client.py - raw clients of a guest's control socket for the hostile
cases of tests/e2e/toolstack.sh, which the cvisor client cannot play:

  send SOCK DATA [--fds N] [--half-close] [--hang-up] [--lines N] [--timeout S]
      one connection: write DATA ("\\n" escapes allowed) in one send (with
      --fds, its first byte alone with N files of /dev/null, SCM_RIGHTS), then
      shutdown(SHUT_WR) (--half-close) or close at once (--hang-up); print
      what the server sends until N lines (default: until it closes), or S
      seconds (default 5) pass.
  hold SOCK N [--timeout S]
      N connections that never send a byte. Prints "connected N" once all
      are connected, then for each one the server closes "closed I after T"
      (seconds since connecting); ends when all are closed, or after S
      seconds (default 30) with "open K".
  storm SOCK N [--timeout S]
      N clients at once (threads), each sending one info request and
      reading its one reply: prints "replies K of N" (K counts replies that
      are one JSON line with "ok":true).
  junk SOCK [--timeout S]
      abuse on separate connections: binary lines, a 1 MiB line with no
      newline, a request cut in the middle: prints one line per case, what
      came back ("reply", "closed" or "nothing").
"""
import threading
import argparse
import os
import select
import socket
import sys
import time


def send(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(a.sock)
    data = a.data.encode().decode("unicode_escape").encode("latin-1")
    if a.fds:
        fds = [os.open("/dev/null", os.O_RDWR) for _ in range(a.fds)]
        socket.send_fds(s, [data[:1]], fds)
        data = data[1:]
    s.sendall(data)
    if a.hang_up:
        s.close()
        return 0
    if a.half_close:
        s.shutdown(socket.SHUT_WR)
    got = b""
    end = time.monotonic() + a.timeout
    while time.monotonic() < end and (not a.lines or got.count(b"\n") < a.lines):
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    sys.stdout.write(got.decode(errors="replace"))
    return 0


def hold(a):
    conns = {}
    for i in range(a.n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(a.sock)
        conns[s] = (i, time.monotonic())
    print("connected %d" % a.n, flush=True)
    end = time.monotonic() + a.timeout
    while conns and time.monotonic() < end:
        r, _, _ = select.select(list(conns), [], [], max(0.0, end - time.monotonic()))
        for s in r:
            if s.recv(4096) == b"":
                i, t0 = conns.pop(s)
                print("closed %d after %.1f" % (i, time.monotonic() - t0), flush=True)
                s.close()
    if conns:
        print("open %d" % len(conns), flush=True)
    return 0


def storm(a):
    ok = []

    def one():
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # Blocking, as cvisor's client connects: with the backlog full a
            # non-blocking AF_UNIX connect fails at once (EAGAIN).
            s.connect(a.sock)
            s.settimeout(a.timeout)
            s.sendall(b'{"cmd":"info"}\n')
            got = b""
            while not got.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            s.close()
            if got.count(b"\n") == 1 and b'"ok":true' in got:
                ok.append(1)
        except OSError:
            pass

    ts = [threading.Thread(target=one) for _ in range(a.n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("replies %d of %d" % (len(ok), a.n))
    return 0


def junk_one(sock, data, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    try:
        s.sendall(data)
        got = s.recv(65536)
        return "reply" if got else "closed"
    except socket.timeout:
        return "nothing"
    except OSError:
        return "closed"
    finally:
        s.close()


def junk(a):
    cases = [("binary", bytes(range(256)) + b"\n\x00\xff\n"),
             ("long", b"{" + b"a" * (1 << 20)),
             ("cut", b'{"cmd":"in')]
    for name, data in cases:
        print("%s %s" % (name, junk_one(a.sock, data, a.timeout)), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("send")
    s.add_argument("sock")
    s.add_argument("data")
    s.add_argument("--fds", type=int, default=0)
    s.add_argument("--half-close", action="store_true")
    s.add_argument("--hang-up", action="store_true")
    s.add_argument("--lines", type=int, default=0)
    s.add_argument("--timeout", type=float, default=5)
    h = sub.add_parser("hold")
    h.add_argument("sock")
    h.add_argument("n", type=int)
    h.add_argument("--timeout", type=float, default=30)
    for verb in ("storm", "junk"):
        x = sub.add_parser(verb)
        x.add_argument("sock")
        if verb == "storm":
            x.add_argument("n", type=int)
        x.add_argument("--timeout", type=float, default=20)
    a = p.parse_args()
    return {"send": send, "hold": hold, "storm": storm, "junk": junk}[a.verb](a)


if __name__ == "__main__":
    sys.exit(main())
