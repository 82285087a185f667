/* rx.c - the pure receive parser of the live migration stream (both
 * directions), specified at the top of proto.c: it says where the
 * next bytes go (page data straight into guest RAM), checks every length
 * against its bound before anything is allocated or written, and verifies
 * each message's CRC. */
#include "cvisor/migrate_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/crc32.h"
#include "cvisor/ramwalk.h"

enum {
	ST_HDR,	   /* 8 bytes: type, length */
	ST_BODY,   /* a buffered body */
	ST_COUNT,  /* PAGES / DISK: u32 count */
	ST_PREC,   /* a page record header */
	ST_PDATA,  /* page data, straight into guest RAM */
	ST_DREC,   /* a disk record header */
	ST_DDATA,  /* disk record data into the chunk buffer */
	ST_TRAIL,  /* u32 CRC */
	ST_FAILED, /* sticky */
};

/* ---- the receive parser ---- */

void mig_rx_init(struct mig_rx *rx, bool source_side)
{
	memset(rx, 0, sizeof(*rx));
	rx->source_side = source_side;
	rx->state = ST_HDR;
	rx->small_need = MIG_HDR_SIZE;
}

/* Add n bytes at p to the current message's CRC, unless the stream's
 * own authentication makes the CRC redundant. */
static void rx_crc(struct mig_rx *rx, const void *p, size_t n)
{
	if (!rx->no_crc)
		rx->crc = cv_crc32(rx->crc, p, n);
}

void mig_rx_free(struct mig_rx *rx)
{
	free(rx->body);
	free(rx->chunk);
	rx->body = rx->chunk = NULL;
}

void mig_rx_set_mem(struct mig_rx *rx, const struct guest_mem *mem)
{
	rx->mem = mem;
}

static int rx_fail(struct mig_rx *rx, const char *fmt, ...) CV_PRINTF(2, 3);
static int rx_fail(struct mig_rx *rx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rx->err, sizeof(rx->err), fmt, ap);
	va_end(ap);
	rx->state = ST_FAILED;
	return -EINVAL;
}

static void want_small(struct mig_rx *rx, int state, uint32_t n)
{
	rx->state = state;
	rx->small_have = 0;
	rx->small_need = n;
}

/* Bytes of the current PAGES body still to come after the records. */
static uint32_t body_left(const struct mig_rx *rx)
{
	return rx->len - rx->pos;
}

/* The states that read into rx->small: headers, counts, records, CRCs. */
static bool is_small(int state)
{
	return state == ST_HDR || state == ST_COUNT || state == ST_PREC || state == ST_DREC ||
	       state == ST_TRAIL;
}

unsigned int mig_rx_want(struct mig_rx *rx, struct iovec *iov, unsigned int max)
{
	unsigned int n = 0;

	if (!max)
		return 0;
	if (is_small(rx->state)) {
		iov[0].iov_base = rx->small + rx->small_have;
		iov[0].iov_len = rx->small_need - rx->small_have;
		return 1;
	}
	switch (rx->state) {
	case ST_BODY:
		iov[0].iov_base = rx->body + rx->body_have;
		iov[0].iov_len = rx->body_len - rx->body_have;
		return 1;
	case ST_DDATA:
		iov[0].iov_base = rx->chunk + rx->chunk_have;
		iov[0].iov_len = rx->drec[rx->rec].len - rx->chunk_have;
		return 1;
	case ST_PDATA: {
		/* Consecutive data records, the first maybe begun. */
		uint32_t done = rx->chunk_have;

		for (uint32_t i = rx->rec; i < rx->count && n < max; i++) {
			if (rx->zero[i])
				continue;
			iov[n].iov_base = guest_mem_ptr(rx->mem, rx->gpa[i], MIG_PAGE_SIZE);
			iov[n].iov_base = (uint8_t *)iov[n].iov_base + done;
			iov[n].iov_len = MIG_PAGE_SIZE - done;
			done = 0;
			n++;
		}
		return n;
	}
	default:
		return 0;
	}
}

