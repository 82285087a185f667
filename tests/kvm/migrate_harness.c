/* migrate_harness.c - the migration engine end to end without the CLI: a
 * source VM and a target VM in one process, the target on its own thread
 * behind a TCP proxy on loopback that can cut or corrupt the stream.
 *
 *   migrate_harness CASE [GUESTDIR]     (GUESTDIR default build/tests/kvm)
 *
 * Cases (prints "PASS CASE ..." or "FAIL CASE: why"; exit 0 / 1):
 *   basic       counter guest, running, with --verify: the count goes on
 *               on the target from where it was, without a restart
 *   paused      a paused guest: RAM checksum before == after, target paused
 *   restored    a guest restored from a snapshot (RAM mapped from its memory
 *               file, pages not present yet): all of it still travels
 *   cut-hello, cut-round0, cut-later, cut-state
 *               the link dies in that phase: the source guest runs on,
 *               the target reports one line and leaves no VM
 *   refuse      the target cannot build the VM: the source runs on
 *   corrupt     a flipped bit in a page batch: refused by its CRC
 *   verify-mismatch
 *               a page batch rewritten with a valid CRC (one data page sent
 *               to an address 128 MiB higher, which the guest never
 *               writes): only --verify's RAM checksum can see it, and the
 *               target must refuse with the checksum mismatch
 *   dirty-force, dirty-giveup
 *               dirtier guest over a 16 MiB/s link: stops anyway (and
 *               says so) / gives up with the source running
 *   dirty-burst dirtier rewriting 32 MiB (twice what a default dirty ring
 *               holds) at full speed, 300 ms between syncs, 1 s downtime
 *               target: converges without being forced, RAM equal; on the
 *               ring path (rings smaller than 8192 entries) the vCPU
 *               thread handled KVM_EXIT_DIRTY_RING_FULL on the way
 *   storage     blkcount guest, --with-storage: the target's image equals
 *               the source's when the target starts
 *   storage-qcow2
 *               the same on a qcow2 disk whose backing file is raw (a
 *               zero cluster over backing data, a pattern): the target's
 *               standalone qcow2 is, for qemu-img compare, identical to
 *               the source's chain when the target starts
 *   ring-overflow
 *               dirty-burst on the ring path of a host whose KVM writes
 *               past the end of a full ring (PVM, see src/mem/dirty.c;
 *               CVISOR_DIRTY=ring:256 makes it happen at once): the
 *               overflow is caught and the migration fails saying so,
 *               instead of completing with pages lost
 *   dirty-mode  prints "ring" or "bitmap": the path a VM gets here
 *
 * The dirty tracking path follows CVISOR_DIRTY (src/mem/dirty.c). With
 * CVISOR_DIRTY=ring... or bitmap set, every case also checks that the
 * source and the target got that path, and on the ring path that pages
 * of a running guest really came out of the rings. */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cvisor/config.h"
#include "cvisor/crc32.h"
#include "cvisor/migrate.h"
#include "cvisor/snapshot.h"
#include "cvisor/vm.h"

#define COUNT_GPA 0x5000

static const char *guest_dir = "build/tests/kvm";
static const char *tcase;
static char workdir[64] = "/tmp/cvisor-mig-XXXXXX";

/* ---- the proxy: source -> [proxy] -> target ---- */
static struct {
	int lfd, port_in, port_out;
	_Atomic bool cut_now;
	uint64_t cut_at;      /* source->target bytes; 0 = never */
	uint32_t cut_on_type; /* cut when a message of this type starts */
	uint64_t flip_at;     /* flip a bit of this source->target byte */
	bool move_page;	      /* verify-mismatch: rewrite one PAGES batch */
	_Atomic uint64_t forwarded;
} px;

static int listen_any(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&a, sizeof(a)) || listen(fd, 1) || getsockname(fd, (void *)&a, &n))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int free_port(void)
{
	int port, fd = listen_any(&port);

	close(fd);
	return port;
}

