/* target.c - live migration, the target side: listen, greet each
 * connection with a fresh nonce, check the handshake against this host
 * (the nonce echoed, the machine, the CPU, and the host resources, which
 * are this target's own: resources.c), build the VM from the stream's
 * CONFIG, let the parser put RAM (and disk data) in place, load the state,
 * start the guest and say "running". A connection that fails before the
 * VM is built is dropped with one line and the next one taken; any later
 * failure: one line, the source told when the connection still works, and
 * nothing left behind. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/cpu_compat.h"
#include "cvisor/kvm.h"
#include "cvisor/sandbox.h"
#include "cvisor/vm.h"
#include "cvisor/x86.h"
#include "migrate_priv.h"

#define IDLE_TIMEOUT_MS 120000 /* the source sends without pause until END */

/* Populating RAM ahead of the data (the HINT): page faults and zeroing
 * move off the receiving thread onto an otherwise idle CPU. */
struct prefault {
	pthread_t th;
	bool running;
	_Atomic bool stop;
	struct iovec *r;
	uint32_t n;
};

struct mrecv {
	const struct migrate_incoming *in;
	struct migrate_target *t;
	int fd;
	struct mig_tls_ctx *tlsc; /* NULL: a plain stream */
	struct mig_tls *tls;	  /* this connection's session */
	struct mig_rx rx;
	struct mig_dst_disks dd;
	uint8_t *state;
	uint32_t state_len;
	struct prefault pf;
	uint8_t nonce[MIG_NONCE_SIZE]; /* this connection's */
	char peer[80];		       /* its address, for the log */
	bool building, built, started;
	uint64_t t_disks;
	char *err;
	size_t errlen;
};

/* 0, or -errno when the source could not be told. */
static int reply_bytes(struct mrecv *m, uint32_t type, const void *body, uint32_t len)
{
	struct state_buf b = { 0 };
	struct iovec iov;
	int r;

	mig_msg_append(&b, type, body, len);
	iov = (struct iovec){ b.data, b.len };
	r = b.err ? b.err : mig_send_iov(m->fd, m->tls, &iov, 1, NULL, NULL);
	if (r)
		cv_debug("migration: cannot answer the source: %s", strerror(-r));
	state_buf_free(&b);
	return r;
}

static int reply(struct mrecv *m, uint32_t type, const char *msg)
{
	return reply_bytes(m, type, msg, msg ? (uint32_t)strnlen(msg, MIG_MAX_ERROR) : 0);
}

/* What this host can hold: page size, vCPUs. */
static int local_caps(struct mig_local *l, char *err, size_t errlen)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), n;

	memset(l, 0, sizeof(*l));
	l->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	if (fd < 0) {
		snprintf(err, errlen, "/dev/kvm: %s", strerror(errno));
		return -errno;
	}
	n = kvm_cap(fd, KVM_CAP_MAX_VCPUS);
	l->max_cpus = (uint32_t)(n ? n : kvm_cap(fd, KVM_CAP_NR_VCPUS));
	if (l->max_cpus > CONFIG_MAX_CPUS)
		l->max_cpus = CONFIG_MAX_CPUS;
	close(fd);
	return 0;
}

/* The CPU the guest was given (the MACHINE section of the HELLO's config:
 * the whole CPUID table, which the state holds too) against the one this
 * host gives a guest of that configuration. The one CPU check a target
 * runs: the state load leaves it out (snapshot_state_load_incoming). */
static int check_cpu(struct mrecv *m, char *why, size_t whylen)
{
	const struct mig_hello *h = &m->rx.hello;
	struct cpu_model guest, host;
	int r;

	if ((r = m->in->ops->cpu_model(h->config, h->config_len, &guest, why, whylen)))
		return r;
	if ((r = cpu_model_host(x86_quirks_wanted(m->t->cfg.quirks), &host)))
		return cv_errf(why, whylen, r, "cannot read this host's CPUID: %s", strerror(-r));
	return mig_cpu_check(&guest, &host, why, whylen);
}

/* --disk specs for the images this side received: DIR/NAME plus the
 * source's options (",readonly", ",serial=..."). */