/* A reply's header (the source's side): known type, bounded length. */
static int reply_header(struct mig_rx *rx, uint32_t type, uint32_t len)
{
	if (type == MIG_MSG_READY || type == MIG_MSG_RUNNING) {
		if (len)
			return rx_fail(rx, "the target's reply is corrupt (length)");
	} else if (type == MIG_MSG_NONCE) {
		if (len != MIG_NONCE_SIZE)
			return rx_fail(rx, "the target's reply is corrupt (length)");
	} else if (type == MIG_MSG_SYNC_ACK) {
		if (len != MIG_SYNC_SIZE)
			return rx_fail(rx, "the target's reply is corrupt (length)");
	} else if (type == MIG_MSG_ERROR) {
		if (!len || len > MIG_MAX_ERROR)
			return rx_fail(rx, "the target's reply is corrupt (length)");
	} else {
		return rx_fail(rx, "the target sent an unknown reply (type %u)", type);
	}
	return 0;
}

/* A PAGES or DISK header: before the state, bounded, and with somewhere
 * for the data to go. */
static int batch_header(struct mig_rx *rx, uint32_t type, uint32_t len)
{
	if (rx->got_state)
		return rx_fail(rx, "migration stream is corrupt (data after the state)");
	if (type == MIG_MSG_PAGES && (len < 4 || len > MIG_MAX_PAGES_BODY))
		return rx_fail(rx, "migration stream is corrupt (page batch of %u bytes)", len);
	if (type == MIG_MSG_DISK && (len < 4 || len > MIG_MAX_DISK_BODY))
		return rx_fail(rx, "migration stream is corrupt (disk batch of %u bytes)", len);
	if (type == MIG_MSG_PAGES && (!rx->mem || rx->mem->ram_size != rx->hello.ram_size))
		return rx_fail(rx, "migration stream: pages before the VM is ready");
	if (type == MIG_MSG_DISK && !(rx->hello.flags & MIG_F_STORAGE))
		return rx_fail(rx, "migration stream is corrupt (disk data without "
				   "storage migration)");
	return 0;
}

/* Any other header of the stream (the target's side): its place in the
 * sequence, and the bound of its buffered body. */
static int stream_header(struct mig_rx *rx, uint32_t type, uint32_t len)
{
	switch (type) {
	case MIG_MSG_HELLO:
		if (rx->got_hello)
			return rx_fail(rx, "migration stream is corrupt (a second handshake)");
		if (len < 8 || len > MIG_MAX_HELLO)
			return rx_fail(rx, "migration handshake is corrupt (length %u)", len);
		return 0;
	case MIG_MSG_STATE:
		if (rx->got_state)
			return rx_fail(rx, "migration stream is corrupt (a second state)");
		if (!len || len > MIG_MAX_STATE)
			return rx_fail(rx, "migration stream is corrupt (state of %u bytes)", len);
		return 0;
	case MIG_MSG_SYNC:
		if (rx->got_state || len != MIG_SYNC_SIZE)
			return rx_fail(rx, "migration stream is corrupt (round marker)");
		return 0;
	case MIG_MSG_HINT:
		if (rx->got_state || len < 4 || (len - 4) / 16 > MIG_MAX_HINT_RANGES ||
		    (len - 4) % 16 || !rx->mem)
			return rx_fail(rx, "migration stream is corrupt (memory hint)");
		return 0;
	case MIG_MSG_END:
		if (!rx->got_state)
			return rx_fail(rx, "migration stream ended before the guest state");
		if (len != MIG_END_SIZE)
			return rx_fail(rx, "migration stream is corrupt (end of %u bytes)", len);
		return 0;
	default:
		return rx_fail(rx, "migration stream is corrupt (unknown message type %u)", type);
	}
}

