/* snapshot_format.h - the snapshot container (src/snapshot/format.c,
 * where the whole format is specified): a checksummed header, then TLV
 * sections, each with its own version, holding explicit little-endian
 * fields. Guest memory is in a file of its own next to it. Everything read
 * is bounded before it is allocated. */
#ifndef CVISOR_SNAPSHOT_FORMAT_H
#define CVISOR_SNAPSHOT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/state.h"
#include "cvisor/util.h"

#define SNAP_MAGIC "CVISNAP" /* 8 bytes with the NUL */
#define SNAP_MAJOR 1	     /* a reader refuses another major */
#define SNAP_MINOR 1	     /* a reader takes any minor up to its own */
#define SNAP_HEADER_SIZE 32
#define SNAP_MAX_PAYLOAD (64U << 20)

enum snap_section_id {
	SNAP_SEC_MACHINE = 1, /* memory size and layout, vCPU count, CPUID summary */
	SNAP_SEC_KSTATE = 2,  /* PIC, IOAPIC, PIT, kvmclock */
	SNAP_SEC_VCPU = 3,    /* one per vCPU, in order */
	SNAP_SEC_DEVICE = 4,  /* one per device: u16 name length, name, state */
	SNAP_SEC_CONFIG = 5,  /* the guest's configuration, to run it again */
	SNAP_SEC_MEMFILE = 6, /* FILE.mem's digest (format 1.1; `cvisor save` only) */
};

/* Sections are appended to a state_buf: begin writes the TLV head and
 * returns where its length goes; end fills the length in. */
size_t snap_section_begin(struct state_buf *b, uint32_t id, uint16_t version);
void snap_section_end(struct state_buf *b, size_t at);

/* Write header + payload at fd's position. 0 or -errno. */
int snap_fd_write(int fd, const struct state_buf *payload) CV_MUST;

/* Write header + payload to path atomically (a temporary file renamed
 * into place after fsync). 0 or -errno. */
int snap_file_write(const char *path, const struct state_buf *payload) CV_MUST;

/* Read and check a snapshot: magic, major/minor, sizes, both CRCs. On
 * success *payload is malloc'd. On failure one user-facing line goes into
 * err and -EINVAL (corrupt, truncated, foreign) or -errno is returned. */
int snap_file_read(const char *path, uint8_t **payload, size_t *len, char *err,
		   size_t errlen) CV_MUST;

/* The same checks on a buffer that holds a whole file (tests, fuzzing). */
int snap_parse(const uint8_t *file, size_t file_len, const uint8_t **payload, size_t *len,
	       char *err, size_t errlen) CV_MUST;

struct snap_section {
	uint32_t id;
	uint16_t version;
	const uint8_t *data;
	size_t len;
};

/* Walk the sections of a payload: 1 with *s filled, 0 at the end, -EINVAL
 * when a section runs past the payload. */
int snap_next_section(const uint8_t *payload, size_t len, size_t *pos,
		      struct snap_section *s) CV_MUST;

#endif