static int rewrite_disks(struct mrecv *m)
{
	struct devices_config *dc = &m->t->cfg.devices;
	const struct device_type *disk = devices_type("disk");
	unsigned int n = devices_count(dc, disk);

	if (n != m->rx.hello.ndisks)
		return cv_errf(m->err, m->errlen, -EINVAL,
			       "the source sends %u disk images for %u disks", m->rx.hello.ndisks,
			       n);
	for (unsigned int i = 0; i < n; i++) {
		const char *opts = strchr(devices_spec(dc, disk, i), ',');

		/* The format is the one the image arrived in, said outright: a
		 * raw image whose guest wrote a qcow2 header is not probed as
		 * one. A source spec that names a format names this one (a disk
		 * travels in the format it was opened with). */
		if (asprintf(&m->t->disk_specs[i], "%s%s%s%s", m->dd.path[i], opts ? opts : "",
			     opts && strstr(opts, ",format=") ? "" : ",format=",
			     opts && strstr(opts, ",format=")
				     ? ""
				     : mig_dst_disk_format(&m->dd, i)) < 0) {
			m->t->disk_specs[i] = NULL;
			return cv_errf(m->err, m->errlen, -ENOMEM, "out of memory");
		}
		if (devices_set_spec(dc, disk, i, m->t->disk_specs[i]))
			return cv_errf(m->err, m->errlen, -ENOMEM, "out of memory");
	}
	return 0;
}

static int on_hello(struct mrecv *m)
{
	const struct migrate_target_ops *ops = m->in->ops;
	const struct mig_hello *h = &m->rx.hello;
	struct migrate_target *t = m->t;
	struct mig_local l;
	char why[256];
	int r;

	if (memcmp(h->nonce, m->nonce, MIG_NONCE_SIZE)) {
		reply(m, MIG_MSG_ERROR, "the handshake does not echo this connection's nonce");
		return cv_errf(m->err, m->errlen, -EINVAL,
			       "refusing the migration: the handshake does not echo this "
			       "connection's nonce (a recorded stream replayed?)");
	}
	if ((r = local_caps(&l, m->err, m->errlen)))
		return r;
	if (mig_hello_check(h, &l, why, sizeof(why))) {
		reply(m, MIG_MSG_ERROR, why);
		return cv_errf(m->err, m->errlen, -EINVAL, "refusing the migration: %s", why);
	}
	/* The body holds the config cfg's strings will point into: keep it
	 * (hello.config already points into it). */
	t->config = m->rx.body;
	m->rx.body = NULL;
	config_init(&t->cfg);
	if ((r = ops->config_load(h->config, h->config_len, &t->cfg, why, sizeof(why))) ||
	    (r = check_cpu(m, why, sizeof(why)))) {
		reply(m, MIG_MSG_ERROR, why);
		return cv_errf(m->err, m->errlen, r, "refusing the migration: %s", why);
	}
	if (t->cfg.mem_size != h->ram_size || t->cfg.ncpus != h->ncpus) {
		reply(m, MIG_MSG_ERROR, "the configuration disagrees with the handshake");
		return cv_errf(m->err, m->errlen, -EINVAL,
			       "refusing the migration: the configuration disagrees "
			       "with the handshake");
	}
	if ((r = migrate_target_resources(&t->cfg.devices, m->in, h->flags & MIG_F_STORAGE, why,
					  sizeof(why))) ||
	    (r = mig_dst_disks_create(&m->dd, h, m->in->storage_dir, why, sizeof(why)))) {
		reply(m, MIG_MSG_ERROR, why);
		return cv_errf(m->err, m->errlen, r, "refusing the migration: %s", why);
	}
	if (h->ndisks && (r = rewrite_disks(m))) {
		reply(m, MIG_MSG_ERROR, m->err);
		return r;
	}
	/* From here a failure ends the target: the build ran for this source. */
	m->building = true;
	if ((r = ops->build(m->in->ctx, &t->cfg, &t->vm, why, sizeof(why)))) {
		reply(m, MIG_MSG_ERROR, why);
		return cv_errf(m->err, m->errlen, r, "cannot build the VM: %s", why);
	}
	m->built = true;
	if (t->vm->mem.ram_size != h->ram_size) {
		reply(m, MIG_MSG_ERROR, "the target built a VM of another size");
		return cv_errf(m->err, m->errlen, -EINVAL,
			       "the VM built has %llu bytes of RAM, the source %llu",
			       (unsigned long long)t->vm->mem.ram_size,
			       (unsigned long long)h->ram_size);
	}
	mig_rx_set_mem(&m->rx, &t->vm->mem);
	reply(m, MIG_MSG_READY, NULL);
	return 0;
}

