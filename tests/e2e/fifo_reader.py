#!/usr/bin/env python3
"""tests/e2e/fifo_reader.py TRIGGER FIFO - reads an event FIFO the way
libvirt 11.3's event thread does: a thread blocked in read(2) in a loop,
and, once the file TRIGGER exists, the main thread stops it and closes the
fd while that read is still blocked (the domain's destroy or save). The
process stays (the daemon lives on) until killed. The VMM must notice the
reader has gone although the close happened under a blocked read."""
import os
import sys
import threading
import time

fd = os.open(sys.argv[2], os.O_RDONLY)
stop = threading.Event()


def loop():
    while not stop.is_set():
        try:
            if not os.read(fd, 4096):
                time.sleep(1)  # no writer: libvirt sleeps and reads again
        except OSError:
            return


threading.Thread(target=loop, daemon=True).start()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.1)
time.sleep(0.5)  # the thread is back in read(2)
stop.set()
os.close(fd)
time.sleep(600)
