#!/usr/bin/env python3
"""api_fds.py - one Cloud Hypervisor API request with file descriptors,
sent as libvirt 11.3 sends vm.add-net: the whole request in one sendmsg
with the descriptors as SCM_RIGHTS, on a new connection, and the answer
read with one recv of at most 1023 bytes within 500 ms (a longer answer or
a later one fails libvirt, so it fails here).

  api_fds.py SOCK ENDPOINT BODY [--tap NAME] [--copies N] [--pipe]

  --tap NAME   open the tap NAME (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as
               libvirt does) in this process's network namespace and pass
               its descriptor (--copies N: N dups of it)
  --pipe       pass a pipe's read end instead (not a tap)
  (neither)    pass no descriptor

Prints the status code on the first line, then the body. Exit 0 when an
answer came, 1 otherwise (with why on stderr)."""
import argparse
import fcntl
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sock")
    p.add_argument("endpoint")
    p.add_argument("body")
    p.add_argument("--tap")
    p.add_argument("--copies", type=int, default=1)
    p.add_argument("--pipe", action="store_true")
    a = p.parse_args()
    fds = []
    if a.tap:
        fd = open_tap(a.tap)
        fds = [fd] + [os.dup(fd) for _ in range(a.copies - 1)]
    elif a.pipe:
        r, w = os.pipe()
        fds = [r]
        os.close(w)
    body = a.body.encode()
    req = (
        "PUT /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\n\r\n" % (a.endpoint, len(body))
    ).encode() + body
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(a.sock)
    socket.send_fds(s, [req], fds)
    # libvirt closes its copies once sent: the VMM holds what it kept.
    for fd in fds:
        os.close(fd)
    if not select.select([s], [], [], 0.5)[0]:
        sys.exit("no answer within 500 ms")
    got = s.recv(1023)
    s.close()
    head, _, rest = got.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].split(b" ")
    if len(status) < 2 or not status[0].startswith(b"HTTP/1."):
        sys.exit("not an HTTP answer: %r" % got[:80])
    print(status[1].decode())
    print(rest.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
