/* source.c - live migration, the source side: a running guest sent over
 * the protocol specified at the top of proto.c.
 *
 * PRE-COPY. KVM dirty logging (src/mem/dirty.c) starts before anything is
 * read. Round 0 sends every page that may hold data (ramwalk.h; pages
 * never touched are zero on both ends) and the disk images; each later
 * round sends what was dirtied meanwhile. After each round migrate_decide
 * compares the expected downtime (dirty bytes left / measured bandwidth +
 * a fixed cost) with --downtime-ms: below it, the guest is paused, its
 * devices quiesced, its state saved, the last dirty pages and blocks and
 * the state sent, and the source waits for RUNNING; the downtime reported
 * is from the pause to RUNNING, measured here.
 *
 * The decision itself is policy.c's; the batches, the throttle and the
 * pump are tx.c's, the connection sock.c's, RAM's bitmaps ram.c's and the
 * disks' disk.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/dirty.h"
#include "cvisor/ramwalk.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/vm.h"
#include "migrate_priv.h"

#define REPLY_TIMEOUT_MS 60000 /* READY (the target builds a VM) and RUNNING */
#define TICK_NS (200ULL * 1000000)
#define PUMP_SLICE_MS 10      /* the event loop's turn while waiting for the target */
#define STOP_OVERHEAD_US 1000 /* state, load, start, reply: measured ~0.5 ms */
#define BW_MIN_SAMPLE (4ULL << 20)

struct msend {
	struct vm *vm;
	const struct migrate_opts *o;
	migrate_progress_fn progress;
	void *ctx;
	int fd;
	struct mig_tx tx;
	struct dirty dirty;
	struct mig_disks disks;
	uint64_t *todo;
	uint64_t npages, nwords;
	struct migrate_progress p;
	uint64_t t0, last_tick;
	uint64_t round_start, round_bytes; /* of the round being sent */
	uint64_t round_end;		   /* the target's SYNC_ACK for it */
	bool was_paused, paused, quiesced, tracking;
	uint8_t nonce[MIG_NONCE_SIZE]; /* the target's, for HELLO */
	char *err;
	size_t errlen;
};

static void report(struct msend *m, enum migrate_event ev)
{
	m->p.event = ev;
	m->p.elapsed_ns = cv_now_ns() - m->t0;
	m->p.bytes = m->tx.bytes;
	m->p.pages = m->tx.pages;
	m->p.zero_pages = m->tx.zero_pages;
	m->p.disk_bytes = m->tx.disk_bytes;
	m->last_tick = cv_now_ns();
	if (m->progress)
		m->progress(m->ctx, &m->p);
}

/* After every batch sent. */
static void tick(void *ctx)
{
	struct msend *m = ctx;

	if (cv_now_ns() - m->last_tick >= TICK_NS)
		report(m, MIGRATE_EV_TICK);
}

/* After a send failed: the target may have said why before closing. */
static int link_error(struct msend *m)
{
	struct mig_rx rx;
	int r;

	mig_rx_init(&rx, true);
	r = mig_recv_event(m->fd, NULL, &rx, 200);
	if (r == MIG_RX_ERROR_MSG)
		r = cv_errf(m->err, m->errlen, -EPROTO, "the target failed: %s", rx.err);
	else
		r = cv_errf(m->err, m->errlen, m->tx.err ? m->tx.err : -EPIPE,
			    "the connection to %s broke: %s", m->o->dest,
			    strerror(-(m->tx.err ? m->tx.err : EPIPE)));
	mig_rx_free(&rx);
	return r;
}

/* The caller's pump (its event loop); a stop it lets through (cvisor kill,
 * a signal, the guest powering off) ends the sending at once. */
static void pump(void *ctx)
{
	struct msend *m = ctx;

	m->o->pump(m->o->pump_ctx);
	if (atomic_load(&m->vm->stop) && !m->tx.err)
		m->tx.err = -ECANCELED;
}

static int check(struct msend *m)
{
	if (atomic_load(&m->vm->stop))
		return cv_errf(m->err, m->errlen, -ECANCELED,
			       "the guest stopped during the migration");
	return m->tx.err ? link_error(m) : 0;
}

