/* tx.c - the sending side's batches: pages and disk data gathered into
 * PAGES and DISK messages (page data copied out of guest RAM and
 * checksummed in one pass), small messages, the --max-bandwidth throttle,
 * and the pump that lets the source's event loop run while it sends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cvisor/ramwalk.h"

#include "migrate_priv.h"

int mig_tx_init(struct mig_tx *tx, int fd, bool disks, uint64_t max_bw)
{
	memset(tx, 0, sizeof(*tx));
	tx->fd = fd;
	tx->max_bw = max_bw;
	tx->bw_start_ns = cv_now_ns();
	tx->pdata = malloc((size_t)MIG_BATCH_PAGES * MIG_PAGE_SIZE);
	if (disks)
		tx->ddata = malloc(MIG_DISK_BATCH_DATA);
	if (!tx->pdata || (disks && !tx->ddata)) {
		mig_tx_free(tx);
		return -ENOMEM;
	}
	return 0;
}

void mig_tx_free(struct mig_tx *tx)
{
	free(tx->pdata);
	free(tx->ddata);
	tx->pdata = tx->ddata = NULL;
}

void mig_tx_pump(struct mig_tx *tx, bool now)
{
	uint64_t t;

	if (!tx->pump)
		return;
	t = cv_now_ns();
	if (!now && t - tx->last_pump_ns < 20 * 1000000ULL)
		return;
	tx->last_pump_ns = t;
	tx->pump(tx->pump_ctx);
}

/* The socket is full: let the pump run; a cancel it records (tx->err)
 * ends the wait. */
static int tx_wait(void *ctx)
{
	struct mig_tx *tx = ctx;

	mig_tx_pump(tx, true);
	return tx->err;
}

/* --max-bandwidth: sleep until the bytes sent fit the rate. */
static void throttle(struct mig_tx *tx, uint64_t n)
{
	uint64_t due, now;

	if (!tx->max_bw)
		return;
	tx->bw_bytes += n;
	due = tx->bw_start_ns + (uint64_t)((double)tx->bw_bytes * 1e9 / (double)tx->max_bw);
	now = cv_now_ns();
	/* In slices, with the pump between them: a throttled batch may take
	 * seconds, and the guest's devices go on meanwhile. */
	while (due > now && !tx->err) {
		uint64_t d = due - now < 10000000 ? due - now : 10000000;
		struct timespec ts = { 0, (long)d };

		nanosleep(&ts, NULL);
		mig_tx_pump(tx, true);
		now = cv_now_ns();
	}
}

static void tx_send(struct mig_tx *tx, struct iovec *iov, int n)
{
	uint64_t total = 0;
	int r;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (tx->err)
		return;
	if ((r = mig_send_iov(tx->fd, NULL, iov, n, tx->pump ? tx_wait : NULL, tx))) {
		tx->err = r;
		return;
	}
	tx->bytes += total;
	throttle(tx, total);
	mig_tx_pump(tx, false);
	if (tx->after_send)
		tx->after_send(tx->after_ctx);
}

/* A batch (PAGES, DISK) from its parts: head gets the message header and
 * the record count; the data's CRC comes in data_crc, and the message's is
 * combined from it without reading the data again. */
static void send_batch(struct mig_tx *tx, uint8_t *head, uint32_t type, uint32_t count,
		       const uint8_t *recs, uint32_t recs_len, uint8_t *data, size_t ndata,
		       uint32_t data_crc)
{
	uint8_t crc[4];
	uint32_t c;
	struct iovec iov[4];

	mig_put_header(head, type, (uint32_t)(4 + recs_len + ndata));
	cv_put_le(head + MIG_HDR_SIZE, count, 4);
	c = 0; /* under TLS the AEAD tag stands for it (proto.c "TLS") */
	if (!tx->no_crc) {
		c = cv_crc32(0, head, MIG_HDR_SIZE + 4);
		c = cv_crc32(c, recs, recs_len);
		c = cv_crc32_combine(c, data_crc, ndata);
	}
	cv_put_le(crc, c, 4);
	iov[0] = (struct iovec){ head, MIG_HDR_SIZE + 4 };
	iov[1] = (struct iovec){ (void *)recs, recs_len };
	iov[2] = (struct iovec){ data, ndata };
	iov[3] = (struct iovec){ crc, 4 };
	tx_send(tx, iov, 4);
}