static int header_done(struct mig_rx *rx)
{
	uint32_t type = (uint32_t)cv_get_le(rx->small, 4),
		 len = (uint32_t)cv_get_le(rx->small + 4, 4);
	bool batch = !rx->source_side && (type == MIG_MSG_PAGES || type == MIG_MSG_DISK);
	int r;

	free(rx->body);
	rx->body = NULL;
	rx->body_len = rx->body_have = rx->pos = 0;
	rx->type = type;
	rx->len = len;
	rx->crc = 0;
	rx_crc(rx, rx->small, MIG_HDR_SIZE);
	if (!rx->source_side && !rx->got_hello && type != MIG_MSG_HELLO)
		/* The first 8 bytes of anything else: say what it is not. */
		return rx_fail(rx, "not a cvisor migration stream (no handshake)");
	r = rx->source_side ? reply_header(rx, type, len)
	    : batch	    ? batch_header(rx, type, len)
			    : stream_header(rx, type, len);
	if (r)
		return r;
	if (batch) {
		want_small(rx, ST_COUNT, 4);
		return MIG_RX_MORE;
	}
	if (!len) {
		want_small(rx, ST_TRAIL, MIG_TRAILER_SIZE);
		return MIG_RX_MORE;
	}
	/* Bounded above per type; only now allocated. */
	rx->body = malloc(len);
	if (!rx->body)
		return rx_fail(rx, "out of memory for a %u-byte message", len);
	rx->body_len = len;
	rx->state = ST_BODY;
	return MIG_RX_MORE;
}

static int count_done(struct mig_rx *rx)
{
	uint32_t count = (uint32_t)cv_get_le(rx->small, 4);
	uint32_t max = rx->type == MIG_MSG_PAGES ? MIG_BATCH_PAGES : MIG_BATCH_DISK;
	uint32_t rec = rx->type == MIG_MSG_PAGES ? MIG_PAGE_REC_SIZE : MIG_DISK_REC_SIZE;

	rx->pos = 4;
	if (!count || count > max || (uint64_t)count * rec > body_left(rx))
		return rx_fail(rx, "migration stream is corrupt (batch of %u records)", count);
	rx->count = count;
	rx->rec = 0;
	/* Every record header in one read. */
	want_small(rx, rx->type == MIG_MSG_PAGES ? ST_PREC : ST_DREC, count * rec);
	return MIG_RX_MORE;
}

/* All record headers are in: check the data length, then zero pages. */
static int pages_headers_done(struct mig_rx *rx)
{
	uint64_t data = 0;

	for (uint32_t i = 0; i < rx->count; i++)
		data += rx->zero[i] ? 0 : MIG_PAGE_SIZE;
	if (data != body_left(rx))
		return rx_fail(rx, "migration stream is corrupt (page batch length)");
	for (uint32_t i = 0; i < rx->count; i++) {
		void *p;

		if (!rx->zero[i])
			continue;
		/* A fresh target page reads as zero already: keep it unbacked. */
		p = guest_mem_ptr(rx->mem, rx->gpa[i], MIG_PAGE_SIZE);
		if (!ramwalk_page_is_zero(p))
			memset(p, 0, MIG_PAGE_SIZE);
		rx->zero_pages++;
	}
	rx->rec = 0;
	while (rx->rec < rx->count && rx->zero[rx->rec])
		rx->rec++;
	rx->chunk_have = 0;
	if (rx->rec == rx->count)
		want_small(rx, ST_TRAIL, MIG_TRAILER_SIZE);
	else
		rx->state = ST_PDATA;
	return MIG_RX_MORE;
}

static int prec_done(struct mig_rx *rx)
{
	for (uint32_t i = 0; i < rx->count; i++) {
		const uint8_t *p = rx->small + i * MIG_PAGE_REC_SIZE;
		uint64_t gpa = cv_get_le(p, 8);
		uint32_t flags = (uint32_t)cv_get_le(p + 8, 4),
			 rsvd = (uint32_t)cv_get_le(p + 12, 4);

		if (gpa % MIG_PAGE_SIZE || (flags & ~MIG_REC_ZERO) || rsvd ||
		    !guest_mem_ptr(rx->mem, gpa, MIG_PAGE_SIZE))
			return rx_fail(rx, "migration stream is corrupt (page %#llx)",
				       (unsigned long long)gpa);
		rx->gpa[i] = gpa;
		rx->zero[i] = (flags & MIG_REC_ZERO) != 0;
	}
	rx->pos += rx->count * MIG_PAGE_REC_SIZE;
	return pages_headers_done(rx);
}