static int on_end(struct mrecv *m)
{
	const struct migrate_target_ops *ops = m->in->ops;
	struct vm *vm = m->t->vm;
	char why[256];
	int r;

	uint64_t t0 = cv_now_ns(), t1, t2, t3;

	if ((m->rx.end.flags & MIG_F_VERIFY) && migrate_memsum(&vm->mem) != m->rx.end.memsum) {
		reply(m, MIG_MSG_ERROR, "guest memory checksum mismatch after the transfer");
		return cv_errf(m->err, m->errlen, -EIO,
			       "guest memory checksum mismatch after the transfer: "
			       "not starting the guest");
	}
	t1 = cv_now_ns();
	/* The disks first: loading the state kicks the virtqueues, and a
	 * request the guest queued on the source then runs here, through
	 * a device that must see the image as the stream left it. */
	if ((r = mig_dst_disks_finish(&m->dd, vm, why, sizeof(why)))) {
		reply(m, MIG_MSG_ERROR, "cannot write the disk images");
		return cv_errf(m->err, m->errlen, r, "writing the disk images: %s", why);
	}
	m->t_disks = cv_now_ns();
	if ((r = ops->state_load(vm, m->state, m->state_len, why, sizeof(why)))) {
		reply(m, MIG_MSG_ERROR, why);
		return cv_errf(m->err, m->errlen, r, "cannot load the guest state: %s", why);
	}
	t2 = cv_now_ns();
	/* The vCPUs park before their first KVM_RUN (vcpu_loop checks first)
	 * until the source has been told: a target that cannot tell it never
	 * runs the guest, which the source then resumes. */
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = true;
	pthread_mutex_unlock(&vm->lock);
	if ((r = ops->start(m->in->ctx, vm, why, sizeof(why)))) {
		reply(m, MIG_MSG_ERROR, why);
		return cv_errf(m->err, m->errlen, r, "cannot start the guest: %s", why);
	}
	m->started = true;
	t3 = cv_now_ns();
	if ((r = reply(m, MIG_MSG_RUNNING, NULL)))
		return cv_errf(m->err, m->errlen, r,
			       "cannot tell the source the guest runs here (%s): it runs there",
			       strerror(-r));
	if (!(m->rx.hello.flags & MIG_F_PAUSED))
		vm_resume(vm);
	cv_debug("migration target: verify %.3f ms, disks %.3f ms, state load %.3f ms, start "
		 "%.3f ms",
		 (double)(t1 - t0) / 1e6, (double)(m->t_disks - t1) / 1e6,
		 (double)(t2 - m->t_disks) / 1e6, (double)(t3 - t2) / 1e6);
	return 0;
}

static void *prefault_main(void *arg)
{
	struct prefault *pf = arg;

	pthread_setname_np(pthread_self(), "prefault");
	/* Prefaulting is an optimization: without its filter, none. */
	if (sandbox_enter(SANDBOX_WORKER))
		return NULL;

	for (uint32_t i = 0; i < pf->n; i++) {
		uint8_t *p = pf->r[i].iov_base;

		for (size_t off = 0; off < pf->r[i].iov_len && !pf->stop; off += 2 << 20) {
			size_t n = pf->r[i].iov_len - off < (2 << 20) ? pf->r[i].iov_len - off
								      : 2 << 20;

			/* Faults in missing pages only: data already received
			 * stays as it is. Older kernels: no prefault. */
			if (madvise(p + off, n, MADV_POPULATE_WRITE))
				return NULL;
		}
	}
	return NULL;
}

static void prefault_start(struct mrecv *m)
{
	struct prefault *pf = &m->pf;

	if (pf->running || !m->rx.nhint)
		return;
	pf->r = calloc(m->rx.nhint, sizeof(*pf->r));
	if (!pf->r)
		return;
	for (uint32_t i = 0; i < m->rx.nhint; i++) {
		pf->r[i].iov_base =
			guest_mem_ptr(&m->t->vm->mem, m->rx.hint[i].gpa, m->rx.hint[i].len);
		pf->r[i].iov_len = m->rx.hint[i].len;
	}
	pf->n = m->rx.nhint;
	pf->stop = false;
	pf->running = pthread_create(&pf->th, NULL, prefault_main, pf) == 0;
}

static void prefault_stop(struct mrecv *m)
{
	if (m->pf.running) {
		m->pf.stop = true;
		pthread_join(m->pf.th, NULL);
	}
	m->pf.running = false;
	free(m->pf.r);
	m->pf.r = NULL;
}