/* Read one reply within timeout_ms; while the guest runs, the event loop
 * is pumped every PUMP_SLICE_MS meanwhile (its devices go on). */
static int wait_reply(struct msend *m, struct mig_rx *rx, int timeout_ms)
{
	uint64_t deadline = cv_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	int r;

	if (!m->tx.pump)
		return mig_recv_event(m->fd, NULL, rx, timeout_ms);
	for (;;) {
		r = mig_recv_event(m->fd, NULL, rx, PUMP_SLICE_MS);
		if (r != -ETIMEDOUT || cv_now_ns() >= deadline)
			return r;
		mig_tx_pump(&m->tx, true);
		if (m->tx.err)
			return -ECANCELED;
	}
}

/* Wait for one reply; NONCE (kept in m->nonce), READY, SYNC_ACK or
 * RUNNING is what we want. */
static int await(struct msend *m, int want, const char *what)
{
	int timeout_ms = want == MIG_RX_NONCE ? MIG_NONCE_TIMEOUT_MS : REPLY_TIMEOUT_MS;
	struct mig_rx rx;
	int r;

	mig_tx_flush(&m->tx);
	if (m->tx.err)
		return link_error(m);
	mig_rx_init(&rx, true);
	r = wait_reply(m, &rx, timeout_ms);
	if (r == want && want == MIG_RX_NONCE)
		memcpy(m->nonce, rx.nonce, MIG_NONCE_SIZE);
	if (r == want)
		r = 0;
	else if (r == -ECANCELED)
		r = check(m);
	else if (r == MIG_RX_ERROR_MSG)
		r = cv_errf(m->err, m->errlen, -EPROTO, "the target refused: %s", rx.err);
	else if (r == -ETIMEDOUT)
		r = cv_errf(m->err, m->errlen, r, "no answer from %s for %d s while waiting for %s",
			    m->o->dest, timeout_ms / 1000, what);
	else if (r == -EINVAL)
		r = cv_errf(m->err, m->errlen, -EPROTO, "%s", rx.err);
	else if (r < 0)
		r = cv_errf(m->err, m->errlen, r,
			    "the connection to %s broke while waiting for %s: %s", m->o->dest, what,
			    strerror(-r));
	else
		r = cv_errf(m->err, m->errlen, -EPROTO,
			    "the target answered out of turn while waiting for %s", what);
	mig_rx_free(&rx);
	return r;
}

static void pause_guest(struct msend *m)
{
	if (!m->was_paused && !m->paused)
		vm_pause(m->vm);
	m->paused = true;
}

static int quiesce(struct msend *m)
{
	char why[200];
	int r;

	if (m->o->ops->quiesce) {
		if ((r = m->o->ops->quiesce(m->vm, why, sizeof(why))))
			return cv_errf(m->err, m->errlen, r, "%s", why);
	} else if ((r = mig_disks_quiesce(m->vm))) {
		mig_disks_resume(m->vm);
		return cv_errf(m->err, m->errlen, r, "cannot quiesce the disks: %s", strerror(-r));
	}
	m->quiesced = true;
	return 0;
}

static void unpause_guest(struct msend *m)
{
	if (m->quiesced && m->o->ops->resume)
		m->o->ops->resume(m->vm);
	else if (m->quiesced)
		mig_disks_resume(m->vm);
	m->quiesced = false;
	if (m->paused && !m->was_paused)
		vm_resume(m->vm);
	m->paused = false;
}

