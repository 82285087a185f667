#!/usr/bin/env python3
"""pty_console.py - talk to a guest console through its pty slave, as
`virsh console` or screen would: open /dev/pts/N, then a script of steps,
each one bounded in time.

  pty_console.py PTY LOG TIMEOUT STEP...
    STEP  expect:REGEX  wait until what was read (since the start) matches
          send:TEXT     type TEXT and a carriage return (a terminal's Enter)
          mark          what follows `expect` only looks past here

Everything read is appended to LOG. Exit 0 when every step passed, 1 with
the failed step on stderr (timeout, or the pty went away)."""
import os
import re
import select
import sys
import time


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, log, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    seen = b""
    start = 0
    with open(log, "ab") as out:
        for step in sys.argv[4:]:
            kind, _, arg = step.partition(":")
            if kind == "send":
                os.write(fd, arg.encode() + b"\r")
                continue
            if kind == "mark":
                start = len(seen)
                continue
            pat = re.compile(arg.encode())
            end = time.monotonic() + timeout
            while not pat.search(seen, start):
                left = end - time.monotonic()
                if left <= 0:
                    sys.exit(f"pty_console: timeout waiting for {arg!r}")
                r, _, _ = select.select([fd], [], [], min(left, 0.5))
                if not r:
                    continue
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                except OSError as e:
                    sys.exit(f"pty_console: {path}: {e}")
                if not data:
                    sys.exit(f"pty_console: {path}: hung up waiting for {arg!r}")
                out.write(data)
                out.flush()
                seen += data.replace(b"\r", b"")
            start = pat.search(seen, start).end()
    os.close(fd)


main()