static int read_all(int fd, void *p, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (uint8_t *)p + got, n - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Forward one whole message from s to t; the first PAGES batch with a data
 * page gets that page's gpa moved up by 128 MiB and its CRC made valid
 * again, as a bug in the source's RAM walk would send it. */
static int forward_msg(int s, int t)
{
	static uint8_t body[(4 << 20) + 8];
	uint8_t hdr[8];
	uint32_t type, len;

	if (read_all(s, hdr, 8))
		return -1;
	type = cv_le32(hdr);
	len = cv_le32(hdr + 4);
	if (len + 4 > sizeof(body) || read_all(s, body, len + 4))
		return -1;
	if (px.move_page && type == 2 && len >= 4) {
		uint32_t n = cv_le32(body);

		for (uint32_t i = 0; i < n && 4 + 16 * (i + 1) <= len; i++) {
			uint8_t *rec = body + 4 + 16 * i;

			if (cv_le32(rec + 8) & 1)
				continue; /* a zero page: no data to move */
			cv_put_le64(rec, cv_le64(rec) + (128 << 20));
			cv_put_le32(body + len, cv_crc32(cv_crc32(0, hdr, 8), body, len));
			px.move_page = false;
			break;
		}
	}
	if (write(t, hdr, 8) != 8 || write(t, body, len + 4) != (ssize_t)(len + 4))
		return -1;
	px.forwarded += 8 + len + 4;
	return 0;
}

static void *proxy(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static uint8_t buf[1 << 16];
	uint8_t hdr[8];
	uint64_t msg_left = 0, hdr_have = 0;
	int s, t = -1;

	(void)arg;
	s = accept(px.lfd, NULL, NULL);
	a.sin_port = htons((uint16_t)px.port_out);
	for (int i = 0; i < 200 && t < 0; i++) {
		t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(t, (void *)&a, sizeof(a))) {
			close(t);
			t = -1;
			usleep(10000);
		}
	}
	/* No Nagle here either: the end of a migration is small messages. */
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	while (s >= 0 && t >= 0 && !px.cut_now) {
		struct pollfd p[2] = { { s, POLLIN, 0 }, { t, POLLIN, 0 } };

		if (poll(p, 2, 20) < 0)
			break;
		if (p[0].revents && px.move_page) {
			if (forward_msg(s, t))
				break;
		} else if (p[0].revents) {
			ssize_t n = read(s, buf, sizeof(buf));

			if (n <= 0)
				break;
			/* Follow the framing to find where messages start. */
			for (ssize_t i = 0; i < n; i++) {
				uint64_t at = px.forwarded + (uint64_t)i;

				if (px.flip_at && at == px.flip_at)
					buf[i] ^= 0x10;
				if (px.cut_at && at == px.cut_at)
					px.cut_now = true;
				if (msg_left) {
					msg_left--;
					continue;
				}
				hdr[hdr_have++] = buf[i];
				if (hdr_have == 8) {
					uint32_t type = hdr[0] | hdr[1] << 8;
					uint64_t len = hdr[4] | hdr[5] << 8 |
						       (uint32_t)hdr[6] << 16 |
						       (uint64_t)hdr[7] << 24;

					if (px.cut_on_type && type == px.cut_on_type)
						px.cut_now = true;
					msg_left = len + 4;
					hdr_have = 0;
				}
			}
			if (px.cut_now)
				break;
			if (write(t, buf, (size_t)n) != n)
				break;
			px.forwarded += (uint64_t)n;
		}
		if (p[1].revents) {
			ssize_t n = read(t, buf, sizeof(buf));

			if (n <= 0 || write(s, buf, (size_t)n) != n)
				break;
		}
	}
	/* A cut: both ends see the link die (RST, as a killed peer). */
	if (px.cut_now) {
		struct linger l = { 1, 0 };

		setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		setsockopt(t, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(s);
	close(t);
	return NULL;
}

/* ---- the dirty tracking path ---- */

/* 'r' when CVISOR_DIRTY asks for the ring, 'b' for the bitmap, 0 auto. */
static char dirty_want(void)
{
	const char *e = getenv("CVISOR_DIRTY");

	return !e ? 0 : !strncmp(e, "ring", 4) ? 'r' : !strcmp(e, "bitmap") ? 'b' : 0;
}

/* The VM got the path CVISOR_DIRTY asked for. */
static int dirty_path_ok(const struct vm *vm)
{
	char w = dirty_want();

	return !(w == 'r' && !vm->dirty_rings.entries) && !(w == 'b' && vm->dirty_rings.entries);
}

/* ---- VMs ---- */
struct guest {
	struct vm *vm;
	struct vm_config cfg;
	int log;
};

static uint64_t count_of(struct vm *vm)
{
	uint64_t v = 0;

	if (guest_mem_read(&vm->mem, COUNT_GPA, &v, 8))
		return 0;
	return v;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Serve the VM's event loop (devices) for ms. */
static void serve(struct vm *vm, unsigned int ms)
{
	uint64_t end = cv_now_ns() + (uint64_t)ms * 1000000;

	while (cv_now_ns() < end)
		if (evloop_once(&vm->loop, 5))
			break;
}

/* Serve vm until its counter passes above, for at most 30 s: a slow host
 * (a sanitizer build beside other work) takes longer, never fails for it. */
static uint64_t serve_until_above(struct vm *vm, uint64_t above)
{
	for (int i = 0; i < 300 && count_of(vm) <= above; i++)
		serve(vm, 100);
	return count_of(vm);
}

static void pump(void *ctx)
{
	if (evloop_once(&((struct vm *)ctx)->loop, 0))
		cv_debug("evloop failed");
}

static int open_log(const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s.log", workdir, name);
	return open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

static int start_source(struct guest *g, const char *elf, uint64_t mem, const char *cmdline,
			const char *disk)
{
	struct cv_error e = { 0 };
	char kernel[512];

	snprintf(kernel, sizeof(kernel), "%s/%s.elf", guest_dir, elf);
	config_init(&g->cfg);
	g->cfg.mem_size = mem;
	g->cfg.ncpus = 1;
	snprintf(g->cfg.cmdline, sizeof(g->cfg.cmdline), "%s", cmdline);
	if (config_set_string(&g->cfg.kernel, kernel) ||
	    (disk && devices_add(&g->cfg.devices, devices_type("disk"), "--disk", disk, &e)))
		return -1;
	g->vm = calloc(1, sizeof(*g->vm));
	if (vm_create(g->vm, &g->cfg, &e)) {
		fprintf(stderr, "vm_create: %s\n", e.msg);
		return -1;
	}
	g->log = open_log("source");
	g->vm->out_fd = g->log;
	return vm_start(g->vm);
}

static void end_vm(struct vm *vm);

/* Save g's VM to a snapshot, end it, and restore it into g: its RAM is
 * then the snapshot's memory file mapped copy-on-write, mostly not yet
 * present in this process (what round 0 must still send). */
static int restore_source(struct guest *g)
{
	static struct vm_config cfg;
	char path[128], err[256];
	uint8_t *payload;
	uint64_t written;
	size_t len;
	struct cv_error e = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/snap", workdir);
	vm_pause(g->vm);
	if (snapshot_save(g->vm, path, &written, err, sizeof(err))) {
		fprintf(stderr, "snapshot_save: %s\n", err);
		return -1;
	}
	end_vm(g->vm);
	config_init(&cfg);
	if (snapshot_open(path, &cfg, &payload, &len, &fd, err, sizeof(err))) {
		fprintf(stderr, "snapshot_open: %s\n", err);
		return -1;
	}
	g->vm = calloc(1, sizeof(*g->vm));
	if (vm_create_restore(g->vm, &cfg, fd, &e)) {
		fprintf(stderr, "restore: %s\n", e.msg);
		return -1;
	}
	if (snapshot_state_load(g->vm, payload, len, err, sizeof(err))) {
		fprintf(stderr, "restore: %s\n", err);
		return -1;
	}
	close(fd);
	free(payload);
	g->vm->out_fd = g->log;
	return vm_start(g->vm);
}

/* Stop, join, destroy and free: the migration code's own teardown. */
static void end_vm(struct vm *vm)
{
	migrate_default_target_ops.destroy(NULL, vm);
}

/* ---- the target thread ---- */
static struct {
	pthread_t th;
	struct migrate_incoming in;
	struct migrate_target t;
	struct migrate_target_ops ops;
	char listen[32];
	char err[512];
	int rc;
	_Atomic bool listening, done;
	bool refuse;
	const char *src_disk; /* storage: compared at start */
	bool src_qcow2;	      /* ... by qemu-img compare */
	int disk_cmp;	      /* 0 equal, 1 differ, -1 not compared */
	struct vm *src_vm;    /* RAM compared at start */
	int ram_cmp;
	int cancel_fd; /* a target whose connection failed its handshake waits on */
	double cpu;
} tg;

static int tg_build(void *ctx, struct vm_config *cfg, struct vm **vm, char *err, size_t errlen)
{
	int r;

	if (tg.refuse) {
		snprintf(err, errlen, "this target refuses (test)");
		return -EPERM;
	}
	if ((r = migrate_default_target_ops.build(ctx, cfg, vm, err, errlen)))
		return r;
	(*vm)->out_fd = open_log("target");
	return 0;
}

static int files_equal(const char *a, const char *b)
{
	static uint8_t x[1 << 16], y[1 << 16];
	FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
	int r = f && g ? 0 : -1;

	while (!r) {
		size_t n = fread(x, 1, sizeof(x), f), k = fread(y, 1, sizeof(y), g);

		if (n != k || memcmp(x, y, n))
			r = 1;
		if (!n || r)
			break;
	}
	if (f)
		fclose(f);
	if (g)
		fclose(g);
	return r;
}

/* Just before the state loads (loading kicks the virtqueues: the target's
 * devices may then write RAM and disk): the source is paused waiting for
 * "running", so RAM and disk must be equal, byte for byte (a stronger
 * check than the checksum). */
static int tg_state_load(struct vm *vm, const uint8_t *payload, size_t len, char *err,
			 size_t errlen)
{
	if (tg.src_disk) {
		/* The spec: the path, then the options (",format=raw"). */
		char path[4096];

		snprintf(path, sizeof(path), "%s",
			 devices_spec(&vm->cfg->devices, devices_type("disk"), 0));
		path[strcspn(path, ",")] = '\0';
		if (tg.src_qcow2) {
			char cmd[8400];
			int st;

			snprintf(cmd, sizeof(cmd), "qemu-img compare -q '%s' '%s'", tg.src_disk,
				 path);
			st = system(cmd);
			tg.disk_cmp = WIFEXITED(st) && WEXITSTATUS(st) <= 1 ? WEXITSTATUS(st) : -1;
		} else {
			tg.disk_cmp = files_equal(tg.src_disk, path);
		}
	}
	if (tg.src_vm) {
		const struct guest_mem *a = &tg.src_vm->mem, *b = &vm->mem;

		tg.ram_cmp = a->ram_size != b->ram_size || memcmp(a->base, b->base, a->ram_size);
		for (uint64_t off = 0; tg.ram_cmp && off < a->ram_size; off += 4096)
			if (memcmp(a->base + off, b->base + off, 4096)) {
				fprintf(stderr, "first RAM difference in the page at %#llx\n",
					(unsigned long long)off);
				break;
			}
	}
	return migrate_default_target_ops.state_load(vm, payload, len, err, errlen);
}

static void tg_listening(void *ctx, const char *addr)
{
	(void)ctx;
	(void)addr;
	tg.listening = true;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (getenv("HARNESS_PIN"))
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *target_main(void *arg)
{
	(void)arg;
	pin(1);
	tg.rc = migrate_receive(&tg.in, &tg.t, tg.err, sizeof(tg.err));
	{
		struct timespec ts;

		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
		tg.cpu = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	}
	tg.done = true;
	return NULL;
}

static void start_target(int port, const char *storage_dir)
{
	tg.ops = migrate_default_target_ops;
	tg.ops.build = tg_build;
	tg.ops.state_load = tg_state_load;
	tg.ops.listening = tg_listening;
	tg.disk_cmp = -1;
	tg.cancel_fd = eventfd(0, EFD_CLOEXEC);
	snprintf(tg.listen, sizeof(tg.listen), "127.0.0.1:%d", port);
	tg.in = (struct migrate_incoming){ .listen = tg.listen,
					   .storage_dir = storage_dir,
					   .accept_timeout_ms = 30000,
					   .ops = &tg.ops,
					   .cancel_fd = &tg.cancel_fd };
	pthread_create(&tg.th, NULL, target_main, NULL);
	while (!tg.listening && !tg.done)
		sleep_ms(1);
}

/* ---- cases ---- */
static int fail(const char *fmt, ...) CV_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: ", tcase);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return 1;
}

static struct migrate_progress last;
static bool cut_after_round0;
static unsigned int round_sleep_ms; /* a slow migration thread: syncs far apart */

static void on_progress(void *ctx, const struct migrate_progress *p)
{
	char line[512];

	(void)ctx;
	last = *p;
	if (p->event == MIGRATE_EV_ROUND && p->round >= 2 && cut_after_round0)
		px.cut_now = true;
	if (p->event == MIGRATE_EV_ROUND && round_sleep_ms)
		sleep_ms(round_sleep_ms);
	if (p->event != MIGRATE_EV_TICK && getenv("HARNESS_VERBOSE") &&
	    !migrate_progress_json(p, line, sizeof(line)))
		fprintf(stderr, "%s\n", line);
}

/* The source's dirty tracking path and what its rings saw. */
static const char *dirty_desc(struct vm *vm)
{
	static char b[128];
	const struct dirty_rings *r = &vm->dirty_rings;

	if (!r->entries)
		return "bitmap";
	snprintf(b, sizeof(b), "ring of %u: %llu entries harvested, %llu ring-full exits",
		 r->entries, (unsigned long long)atomic_load(&r->harvested),
		 (unsigned long long)atomic_load(&r->full_exits));
	return b;
}

/* ring-overflow, on a host whose KVM overflows dirty rings (PVM): the
 * dirty-burst migration on the ring path must fail, saying so, rather
 * than complete with pages lost; the source runs on, or has stopped
 * saying its vCPU cannot run again. */
static int ring_overflow_seen(struct guest *s, int r, const char *err)
{
	struct dirty_rings *d = &s->vm->dirty_rings;
	int stop = atomic_load(&s->vm->stop);

	/* vm_request_stop writes stop_msg after it sets stop: join the vCPUs
	 * (the case ends here) before reading what one of them wrote. */
	vm_join(s->vm);
	if (!d->entries)
		return fail("needs the ring path (CVISOR_DIRTY=ring)");
	if (!r)
		return fail("the migration completed (RAM %s; %s): this host's KVM did not "
			    "overflow the ring, so the bitmap default here may be reconsidered",
			    tg.ram_cmp ? "DIFFERS: pages were lost" : "equal", dirty_desc(s->vm));
	/* Caught by a sync, or first by the vCPU thread (then the guest
	 * stopped, and the migration with it). */
	if (!d->broken ||
	    (!strstr(err, strerror(ENOBUFS)) && !strstr(s->vm->stop_msg, "overflowed")))
		return fail("failed, but not for the overflow: %s (vCPU: %s)", err,
			    s->vm->stop_msg);
	if (stop && !strstr(s->vm->stop_msg, "overflowed"))
		return fail("the source stopped for another reason: %s", s->vm->stop_msg);
	if (!tg.rc && tg.t.vm)
		return fail("the target has a VM after a failure");
	printf("PASS %s: source: \"%s\"; source guest %s; %s\n", tcase, err,
	       stop ? s->vm->stop_msg : "runs on", dirty_desc(s->vm));
	end_vm(s->vm);
	return 0;
}

/* The source must run on after a failed migration. */
static int source_runs_on(struct guest *s)
{
	uint64_t a = count_of(s->vm), b;

	if (vm_paused(s->vm))
		return fail("the source guest is still paused");
	b = serve_until_above(s->vm, a);
	if (b <= a)
		return fail("the source counter stopped at %llu", (unsigned long long)a);
	return 0;
}

static int run_case(void)
{
	bool is_dirty = !strncmp(tcase, "dirty-", 6) || !strcmp(tcase, "cut-later") ||
			!strcmp(tcase, "ring-overflow");
	bool overflow = !strcmp(tcase, "ring-overflow");
	bool burst = !strcmp(tcase, "dirty-burst") || overflow;
	bool storage_q = !strcmp(tcase, "storage-qcow2");
	bool storage = !strcmp(tcase, "storage") || storage_q;
	bool bench = !strncmp(tcase, "bench-", 6), fill = !strcmp(tcase, "bench-fill");
	bool expect_ok = !strcmp(tcase, "basic") || !strcmp(tcase, "paused") ||
			 !strcmp(tcase, "restored") || !strcmp(tcase, "dirty-force") || storage ||
			 bench || (burst && !overflow);
	struct migrate_opts o;
	struct guest s = { 0 };
	static char qsrc[160];
	char dest[32], err[512], disk[160] = "", sdir[128] = "";
	uint64_t before = 0, count0;
	int tport = free_port(), r;

	if (storage_q) {
		/* 4 MiB raw base <- 8 MiB qcow2: a zero cluster over base data,
		 * a pattern past the base's end. */
		snprintf(disk, sizeof(disk), "%s/top.qcow2", workdir);
		snprintf(sdir, sizeof(sdir), "%s/dst", workdir);
		mkdir(sdir, 0700);
		char cmd[1024];

		snprintf(cmd, sizeof(cmd),
			 "head -c 4M /dev/urandom > %s/base.raw && qemu-img create -q -f qcow2 -b "
			 "base.raw -F raw %s 8M && qemu-io -f qcow2 -c 'write -z 1M 64k' -c "
			 "'write -P 0x5a 6M 200k' %s >/dev/null",
			 workdir, disk, disk);
		if (system(cmd))
			return fail("cannot make %s (qemu-img, qemu-io: qemu-utils)", disk);
		snprintf(qsrc, sizeof(qsrc), "%s", disk);
		tg.src_disk = qsrc;
		tg.src_qcow2 = true;
		strcat(disk, ",format=qcow2");
	} else if (storage) {
		snprintf(disk, sizeof(disk), "%s/src.img", workdir);
		snprintf(sdir, sizeof(sdir), "%s/dst", workdir);
		mkdir(sdir, 0700);
		/* 8 MiB: data the guest never touches, and its 64 sectors. */
		snprintf(err, sizeof(err), "head -c 8M /dev/urandom > %s", disk);
		if (system(err))
			return fail("cannot make %s", disk);
		tg.src_disk = disk;
	}
	if (start_source(&s,
			 is_dirty || bench ? "dirtier"
			 : storage	   ? "blkcount"
					   : "counter",
			 fill	    ? 1ULL << 30
			 : is_dirty ? 128ULL << 20
				    : 256ULL << 20,
			 fill	    ? "mb=600 fill=1"
			 : bench    ? "mb=1 fill=1"
			 : is_dirty ? "mb=32 every=0"
				    : "spin=2000",
			 storage ? disk : NULL))
		return fail("cannot start the source VM");
	/* Let it run a little (a filling dirtier: until it is done). */
	for (int i = 0; i < 12000 && count_of(s.vm) < (bench ? 1 : 3); i++)
		serve(s.vm, 10);
	if (count_of(s.vm) < 1)
		return fail("the source guest does not count");
	if (!strcmp(tcase, "restored")) {
		if (restore_source(&s))
			return fail("cannot restore the source from a snapshot");
		serve(s.vm, 300);
	}
	if (!dirty_path_ok(s.vm))
		return fail("CVISOR_DIRTY=%s, but the source VM has %u ring entries",
			    getenv("CVISOR_DIRTY"), s.vm->dirty_rings.entries);
	px.lfd = listen_any(&px.port_in);
	px.port_out = tport;
	if (!strcmp(tcase, "cut-hello"))
		px.cut_at = 40;
	else if (!strcmp(tcase, "cut-round0"))
		px.cut_at = 48 << 10;
	else if (!strcmp(tcase, "cut-state"))
		px.cut_on_type = 4; /* MIG_MSG_STATE */
	else if (!strcmp(tcase, "corrupt"))
		px.flip_at = 40 << 10;
	px.move_page = !strcmp(tcase, "verify-mismatch");
	cut_after_round0 = !strcmp(tcase, "cut-later");
	tg.refuse = !strcmp(tcase, "refuse");
	pthread_t pth;

	pthread_create(&pth, NULL, proxy, NULL);
	start_target(tport, storage ? sdir : NULL);
	/* Benchmarks go straight to the target, without the proxy's copy. */
	snprintf(dest, sizeof(dest), "127.0.0.1:%d", bench ? tport : px.port_in);
	migrate_opts_init(&o);
	o.dest = dest;
	o.ops = &migrate_snapshot_source_ops;
	o.verify = !bench;
	o.with_storage = storage;
	o.pump = pump;
	o.pump_ctx = s.vm;
	if (burst) {
		/* The dirtier rewrites its 8192 pages about 8 times a second:
		 * 300 ms between syncs overflows a 4096-entry ring several times. */
		o.downtime_ms = 1000;
		round_sleep_ms = 300;
	} else if (is_dirty) {
		o.max_bandwidth = 16 << 20;
		o.max_rounds = 4;
		/* Only a dirtier that stopped altogether (a starved vCPU on a
		 * loaded host dirties less) could fit in 1 ms. */
		o.downtime_ms = 1;
		o.force = !strcmp(tcase, "dirty-force");
		if (cut_after_round0)
			o.max_rounds = 30;
	}
	if (!strcmp(tcase, "paused")) {
		vm_pause(s.vm);
		before = migrate_memsum(&s.vm->mem);
	}
	struct rusage ru0, ru1;
	uint64_t w0 = cv_now_ns();

	pin(0);
	getrusage(RUSAGE_SELF, &ru0);
	/* Benchmarks: no 256 MiB compare inside the downtime. */
	tg.src_vm = bench ? NULL : s.vm;
	r = migrate_send(s.vm, &o, on_progress, NULL, err, sizeof(err));
	/* A target that dropped the connection (cut in the handshake) waits
	 * for another source: stop it. */
	if (r && write(tg.cancel_fd, &(uint64_t){ 1 }, 8) != 8)
		return fail("cannot stop the target: %s", strerror(errno));
	getrusage(RUSAGE_SELF, &ru1);
	if (bench) {
		struct timespec ts;

		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
		printf("source thread cpu %.3f s\n", (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	}
	if (bench)
		printf("cpu: user %.3f s, sys %.3f s over %.3f s\n",
		       (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
			       (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
		       (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
			       (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6,
		       (double)(cv_now_ns() - w0) / 1e9);
	count0 = count_of(s.vm);
	pthread_join(tg.th, NULL);
	if (bench)
		printf("target thread cpu %.3f s\n", tg.cpu);
	if (bench)
		pthread_cancel(pth);
	pthread_join(pth, NULL);
	close(px.lfd);
	if (overflow)
		return ring_overflow_seen(&s, r, err);
	if (!expect_ok) {
		if (!r)
			return fail("the migration succeeded");
		if (!tg.rc && tg.t.vm)
			return fail("the target has a VM after a failure");
		if (source_runs_on(&s))
			return 1;
		/* Refused by the right check, not by an earlier one. */
		if (!strcmp(tcase, "verify-mismatch") &&
		    (!tg.rc || !strstr(tg.err, "checksum mismatch after the transfer")))
			return fail("not refused by the RAM checksum: target \"%s\"",
				    tg.rc ? tg.err : "(none)");
		printf("PASS %s: source: \"%s\"; target: \"%s\"; %s\n", tcase, err,
		       tg.rc ? tg.err : "(none)", dirty_desc(s.vm));
		end_vm(s.vm);
		return 0;
	}
	if (r)
		return fail("migrate_send: %s (target: %s; source stop %d: %s)", err,
			    tg.rc ? tg.err : "ok", atomic_load(&s.vm->stop), s.vm->stop_msg);
	if (tg.rc)
		return fail("migrate_receive: %s", tg.err);
	if (!vm_paused(s.vm))
		return fail("the source runs after a migration");
	if (!strcmp(tcase, "paused")) {
		uint64_t after = migrate_memsum(&tg.t.vm->mem), c1 = count_of(tg.t.vm);

		if (after != before)
			return fail("RAM checksum %016llx before, %016llx after",
				    (unsigned long long)before, (unsigned long long)after);
		if (!vm_paused(tg.t.vm))
			return fail("the target is not paused");
		sleep_ms(300);
		if (count_of(tg.t.vm) != c1)
			return fail("the paused target counts");
		vm_resume(tg.t.vm);
	}
	if (tg.ram_cmp)
		return fail("the target's RAM differs from the source's at the switch-over");
	if (!dirty_path_ok(tg.t.vm))
		return fail("CVISOR_DIRTY=%s, but the target VM has %u ring entries",
			    getenv("CVISOR_DIRTY"), tg.t.vm->dirty_rings.entries);
	/* The dirtier writes all along: on the ring path the pages it wrote
	 * came from there (the counter may not write in a short migration). */
	if (s.vm->dirty_rings.entries && is_dirty && !atomic_load(&s.vm->dirty_rings.harvested))
		return fail("the ring path harvested nothing from the dirtier");
	if (burst && s.vm->dirty_rings.entries && s.vm->dirty_rings.entries < 8192 &&
	    !atomic_load(&s.vm->dirty_rings.full_exits))
		return fail("no KVM_EXIT_DIRTY_RING_FULL, dirtying twice a ring between syncs");
	if (storage && tg.disk_cmp != 0)
		return fail("the target's image differs from the source's (%d)", tg.disk_cmp);
	if (count_of(tg.t.vm) < count0)
		return fail("target count %llu below the source's %llu",
			    (unsigned long long)count_of(tg.t.vm), (unsigned long long)count0);
	if (bench)
		serve(tg.t.vm, 10);
	else if (serve_until_above(tg.t.vm, count0) <= count0)
		return fail("the target does not count on (%llu)",
			    (unsigned long long)count_of(tg.t.vm));
	if (is_dirty && !burst && !last.forced)
		return fail("not reported as forced");
	if (burst && last.forced)
		return fail("forced: it did not converge");
	printf("PASS %s: count %llu -> %llu; %.1f ms total, downtime %.3f ms, %u rounds, "
	       "%llu bytes, %.2f Gbit/s; %s%s\n",
	       tcase, (unsigned long long)count0, (unsigned long long)count_of(tg.t.vm),
	       (double)last.elapsed_ns / 1e6, (double)last.downtime_us / 1e3, last.round + 1,
	       (unsigned long long)last.bytes, (double)last.throughput * 8 / 1e9, dirty_desc(s.vm),
	       last.forced ? " (forced)"
	       : tg.src_vm ? " (the downtime includes this harness's RAM compare)"
			   : "");
	end_vm(tg.t.vm);
	migrate_target_free(&tg.t);
	end_vm(s.vm);
	return 0;
}

/* Which path a VM gets on this host with this environment. */
static int dirty_mode(void)
{
	struct guest g = { 0 };

	if (start_source(&g, "counter", 16ULL << 20, "", NULL))
		return fail("cannot start a VM");
	printf("%s\n", g.vm->dirty_rings.entries ? "ring" : "bitmap");
	end_vm(g.vm);
	return 0;
}

int main(int argc, char **argv)
{
	char cmd[128];
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: migrate_harness CASE [GUESTDIR]\n");
		return 2;
	}
	tcase = argv[1];
	if (argc > 2)
		guest_dir = argv[2];
	if (!mkdtemp(workdir))
		return 2;
	r = strcmp(tcase, "dirty-mode") ? run_case() : dirty_mode();
	if (!getenv("HARNESS_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
		if (system(cmd))
			r = 1;
	} else {
		printf("logs in %s\n", workdir);
	}
	return r;
}