static const char *phase(const struct mrecv *m)
{
	if (!m->rx.got_hello)
		return "the handshake";
	if (!m->rx.got_state)
		return "the memory transfer";
	return "the final state";
}

static int run(struct mrecv *m)
{
	int ev, r;

	for (;;) {
		int idle_ms = m->rx.got_hello ? IDLE_TIMEOUT_MS : MIG_HELLO_TIMEOUT_MS;

		ev = mig_recv_event(m->fd, m->tls, &m->rx, idle_ms);
		switch (ev) {
		case MIG_RX_HELLO:
			if ((r = on_hello(m)))
				return r;
			break;
		case MIG_RX_PAGES:
		case MIG_RX_DISK:
			break;
		case MIG_RX_HINT:
			prefault_start(m);
			break;
		case MIG_RX_SYNC: {
			uint8_t b[MIG_SYNC_SIZE];

			/* Round 0 is in: nothing left to populate ahead, and
			 * the thread must not be joined inside the downtime. */
			prefault_stop(m);
			for (unsigned int i = 0; i < MIG_SYNC_SIZE; i++)
				b[i] = (uint8_t)(m->rx.sync_round >> (8 * i));
			reply_bytes(m, MIG_MSG_SYNC_ACK, b, sizeof(b));
			break;
		}
		case MIG_RX_STATE:
			m->state = m->rx.body;
			m->state_len = m->rx.body_len;
			m->rx.body = NULL;
			break;
		case MIG_RX_END:
			prefault_stop(m);
			return on_end(m);
		case -EINVAL:
			reply(m, MIG_MSG_ERROR, m->rx.err);
			return cv_errf(m->err, m->errlen, -EINVAL, "%s", m->rx.err);
		case -ECONNRESET:
			return cv_errf(m->err, m->errlen, -ECONNRESET,
				       "the source closed the connection during %s", phase(m));
		case -ETIMEDOUT:
			return cv_errf(m->err, m->errlen, -ETIMEDOUT,
				       "the source sent nothing for %d s during %s", idle_ms / 1000,
				       phase(m));
		default:
			return cv_errf(m->err, m->errlen, ev < 0 ? ev : -EPROTO,
				       "receiving the migration: %s",
				       ev < 0 ? strerror(-ev) : "unexpected message");
		}
	}
}

/* Wait for a connection until deadline (0: none) or cancel_fd: 0 with
 * m->fd and m->peer, or -errno with one line. */