/* The CONFIG section for the handshake. */
static int config_payload(struct msend *m, struct state_buf *out)
{
	const struct migrate_source_ops *ops = m->o->ops;
	struct state_buf all = { 0 };
	struct snap_section s;
	size_t pos = 0;
	int r;

	if (ops->config_save) {
		r = ops->config_save(m->vm, out);
		return r ? r : out->err;
	}
	/* From a whole state save, during a short pause. */
	pause_guest(m);
	if ((r = quiesce(m)) == 0) {
		r = ops->state_save(m->vm, &all);
		r = r ? r : all.err;
	}
	unpause_guest(m);
	/* snapshot_config_load wants CONFIG with the MACHINE and KSTATE
	 * sections beside it; all three are small (no vCPU, no device). */
	while (!r && snap_next_section(all.data, all.len, &pos, &s) == 1) {
		if (s.id == SNAP_SEC_CONFIG || s.id == SNAP_SEC_MACHINE ||
		    s.id == SNAP_SEC_KSTATE) {
			size_t at = snap_section_begin(out, s.id, s.version);

			state_put_bytes(out, s.data, s.len);
			snap_section_end(out, at);
		}
	}
	state_buf_free(&all);
	return r ? r : out->len ? out->err : -ENOENT;
}

static int handshake(struct msend *m)
{
	struct state_buf cfg = { 0 }, body = { 0 };
	/* 2.0 unless a qcow2 disk travels (proto.c): older targets take it. */
	struct mig_hello h = { .major = MIG_MAJOR, .minor = 0 };
	int r;

	/* The target speaks first: its nonce, which HELLO echoes. */
	if ((r = await(m, MIG_RX_NONCE,
		       m->o->encrypted
			       ? "the target's nonce"
			       : "the target's nonce (a target given --tls-psk or --tls-creds "
				 "waits for TLS; a cvisor older than protocol 2.0 sends none)")))
		return r;
	memcpy(h.nonce, m->nonce, MIG_NONCE_SIZE);
	if ((r = config_payload(m, &cfg))) {
		state_buf_free(&cfg);
		return cv_errf(m->err, m->errlen, r, "cannot save the guest's configuration: %s",
			       strerror(-r));
	}
	if (cfg.len > MIG_MAX_CONFIG) {
		state_buf_free(&cfg);
		return cv_errf(m->err, m->errlen, -E2BIG,
			       "the guest's configuration is too large to migrate");
	}
	h.page_size = MIG_PAGE_SIZE;
	mig_ram_layout(m->vm->mem.ram_size, &h);
	h.ncpus = m->vm->ncpus;
	cpu_model_from_cpuid(m->vm->cpuid, &h.cpu);
	h.flags = (m->o->with_storage ? MIG_F_STORAGE : 0) | (m->was_paused ? MIG_F_PAUSED : 0) |
		  (m->o->verify ? MIG_F_VERIFY : 0);
	h.ndisks = m->o->with_storage ? m->disks.n : 0;
	for (unsigned int i = 0; i < h.ndisks; i++) {
		h.disks[i].size = m->disks.d[i].size;
		h.disks[i].cluster_bits = (uint8_t)m->disks.d[i].cluster_bits;
		h.disks[i].format = h.disks[i].cluster_bits ? MIG_DISK_QCOW2 : MIG_DISK_RAW;
		if (h.disks[i].format != MIG_DISK_RAW)
			h.minor = MIG_MINOR;
		memcpy(h.disks[i].name, m->disks.d[i].name, sizeof(h.disks[i].name));
	}
	h.config = cfg.data;
	h.config_len = (uint32_t)cfg.len;
	mig_hello_encode(&h, &body);
	state_buf_free(&cfg);
	if (body.err) {
		state_buf_free(&body);
		return cv_errf(m->err, m->errlen, body.err, "out of memory");
	}
	mig_tx_msg(&m->tx, MIG_MSG_HELLO, body.data, (uint32_t)body.len);
	state_buf_free(&body);
	r = await(m, MIG_RX_READY, "the target to build the VM");
	if (r && h.minor && strstr(m->err, "version 2.")) {
		char why[256];

		snprintf(why, sizeof(why), "%s", m->err);
		cv_errf(m->err, m->errlen, r,
			"%s (a qcow2 disk needs a target that takes stream 2.%u: update cvisor "
			"there, or convert the disk to raw)",
			why, MIG_MINOR);
	}
	return r;
}

static int check_cb(void *ctx)
{
	return check(ctx);
}

/* Send every page set in m->todo, clearing it. */
static int send_pages(struct msend *m)
{
	int r = mig_send_bitmap(&m->tx, &m->vm->mem, m->todo, check_cb, m);

	return r ? r : check(m);
}