static void flush_pages(struct mig_tx *tx)
{
	if (!tx->pcount)
		return;
	/* The data's CRC was taken as it was copied out of guest RAM. */
	send_batch(tx, tx->phead, MIG_MSG_PAGES, tx->pcount, tx->precs,
		   tx->pcount * MIG_PAGE_REC_SIZE, tx->pdata, (size_t)tx->pndata * MIG_PAGE_SIZE,
		   tx->pdata_crc);
	tx->pcount = tx->pndata = 0;
	tx->pdata_crc = 0;
}

void mig_tx_page(struct mig_tx *tx, uint64_t gpa, const uint8_t *hva)
{
	uint8_t *rec = tx->precs + tx->pcount * MIG_PAGE_REC_SIZE;
	bool zero = ramwalk_page_is_zero(hva);

	cv_put_le(rec, gpa, 8);
	cv_put_le(rec + 8, zero ? MIG_REC_ZERO : 0, 4);
	cv_put_le(rec + 12, 0, 4);
	if (!zero && tx->no_crc)
		memcpy(tx->pdata + (size_t)tx->pndata++ * MIG_PAGE_SIZE, hva, MIG_PAGE_SIZE);
	else if (!zero)
		tx->pdata_crc = cv_crc32_copy(tx->pdata_crc,
					      tx->pdata + (size_t)tx->pndata++ * MIG_PAGE_SIZE, hva,
					      MIG_PAGE_SIZE);
	tx->pages++;
	tx->zero_pages += zero;
	if (++tx->pcount == MIG_BATCH_PAGES)
		flush_pages(tx);
}

static void flush_disk(struct mig_tx *tx)
{
	if (!tx->dcount)
		return;
	send_batch(tx, tx->dhead, MIG_MSG_DISK, tx->dcount, tx->drecs,
		   tx->dcount * MIG_DISK_REC_SIZE, tx->ddata, tx->dndata,
		   tx->no_crc ? 0 : cv_crc32(0, tx->ddata, tx->dndata));
	tx->dcount = tx->dndata = 0;
}

uint8_t *mig_tx_disk_buf(struct mig_tx *tx, uint32_t len)
{
	if (tx->dcount == MIG_BATCH_DISK || tx->dndata + len > MIG_DISK_BATCH_DATA)
		flush_disk(tx);
	return tx->ddata + tx->dndata;
}

void mig_tx_disk(struct mig_tx *tx, uint32_t disk, uint64_t off, const uint8_t *data, uint32_t len,
		 bool zero)
{
	uint8_t *dst = mig_tx_disk_buf(tx, zero ? 0 : len);
	uint8_t *rec = tx->drecs + tx->dcount * MIG_DISK_REC_SIZE;

	cv_put_le(rec, disk, 4);
	cv_put_le(rec + 4, zero ? MIG_REC_ZERO : 0, 4);
	cv_put_le(rec + 8, off, 8);
	cv_put_le(rec + 16, len, 4);
	cv_put_le(rec + 20, 0, 4);
	if (!zero) {
		if (data != dst)
			memmove(dst, data, len);
		tx->dndata += len;
		tx->disk_bytes += len;
	}
	tx->dcount++;
}

void mig_tx_flush(struct mig_tx *tx)
{
	flush_pages(tx);
	if (tx->ddata)
		flush_disk(tx);
}

void mig_tx_msg(struct mig_tx *tx, uint32_t type, const void *body, uint32_t len)
{
	uint8_t h[MIG_HDR_SIZE], crc[4];
	struct iovec iov[3];

	mig_tx_flush(tx);
	mig_put_header(h, type, len);
	cv_put_le(crc, tx->no_crc ? 0 : cv_crc32(cv_crc32(0, h, sizeof(h)), body, len), 4);
	iov[0] = (struct iovec){ h, sizeof(h) };
	iov[1] = (struct iovec){ (void *)body, len };
	iov[2] = (struct iovec){ crc, 4 };
	tx_send(tx, iov, 3);
}