static int disk_next(struct mig_rx *rx);

static int drec_done(struct mig_rx *rx)
{
	uint64_t data = 0;

	for (uint32_t i = 0; i < rx->count; i++) {
		const uint8_t *p = rx->small + i * MIG_DISK_REC_SIZE;
		uint32_t disk = (uint32_t)cv_get_le(p, 4), flags = (uint32_t)cv_get_le(p + 4, 4);
		uint64_t off = cv_get_le(p + 8, 8), end;
		uint32_t len = (uint32_t)cv_get_le(p + 16, 4),
			 rsvd = (uint32_t)cv_get_le(p + 20, 4);

		if (disk >= rx->hello.ndisks || (flags & ~MIG_REC_ZERO) || rsvd || !len ||
		    len > MIG_DISK_CHUNK || len % 512 || off % 512 ||
		    __builtin_add_overflow(off, len, &end) || end > rx->hello.disks[disk].size)
			return rx_fail(rx, "migration stream is corrupt (disk %u range %llu+%u)",
				       disk, (unsigned long long)off, len);
		rx->drec[i].disk = disk;
		rx->drec[i].flags = flags;
		rx->drec[i].off = off;
		rx->drec[i].len = len;
		data += (flags & MIG_REC_ZERO) ? 0 : len;
	}
	rx->pos += rx->count * MIG_DISK_REC_SIZE;
	/* The data must fill the rest of the body exactly. */
	if (data != body_left(rx) || data > MIG_DISK_BATCH_DATA)
		return rx_fail(rx, "migration stream is corrupt (disk batch length)");
	rx->rec = 0;
	return disk_next(rx);
}

/* Next disk record: zero ranges go to the sink at once, data is read into
 * the chunk buffer first. */
static int disk_next(struct mig_rx *rx)
{
	int r;

	while (rx->rec < rx->count && (rx->drec[rx->rec].flags & MIG_REC_ZERO)) {
		r = rx->disk_write ? rx->disk_write(rx->disk_ctx, rx->drec[rx->rec].disk,
						    rx->drec[rx->rec].off, NULL,
						    rx->drec[rx->rec].len, true)
				   : 0;
		if (r)
			return rx_fail(rx, "writing disk %u: %s", rx->drec[rx->rec].disk,
				       strerror(-r));
		rx->rec++;
	}
	if (rx->rec == rx->count) {
		want_small(rx, ST_TRAIL, MIG_TRAILER_SIZE);
		return MIG_RX_MORE;
	}
	if (!rx->chunk && !(rx->chunk = malloc(MIG_DISK_CHUNK)))
		return rx_fail(rx, "out of memory for disk data");
	rx->chunk_have = 0;
	rx->state = ST_DDATA;
	return MIG_RX_MORE;
}

/* Ranges in place of the body: {u64 gpa, u64 bytes}, page aligned, RAM. */
static int hint_done(struct mig_rx *rx)
{
	uint32_t n = (uint32_t)cv_get_le(rx->body, 4);

	if (n != (rx->body_len - 4) / 16)
		return rx_fail(rx, "migration stream is corrupt (memory hint count)");
	rx->hint = (struct mig_range *)(void *)rx->body; /* reused, 16 <= 16 per entry */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t gpa = cv_get_le(rx->body + 4 + 16 * i, 8),
			 len = cv_get_le(rx->body + 12 + 16 * i, 8);

		if (gpa % MIG_PAGE_SIZE || len % MIG_PAGE_SIZE || !len ||
		    !guest_mem_ptr(rx->mem, gpa, len))
			return rx_fail(rx, "migration stream is corrupt (memory hint range)");
		/* Decoded in place: entry i goes to [16i, 16i + 16), which
		 * holds only bytes of entries <= i, already read. */
		rx->hint[i].gpa = gpa;
		rx->hint[i].len = len;
	}
	rx->nhint = n;
	return MIG_RX_HINT;
}