/* End a round with SYNC and wait for the target to get there: what it
 * has not processed yet is not sent (socket buffers hold megabytes), and
 * the round's end-to-end bandwidth is measured on what arrived. */
static int sync_round(struct msend *m)
{
	uint8_t b[MIG_SYNC_SIZE];
	int r;

	for (unsigned int i = 0; i < MIG_SYNC_SIZE; i++)
		b[i] = (uint8_t)(m->p.round >> (8 * i));
	mig_tx_msg(&m->tx, MIG_MSG_SYNC, b, sizeof(b));
	if ((r = await(m, MIG_RX_SYNC_ACK, "the target to catch up")))
		return r;
	m->round_end = cv_now_ns();
	return 0;
}

static int round_zero(struct msend *m)
{
	int r;

	if ((r = dirty_start(&m->dirty)))
		return cv_errf(m->err, m->errlen, r, "cannot start dirty page logging: %s",
			       strerror(-r));
	m->tracking = true;
	m->round_start = cv_now_ns();
	m->round_bytes = m->tx.bytes;
	if (m->o->with_storage) {
		if ((r = mig_disks_track(&m->disks, m->err, m->errlen)))
			return r;
		m->p.phase = MIGRATE_DISKS;
		if ((r = mig_disks_send_all(&m->disks, &m->tx, m->err, m->errlen)))
			return m->tx.err ? check(m) : r;
	}
	m->p.phase = MIGRATE_PRECOPY;
	/* Never touched pages read as zero on the fresh target too. */
	ramwalk_bitmap(&m->vm->mem, m->todo);
	mig_send_hint(&m->tx, &m->vm->mem, m->todo);
	if ((r = send_pages(m)))
		return r;
	return sync_round(m);
}

/* Pre-copy rounds until the rest fits the downtime target. */
static int iterate(struct msend *m)
{
	const struct migrate_opts *o = m->o;
	uint64_t last_sync = m->round_start, bw = 0;
	uint64_t prev_remaining = UINT64_MAX;
	unsigned int stalled = 0;
	int r;

	for (;;) {
		struct migrate_converge c = { 0 };
		uint64_t now, n, remaining;
		enum migrate_decision d;

		/* Bandwidth of the round just sent: keep the last good sample
		 * when a round was too small to measure. */
		now = cv_now_ns();
		if (m->tx.bytes - m->round_bytes >= BW_MIN_SAMPLE || !bw)
			bw = m->round_end > m->round_start
				     ? (uint64_t)((double)(m->tx.bytes - m->round_bytes) * 1e9 /
						  (double)(m->round_end - m->round_start))
				     : 0;
		if ((r = dirty_sync(&m->dirty, m->todo, &n)))
			return cv_errf(m->err, m->errlen, r, "reading the dirty page log: %s",
				       strerror(-r));
		remaining = n * MIG_PAGE_SIZE + mig_disks_collect(&m->disks);
		m->p.rate = bw;
		m->p.dirty_rate =
			now > last_sync
				? (uint64_t)((double)remaining * 1e9 / (double)(now - last_sync))
				: 0;
		last_sync = now;
		m->p.remaining = remaining;
		if (prev_remaining != UINT64_MAX)
			stalled = migrate_stall_count(stalled, prev_remaining, remaining);
		prev_remaining = remaining;
		c = (struct migrate_converge){
			.remaining = remaining,
			.bandwidth = bw,
			.dirty_rate = m->p.dirty_rate,
			.downtime_ms = o->downtime_ms,
			.overhead_us = STOP_OVERHEAD_US,
			.round = m->p.round,
			.max_rounds = o->max_rounds,
			.stalled = stalled,
			.force = o->force,
		};
		d = migrate_decide(&c, &m->p.expected_downtime_us);
		report(m, MIGRATE_EV_ROUND);
		if (d == MIGRATE_STOP) {
			m->p.forced = m->p.expected_downtime_us > o->downtime_ms * 1000;
			return 0;
		}
		if (d == MIGRATE_GIVE_UP)
			return cv_errf(
				m->err, m->errlen, -ETIME,
				"cannot meet the downtime target of %llu ms: after %u rounds "
				"%llu KiB are still dirty (the guest dirties %llu MiB/s, the "
				"link carries %llu MiB/s; expected downtime %llu ms)",
				(unsigned long long)o->downtime_ms, m->p.round,
				(unsigned long long)(remaining >> 10),
				(unsigned long long)(m->p.dirty_rate >> 20),
				(unsigned long long)(bw >> 20),
				(unsigned long long)(m->p.expected_downtime_us / 1000));
		m->p.round++;
		m->round_start = cv_now_ns();
		m->round_bytes = m->tx.bytes;
		if ((r = mig_disks_send_dirty(&m->disks, &m->tx, m->err, m->errlen)))
			return m->tx.err ? check(m) : r;
		if ((r = send_pages(m)) || (r = sync_round(m)))
			return r;
	}
}

