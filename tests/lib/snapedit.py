#!/usr/bin/env python3
"""snapedit.py - rewrite a cvisor snapshot's sections and make its CRCs
valid again, to test what the loader refuses beyond the container checks
(src/snapshot/format.c has the format).

  snapedit.py IN OUT vcpu-index I N     VCPU section I says it is vCPU N
  snapedit.py IN OUT same-device I J    DEVICE section J becomes a copy of I
  snapedit.py IN OUT rename-device I S  DEVICE section I names device S
  snapedit.py IN OUT machine-v1         MACHINE as format 1.0 wrote it (version
                                        1, without the last u8, which must be 0)
  snapedit.py IN OUT mutate SEED        one random change, reproducible from SEED:
                                        a byte, a 32-bit field set to an extreme,
                                        a section's version or length, a section
                                        dropped or repeated (prints what it did)
  snapedit.py IN OUT memfile            MEMFILE recomputed from OUT.mem (a .mem
                                        whose data was changed on purpose)
  snapedit.py IN OUT format-1.0         without MEMFILE, as format 1.0 wrote it

Prints the name of the device concerned (same-device, rename-device), so
that a test can expect the loader's line about it."""
import random
import struct
import sys
import zlib

SEC_MACHINE, SEC_VCPU, SEC_DEVICE, SEC_MEMFILE = 1, 3, 4, 6
PAGE = 4096


def mem_digest(path):
    """(pages, crc) of a .mem as src/snapshot/memfile.c defines them."""
    pages, crc, off, zero = 0, 0, 0, bytes(PAGE)
    with open(path, "rb") as f:
        while True:
            page = f.read(PAGE)
            if not page:
                return pages, crc
            if page != zero:
                crc = zlib.crc32(page, zlib.crc32(struct.pack("<Q", off), crc))
                pages += 1
            off += PAGE


def sections(payload):
    out, pos = [], 0
    while pos < len(payload):
        sid, ver, flags, n = struct.unpack_from("<IHHQ", payload, pos)
        out.append([sid, ver, flags, bytearray(payload[pos + 16:pos + 16 + n])])
        pos += 16 + n
    return out


def mutate(secs, rnd):
    """One change that the CRCs no longer catch; returns what it was."""
    i = rnd.randrange(len(secs))
    s = secs[i]
    kind = rnd.choice(["byte", "byte", "byte", "field", "field", "version", "length",
                       "drop", "repeat"])
    if kind in ("byte", "field") and len(s[3]) < 4:
        kind = "version"
    if kind == "byte":
        at = rnd.randrange(len(s[3]))
        s[3][at] ^= rnd.randrange(1, 256)
        return "section %d (id %d) byte %d" % (i, s[0], at)
    if kind == "field":
        at = rnd.randrange(len(s[3]) - 3)
        v = rnd.choice([0, 1, 0x7fffffff, 0x80000000, 0xffffffff])
        struct.pack_into("<I", s[3], at, v)
        return "section %d (id %d) u32 at %d = %#x" % (i, s[0], at, v)
    if kind == "version":
        s[1] = rnd.choice([0, 2, 3, 0xffff])
        return "section %d (id %d) version %d" % (i, s[0], s[1])
    if kind == "length":
        cut = rnd.randrange(1, min(len(s[3]), 64) + 1) if s[3] else 0
        s[3] = s[3][:len(s[3]) - cut] if rnd.random() < 0.5 else s[3] + bytes(cut or 1)
        return "section %d (id %d) length %d" % (i, s[0], len(s[3]))
    if kind == "drop":
        del secs[i]
        return "section %d (id %d) dropped" % (i, s[0])
    secs.insert(i, [s[0], s[1], s[2], bytearray(s[3])])
    return "section %d (id %d) repeated" % (i, s[0])


def main(argv):
    src, dst, op = argv[1], argv[2], argv[3]
    data = open(src, "rb").read()
    if data[:8] != b"CVISNAP\0":
        sys.exit("snapedit: %s: not a snapshot" % src)
    hsize, plen = struct.unpack_from("<IQ", data, 12)
    secs = sections(data[hsize:hsize + plen])
    vcpus = [s for s in secs if s[0] == SEC_VCPU]
    devs = [s for s in secs if s[0] == SEC_DEVICE]
    name = ""
    if op == "vcpu-index":
        struct.pack_into("<I", vcpus[int(argv[4])][3], 0, int(argv[5]))
    elif op == "same-device":
        src_dev = devs[int(argv[4])]
        devs[int(argv[5])][3] = bytearray(src_dev[3])
        n = struct.unpack_from("<H", src_dev[3], 0)[0]
        name = src_dev[3][2:2 + n].decode()
    elif op == "rename-device":
        d = devs[int(argv[4])]
        n = struct.unpack_from("<H", d[3], 0)[0]
        name = argv[5]
        d[3] = bytearray(struct.pack("<H", len(name)) + name.encode() + d[3][2 + n:])
    elif op == "machine-v1":
        m = [s for s in secs if s[0] == SEC_MACHINE][0]
        if m[1] != 2 or m[3][-1] != 0:
            sys.exit("snapedit: MACHINE is not version 2 without the shim's area")
        m[1], m[3] = 1, m[3][:-1]
    elif op == "memfile":
        m = [s for s in secs if s[0] == SEC_MEMFILE][0]
        m[3] = bytearray(struct.pack("<QI", *mem_digest(dst + ".mem")))
    elif op == "mutate":
        name = mutate(secs, random.Random(int(argv[4])))
    elif op == "format-1.0":
        secs = [s for s in secs if s[0] != SEC_MEMFILE]
    else:
        sys.exit("snapedit: unknown operation " + op)
    payload = b"".join(struct.pack("<IHHQ", s[0], s[1], s[2], len(s[3])) + bytes(s[3])
                       for s in secs)
    hdr = bytearray(data[:hsize])
    if op == "format-1.0":
        struct.pack_into("<H", hdr, 10, 0)
    struct.pack_into("<QI", hdr, 16, len(payload), zlib.crc32(payload))
    struct.pack_into("<I", hdr, 28, zlib.crc32(bytes(hdr[:28])))
    open(dst, "wb").write(bytes(hdr) + payload)
    if name:
        print(name)


if __name__ == "__main__":
    main(sys.argv)