static int trailer_done(struct mig_rx *rx)
{
	uint32_t want = (uint32_t)cv_get_le(rx->small, 4);
	char err[256];

	if (!rx->no_crc && want != rx->crc)
		return rx_fail(rx, "migration stream is corrupt (checksum mismatch in a %s)",
			       rx->type == MIG_MSG_PAGES   ? "page batch"
			       : rx->type == MIG_MSG_DISK  ? "disk batch"
			       : rx->type == MIG_MSG_HELLO ? "handshake"
							   : "message");
	want_small(rx, ST_HDR, MIG_HDR_SIZE);
	switch (rx->type) {
	case MIG_MSG_HELLO:
		if (mig_hello_parse(rx->body, rx->body_len, &rx->hello, err, sizeof(err)))
			return rx_fail(rx, "%s", err);
		rx->got_hello = true;
		return MIG_RX_HELLO;
	case MIG_MSG_PAGES:
		return MIG_RX_PAGES;
	case MIG_MSG_DISK:
		return MIG_RX_DISK;
	case MIG_MSG_STATE:
		rx->got_state = true;
		return MIG_RX_STATE;
	case MIG_MSG_END:
		rx->end.flags = (uint32_t)cv_get_le(rx->body, 4);
		rx->end.memsum = cv_get_le(rx->body + 4, 8);
		rx->end.pages = cv_get_le(rx->body + 12, 8);
		return MIG_RX_END;
	case MIG_MSG_HINT:
		return hint_done(rx);
	case MIG_MSG_SYNC:
	case MIG_MSG_SYNC_ACK:
		rx->sync_round = (uint32_t)cv_get_le(rx->body, 4);
		return rx->type == MIG_MSG_SYNC ? MIG_RX_SYNC : MIG_RX_SYNC_ACK;
	case MIG_MSG_NONCE:
		memcpy(rx->nonce, rx->body, MIG_NONCE_SIZE);
		return MIG_RX_NONCE;
	case MIG_MSG_READY:
		return MIG_RX_READY;
	case MIG_MSG_RUNNING:
		return MIG_RX_RUNNING;
	default: /* MIG_MSG_ERROR: keep it one printable line */
		for (uint32_t i = 0; i < rx->body_len && i < sizeof(rx->err) - 1; i++)
			rx->err[i] =
				rx->body[i] >= 0x20 && rx->body[i] < 0x7f ? (char)rx->body[i] : '?';
		rx->err[rx->body_len < sizeof(rx->err) - 1 ? rx->body_len : sizeof(rx->err) - 1] =
			0;
		return MIG_RX_ERROR_MSG;
	}
}

/* Up to n bytes into rx->small; when it holds what the state needs, the
 * state's handler runs. */
static size_t step_small(struct mig_rx *rx, size_t n, int *ev)
{
	size_t k = rx->small_need - rx->small_have;

	k = k < n ? k : n;
	if (rx->state != ST_HDR && rx->state != ST_TRAIL)
		rx_crc(rx, rx->small + rx->small_have, k);
	rx->small_have += (uint32_t)k;
	if (rx->small_have < rx->small_need)
		return k;
	switch (rx->state) {
	case ST_HDR:
		*ev = header_done(rx);
		break;
	case ST_COUNT:
		*ev = count_done(rx);
		break;
	case ST_PREC:
		*ev = prec_done(rx);
		break;
	case ST_DREC:
		*ev = drec_done(rx);
		break;
	default:
		*ev = trailer_done(rx);
		break;
	}
	return k;
}

/* Up to n bytes of page data, already in guest RAM (mig_rx_want). */
static size_t step_pdata(struct mig_rx *rx, size_t n)
{
	uint8_t *p = guest_mem_ptr(rx->mem, rx->gpa[rx->rec], MIG_PAGE_SIZE);
	size_t k = MIG_PAGE_SIZE - rx->chunk_have;

	k = k < n ? k : n;
	rx_crc(rx, p + rx->chunk_have, k);
	rx->chunk_have += (uint32_t)k;
	rx->pos += (uint32_t)k;
	if (rx->chunk_have < MIG_PAGE_SIZE)
		return k;
	rx->pages++;
	rx->chunk_have = 0;
	rx->rec++;
	while (rx->rec < rx->count && rx->zero[rx->rec])
		rx->rec++;
	if (rx->rec == rx->count)
		want_small(rx, ST_TRAIL, MIG_TRAILER_SIZE);
	return k;
}