/* Paused: the rest, the state, END; then wait for RUNNING. */
static int finish(struct msend *m, uint64_t *t_pause)
{
	struct state_buf st = { 0 };
	uint8_t end[MIG_END_SIZE] = { 0 };
	uint64_t memsum = 0, t_quiesced, t_saved, t_sent;
	int r;

	*t_pause = cv_now_ns();
	/* Devices are quiesced from here on: the event loop must not run
	 * them (a packet received now would change RAM after the state). */
	m->tx.pump = NULL;
	pause_guest(m);
	m->p.phase = MIGRATE_STOPPED;
	if (atomic_load(&m->vm->stop))
		return check(m);
	if ((r = quiesce(m)))
		return r;
	t_quiesced = cv_now_ns();
	/* State first: anything KVM writes into guest RAM while saving it is
	 * in the dirty log read next. */
	r = m->o->ops->state_save(m->vm, &st);
	if ((r = r ? r : st.err)) {
		state_buf_free(&st);
		return cv_errf(m->err, m->errlen, r, "cannot save the guest state: %s",
			       strerror(-r));
	}
	if (st.len > MIG_MAX_STATE) {
		state_buf_free(&st);
		return cv_errf(m->err, m->errlen, -E2BIG,
			       "the guest state is too large to migrate");
	}
	t_saved = cv_now_ns();
	if ((r = dirty_sync(&m->dirty, m->todo, NULL))) {
		state_buf_free(&st);
		return cv_errf(m->err, m->errlen, r, "reading the dirty page log: %s",
			       strerror(-r));
	}
	mig_disks_collect(&m->disks);
	m->p.round++;
	r = mig_disks_send_dirty(&m->disks, &m->tx, m->err, m->errlen);
	if (r) {
		state_buf_free(&st);
		return m->tx.err ? check(m) : r;
	}
	if ((r = send_pages(m))) {
		state_buf_free(&st);
		return r;
	}
	mig_tx_msg(&m->tx, MIG_MSG_STATE, st.data, (uint32_t)st.len);
	state_buf_free(&st);
	if (m->o->verify)
		memsum = migrate_memsum(&m->vm->mem);
	for (unsigned int i = 0; i < 4; i++)
		end[i] = (uint8_t)((m->o->verify ? MIG_F_VERIFY : 0) >> (8 * i));
	for (unsigned int i = 0; i < 8; i++) {
		end[4 + i] = (uint8_t)(memsum >> (8 * i));
		end[12 + i] = (uint8_t)(m->tx.pages >> (8 * i));
	}
	mig_tx_msg(&m->tx, MIG_MSG_END, end, sizeof(end));
	t_sent = cv_now_ns();
	r = await(m, MIG_RX_RUNNING, "the guest to start there");
	cv_debug("migration downtime: pause+quiesce %.3f ms, state %.3f ms, last pages and "
		 "state sent %.3f ms, target to running %.3f ms",
		 (double)(t_quiesced - *t_pause) / 1e6, (double)(t_saved - t_quiesced) / 1e6,
		 (double)(t_sent - t_saved) / 1e6, (double)(cv_now_ns() - t_sent) / 1e6);
	return r;
}