static int accept_one(struct mrecv *m, int lfd, uint64_t deadline)
{
	struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
			       { .fd = m->in->cancel_fd ? *m->in->cancel_fd : -1,
				 .events = POLLIN } };
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	char host[64] = "?", port[8] = "?";
	int r;

	for (;;) {
		uint64_t now = cv_now_ns();
		int to = !deadline	   ? 60000
			 : now >= deadline ? 0
					   : (int)((deadline - now + 999999) / 1000000);

		r = poll(p, 2, to < 60000 ? to : 60000);
		if ((r < 0 && errno == EINTR) || (!r && (!deadline || cv_now_ns() < deadline)))
			continue;
		break;
	}
	if (r > 0 && p[1].revents)
		return cv_errf(m->err, m->errlen, -ECANCELED, "stopped waiting for a source on %s",
			       m->in->listen);
	if (r < 0)
		return cv_errf(m->err, m->errlen, -errno, "waiting for a source on %s: %s",
			       m->in->listen, strerror(errno));
	if (!r)
		return cv_errf(m->err, m->errlen, -ETIMEDOUT,
			       "no source migrated a guest to %s within %u s (--incoming-timeout)",
			       m->in->listen, m->in->accept_timeout_ms / 1000);
	m->fd = accept4(lfd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
	if (m->fd < 0)
		return cv_errf(m->err, m->errlen, -errno, "accepting on %s: %s", m->in->listen,
			       strerror(errno));
	getnameinfo((struct sockaddr *)&sa, salen, host, sizeof(host), port, sizeof(port),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(m->peer, sizeof(m->peer), "%s%s%s:%s", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", port);
	mig_tune(m->fd);
	return 0;
}
/* One connection: greet it with a fresh nonce, then receive. */
static int receive_one(struct mrecv *m)
{
	int r;

	m->building = m->built = m->started = false;
	memset(&m->dd, 0, sizeof(m->dd));
	mig_rx_init(&m->rx, false);
	m->rx.disk_write = mig_dst_disk_write;
	m->rx.disk_ctx = &m->dd;
	if (m->in->ops->connected)
		m->in->ops->connected(m->in->ctx, m->fd);
	/* TLS first: the NONCE and everything after travel in the session. */
	if (m->tlsc && (r = mig_tls_start(m->tlsc, m->fd, NULL, MIG_HELLO_TIMEOUT_MS, NULL, NULL,
					  &m->tls, m->err, m->errlen)))
		return r;
	m->rx.no_crc = m->tls != NULL;
	if (getrandom(m->nonce, sizeof(m->nonce), 0) != (ssize_t)sizeof(m->nonce))
		return cv_errf(m->err, m->errlen, -errno, "getrandom: %s", strerror(errno));
	if ((r = reply_bytes(m, MIG_MSG_NONCE, m->nonce, sizeof(m->nonce))))
		return cv_errf(m->err, m->errlen, r, "cannot greet the source: %s", strerror(-r));
	return run(m);
}

/* After a connection: its statistics in t; on failure what it made torn
 * down (the VM, disk images, the configuration), and the socket closed. */
static void end_one(struct mrecv *m, int r, uint64_t t0)
{
	struct migrate_target *t = m->t;

	prefault_stop(m);
	t->pages = m->rx.pages;
	t->zero_pages = m->rx.zero_pages;
	t->disk_bytes = m->rx.disk_bytes;
	t->bytes = m->rx.bytes;
	t->total_ns = cv_now_ns() - t0;
	if (r) {
		if (m->built)
			m->in->ops->destroy(m->in->ctx, t->vm);
		t->vm = NULL;
		mig_dst_disks_abort(&m->dd);
		migrate_target_free(t);
	}
	mig_dst_disks_free(&m->dd);
	mig_rx_free(&m->rx);
	free(m->state);
	m->state = NULL;
	if (m->in->ops->connected)
		m->in->ops->connected(m->in->ctx, -1);
	mig_tls_free(m->tls);
	m->tls = NULL;
	close(m->fd);
	m->fd = -1;
}

int migrate_receive(const struct migrate_incoming *in, struct migrate_target *t, char *err,
		    size_t errlen)
{
	struct mrecv m = { .in = in, .t = t, .fd = -1, .err = err, .errlen = errlen };
	struct mig_tls_ctx *own = NULL;
	uint64_t deadline = 0, t0;
	int lfd, r;

	memset(t, 0, sizeof(*t));
	if (!in->ops || !in->ops->config_load || !in->ops->cpu_model || !in->ops->build ||
	    !in->ops->state_load || !in->ops->start || !in->ops->destroy)
		return cv_errf(m.err, m.errlen, -EINVAL,
			       "migration is not wired to the snapshot code");
	/* The context migrate_incoming_check built at start; a caller that
	 * did not check (a test's) gets one here. */
	m.tlsc = in->tlsc;
	if (!m.tlsc && (r = mig_tls_ctx_new(&in->tls, in->listen, true, &own, err, errlen)))
		return r;
	if (own)
		m.tlsc = own;
	if ((lfd = mig_listen(in->listen, err, errlen)) < 0) {
		mig_tls_ctx_free(own);
		return lfd;
	}
	if (in->accept_timeout_ms)
		deadline = cv_now_ns() + (uint64_t)in->accept_timeout_ms * 1000000;
	if (in->ops->listening)
		in->ops->listening(in->ctx, in->listen);
	/* A connection that fails before the build was no source of ours
	 * (garbage, a replay, a refused CONFIG): drop it, take the next. */
	while (!(r = accept_one(&m, lfd, deadline))) {
		bool dropped;

		t0 = cv_now_ns();
		r = receive_one(&m);
		dropped = r && !m.building;
		end_one(&m, r, t0);
		if (!dropped)
			break;
		cv_warn("incoming migration on %s: dropped the connection from %s: %s", in->listen,
			m.peer, err);
	}
	close(lfd);
	mig_tls_ctx_free(own);
	return r;
}

void migrate_target_free(struct migrate_target *t)
{
	config_free(&t->cfg);
	free(t->config);
	t->config = NULL;
	for (unsigned int i = 0; i < MIG_MAX_DISKS; i++) {
		free(t->disk_specs[i]);
		t->disk_specs[i] = NULL;
	}
}