/* Up to n bytes of a disk record's data; a whole record goes to the sink. */
static size_t step_ddata(struct mig_rx *rx, size_t n, int *ev)
{
	uint32_t len = rx->drec[rx->rec].len;
	size_t k = len - rx->chunk_have;
	int r;

	k = k < n ? k : n;
	rx_crc(rx, rx->chunk + rx->chunk_have, k);
	rx->chunk_have += (uint32_t)k;
	rx->pos += (uint32_t)k;
	if (rx->chunk_have < len)
		return k;
	r = rx->disk_write ? rx->disk_write(rx->disk_ctx, rx->drec[rx->rec].disk,
					    rx->drec[rx->rec].off, rx->chunk, len, false)
			   : 0;
	if (r) {
		*ev = rx_fail(rx, "writing disk %u: %s", rx->drec[rx->rec].disk, strerror(-r));
		return k;
	}
	rx->disk_bytes += len;
	rx->rec++;
	*ev = disk_next(rx);
	return k;
}

/* Consume up to n bytes of the current state; returns the bytes taken
 * and sets *ev (event, MORE, or -EINVAL). */
static size_t rx_step(struct mig_rx *rx, size_t n, int *ev)
{
	size_t k;

	*ev = MIG_RX_MORE;
	if (is_small(rx->state))
		return step_small(rx, n, ev);
	switch (rx->state) {
	case ST_BODY:
		k = rx->body_len - rx->body_have;
		k = k < n ? k : n;
		rx_crc(rx, rx->body + rx->body_have, k);
		rx->body_have += (uint32_t)k;
		if (rx->body_have == rx->body_len)
			want_small(rx, ST_TRAIL, MIG_TRAILER_SIZE);
		return k;
	case ST_PDATA:
		return step_pdata(rx, n);
	case ST_DDATA:
		return step_ddata(rx, n, ev);
	default:
		*ev = rx_fail(rx, "%s", rx->err[0] ? rx->err : "migration stream parser failed");
		return n;
	}
}

int mig_rx_advance(struct mig_rx *rx, size_t n)
{
	int ev = MIG_RX_MORE;

	if (rx->state == ST_FAILED)
		return -EINVAL;
	rx->bytes += n;
	while (n) {
		size_t k = rx_step(rx, n, &ev);

		n -= k;
		if (ev < 0)
			return ev;
		if (ev != MIG_RX_MORE) {
			/* Events end a message, and mig_rx_want never asks
			 * past one: nothing can be left over. */
			if (n)
				return rx_fail(rx, "migration parser: bytes past a message");
			return ev;
		}
		if (!k)
			return rx_fail(rx, "migration parser: no progress");
	}
	/* A zero-length step (header of an empty body) may complete one. */
	return ev;
}

int mig_rx_feed(struct mig_rx *rx, const uint8_t *buf, size_t len, size_t *used)
{
	struct iovec iov[MIG_BATCH_PAGES];

	*used = 0;
	while (*used < len) {
		unsigned int n = mig_rx_want(rx, iov, MIG_BATCH_PAGES);
		size_t got = 0;
		int ev;

		if (!n)
			return rx_fail(rx, "%s", rx->err[0] ? rx->err : "migration parser failed");
		for (unsigned int i = 0; i < n && *used + got < len; i++) {
			size_t k = iov[i].iov_len < len - *used - got ? iov[i].iov_len
								      : len - *used - got;

			memcpy(iov[i].iov_base, buf + *used + got, k);
			got += k;
		}
		*used += got;
		ev = mig_rx_advance(rx, got);
		if (ev)
			return ev;
	}
	return MIG_RX_MORE;
}