static void cleanup(struct msend *m, bool ok)
{
	if (m->tracking) {
		dirty_stop(&m->dirty);
		mig_disks_stop(&m->disks);
	}
	dirty_free(&m->dirty);
	if (!ok)
		unpause_guest(m);
	mig_tx_free(&m->tx);
	free(m->todo);
	if (m->fd >= 0 && m->fd != m->o->fd)
		close(m->fd);
}

/* The connection: the one the client passed (it checked the address and
 * made any TLS session), or one made here for a plain stream. */
static int link_open(struct msend *m)
{
	struct migrate_tls plain = { .insecure = m->o->tls.insecure };
	char why[512];
	int r;

	if (m->o->fd >= 0) {
		m->fd = m->tx.fd = m->o->fd;
		return 0;
	}
	/* A request without a connection: this monitor checks the address
	 * as the client would (any client of the socket may ask). */
	if ((r = migrate_tls_check(&plain, m->o->dest, false, why, sizeof(why))))
		return cv_errf(m->err, m->errlen, r, "%s", why);
	if ((m->fd = mig_connect(m->o->dest, &m->tx, m->err, m->errlen)) < 0)
		return m->tx.err ? check(m) : m->fd; /* a stop during the connect */
	m->tx.fd = m->fd;
	return 0;
}

int migrate_send(struct vm *vm, const struct migrate_opts *o, migrate_progress_fn progress,
		 void *ctx, char *err, size_t errlen)
{
	struct msend m = { .vm = vm,
			   .o = o,
			   .progress = progress,
			   .ctx = ctx,
			   .fd = -1,
			   .err = err,
			   .errlen = errlen };
	uint64_t t_pause = 0, t_run;
	int r;

	/* A reset the guest asked for is done first (see snapshot/save.c). */
	vm_reset_run(vm);
	if ((r = devices_check_portable(&vm->devcfg, err, errlen)))
		return r;
	m.t0 = m.last_tick = cv_now_ns();
	m.was_paused = vm_paused(vm);
	m.npages = vm->mem.ram_size / MIG_PAGE_SIZE;
	m.nwords = (m.npages + 63) / 64;
	m.p.ram_bytes = vm->mem.ram_size;
	m.p.phase = MIGRATE_SETUP;
	m.p.dest = o->dest;
	m.p.downtime_target_ms = o->downtime_ms;
	m.dirty.vm_fd = -1;
	if (!o->ops || !o->ops->state_save || !o->dest)
		return cv_errf(m.err, m.errlen, -EINVAL,
			       "migration is not wired to the snapshot code");
	if (o->with_storage && (r = mig_disks_find(vm, &m.disks, err, errlen)))
		return r;
	if (!(m.todo = calloc(m.nwords + 1, 8)) ||
	    (r = dirty_init(&m.dirty, vm->vm_fd, &vm->mem, &vm->dirty_rings)) ||
	    (r = mig_tx_init(&m.tx, -1, o->with_storage, o->max_bandwidth))) {
		r = cv_errf(m.err, m.errlen, -ENOMEM, "out of memory");
		goto out;
	}
	if (o->pump) {
		m.tx.pump = pump;
		m.tx.pump_ctx = &m;
	}
	m.tx.after_send = tick;
	m.tx.after_ctx = &m;
	m.tx.no_crc = o->encrypted;
	if ((r = link_open(&m)) || (r = handshake(&m)) || (r = round_zero(&m)) ||
	    (r = iterate(&m)) || (r = finish(&m, &t_pause)))
		goto out;
	t_run = cv_now_ns();
	m.p.phase = MIGRATE_DONE;
	m.p.remaining = 0;
	m.p.downtime_us = (t_run - t_pause) / 1000;
	m.p.throughput =
		t_run > m.t0 ? (uint64_t)((double)m.tx.bytes * 1e9 / (double)(t_run - m.t0)) : 0;
	cleanup(&m, true);
	report(&m, MIGRATE_EV_DONE);
	return 0;
out:
	cleanup(&m, false);
	return r;
}
