/* migrate.h - live migration: pre-copy of a running guest to another cvisor
 * over TCP (src/migrate/; the protocol is specified at the top of
 * src/migrate/proto.c).
 *
 * Source: `cvisor migrate NAME HOST:PORT [flags]` connects to the target
 * itself (with TLS: makes the session and relays a socketpair through it,
 * migrate_link_*), and asks guest NAME's monitor (control request
 * "migrate", see migrate_req_parse; the connection passed with it) to
 * call migrate_send on its main thread. The monitor never does TLS. Target: `cvisor run --incoming HOST:PORT` calls
 * migrate_receive, which listens, builds the VM from the stream's CONFIG,
 * fills RAM, loads the state and starts the guest.
 *
 * Failure leaves nothing lost: until the target says "running" the source
 * guest is resumed on any error; a target that fails removes what it made. */
#ifndef CVISOR_MIGRATE_H
#define CVISOR_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/config.h"
#include "cvisor/migrate_proto.h"
#include "cvisor/state.h"
#include "cvisor/util.h"

struct vm;
struct mig_tls_ctx;

/* How a migration connection is secured, at both ends (src/migrate/tls.c):
 * TLS 1.3 with a pre-shared key or x509 certificates, or a plain stream,
 * which is allowed only on loopback or with `insecure`. */
struct migrate_tls {
	const char *psk_file;  /* --tls-psk FILE: one line IDENTITY:HEXKEY (32 bytes) */
	const char *creds_dir; /* --tls-creds DIR: ca-cert.pem and this end's cert and key */
	bool insecure;	       /* --insecure: a plain stream off loopback */
	char *owned[2];	       /* the paths made absolute (migrate_tls_check) */
};

/* The flags above at `flag` (value the next argument, or NULL): 1 if
 * taken with value, 2 if taken without (--insecure), 0 if flag is none of
 * them, -EINVAL with one line in err. */
int migrate_tls_flag(struct migrate_tls *t, const char *flag, const char *value, char *err,
		     size_t errlen) CV_MUST;
/* Check t for a connection to (or listening on) addr, HOST:PORT: the PSK
 * file (mode 0600 or stricter, one IDENTITY:HEXKEY line of a 32-byte
 * key), the certificate directory's files, not both, and a plain stream
 * only when every address of HOST is loopback or t->insecure. Paths are
 * made absolute (a detached monitor leaves the current directory).
 * 0 or -errno with one line in err; free with migrate_tls_free. */
int migrate_tls_check(struct migrate_tls *t, const char *addr, bool server, char *err,
		      size_t errlen) CV_MUST;
/* Free what migrate_tls_check allocated. */
void migrate_tls_free(struct migrate_tls *t);

#define MIGRATE_DEFAULT_DOWNTIME_MS 50
#define MIGRATE_MAX_DOWNTIME_MS 600000
#define MIGRATE_DEFAULT_MAX_ROUNDS 30
#define MIGRATE_MAX_ROUNDS 1000
/* Rounds in a row that do not shrink what is left by 10%: not converging. */
#define MIGRATE_STALL_ROUNDS 5

/* What migration needs from the snapshot code (snapshot.h) and the VM
 * layer, as pointers so that the engine links and is tested on its own. */
struct migrate_source_ops {
	/* Everything but RAM; vCPUs paused, devices quiesced.
	 * snapshot_state_save. Required. */
	int (*state_save)(struct vm *vm, struct state_buf *out);
	/* Only the CONFIG section (a snapshot payload holding it), for the
	 * handshake. NULL: taken from state_save during a short pause at the
	 * start (the guest stops for about a millisecond). */
	int (*config_save)(struct vm *vm, struct state_buf *out);
	/* Quiesce the devices with I/O in flight (vCPUs paused) and undo it:
	 * snapshot_devices_quiesce / _resume. NULL: virtio-blk only. */
	int (*quiesce)(struct vm *vm, char *err, size_t errlen);
	void (*resume)(struct vm *vm);
};

/* The snapshot code's functions (src/migrate/ops.c). */
extern const struct migrate_source_ops migrate_snapshot_source_ops;

struct migrate_opts {
	const char *dest;	 /* HOST:PORT */
	uint64_t downtime_ms;	 /* target downtime, default 50 */
	unsigned int max_rounds; /* pre-copy rounds after round 0, default 30 */
	/* When the target downtime cannot be met (max_rounds reached, or the
	 * guest dirties memory as fast as the link carries it): true stops the
	 * guest anyway and reports the downtime it took; false gives up and
	 * leaves the guest running here (--no-force). */
	bool force;
	bool with_storage;	/* copy every virtio-blk image too */
	bool verify;		/* the target checks a whole-RAM checksum before it runs */
	uint64_t max_bandwidth; /* bytes/s, 0 = no throttle (the default) */
	/* The TLS flags, for the `cvisor migrate` client, which makes the
	 * session (migrate_link_*): a monitor refuses a request that names
	 * key or certificate files. */
	struct migrate_tls tls;
	/* The connection to dest, made by the client and passed with the
	 * request; the caller closes it after migrate_send. -1: the monitor
	 * connects itself
	 * (a plain stream only, loopback or insecure). */
	int fd;
	/* The client relays fd through TLS to the target, which then checks
	 * no CRC: none are computed (proto.c "TLS"). */
	bool encrypted;
	bool linked; /* "link": the request brings its connection (SCM_RIGHTS) */
	const struct migrate_source_ops *ops;
	/* Called between batches (at least every 20 ms) during pre-copy, e.g.
	 * to serve the monitor's event loop so that devices make progress.
	 * It must not start another migration. NULL: devices wait. */
	void (*pump)(void *ctx);
	void *pump_ctx;
};

/* Defaults as above (dest NULL, ops NULL, fd -1). */
void migrate_opts_init(struct migrate_opts *o);

enum migrate_phase {
	MIGRATE_SETUP,	 /* connecting, handshake */
	MIGRATE_DISKS,	 /* round 0 of the disk images */
	MIGRATE_PRECOPY, /* RAM rounds, the guest running */
	MIGRATE_STOPPED, /* guest paused: the rest, the state, waiting for "running" */
	MIGRATE_DONE,
};

enum migrate_event {
	MIGRATE_EV_TICK,  /* a few times a second (the tty progress bar) */
	MIGRATE_EV_ROUND, /* a round ended (one JSON line each) */
	MIGRATE_EV_DONE,  /* the guest runs on the target: the summary */
};

struct migrate_progress {
	enum migrate_event event;
	enum migrate_phase phase;
	unsigned int round;
	uint64_t elapsed_ns;
	uint64_t bytes;	     /* on the wire so far */
	uint64_t ram_bytes;  /* guest RAM size */
	uint64_t pages;	     /* page records sent (zero pages included) */
	uint64_t zero_pages; /* of which sent as a flag only */
	uint64_t disk_bytes; /* disk data sent */
	uint64_t remaining;  /* bytes known dirty, still to send */
	uint64_t rate;	     /* wire bytes/s over the last round */
	uint64_t dirty_rate; /* bytes/s the guest dirtied over the last round */
	uint64_t expected_downtime_us;
	/* MIGRATE_EV_DONE only: */
	uint64_t downtime_us; /* pause on the source to "running" from the target */
	uint64_t throughput;  /* wire bytes/s over the whole migration */
	bool forced;	      /* stopped without meeting the downtime target */
	uint64_t downtime_target_ms;
	const char *dest;
};

typedef void (*migrate_progress_fn)(void *ctx, const struct migrate_progress *p);

/* Migrate vm to o->dest. Main thread of the source monitor; the vCPUs keep
 * running until the final pass. On success (0) the guest runs on the
 * target and stays paused here: the caller must end it (e.g.
 * vm_request_stop(vm, VM_STOP_POWEROFF, "migrated to HOST:PORT")), never
 * resume it. On failure (-errno, one line in err) the guest runs here as
 * before (resumed if the migration paused it). progress may be NULL. */
int migrate_send(struct vm *vm, const struct migrate_opts *o, migrate_progress_fn progress,
		 void *ctx, char *err, size_t errlen) CV_MUST;

/* ---- the target ---- */

struct migrate_target_ops {
	/* snapshot_config_load. */
	int (*config_load)(const uint8_t *payload, size_t len, struct vm_config *cfg, char *err,
			   size_t errlen);
	/* The CPU the guest was given, from the same payload (its MACHINE
	 * section): snapshot_cpu_model. The handshake checks it against this
	 * host, once (mig_cpu_check). */
	int (*cpu_model)(const uint8_t *payload, size_t len, struct cpu_model *m, char *err,
			 size_t errlen);
	/* Build a VM for incoming state from cfg (adjust cfg first as the
	 * command line says: name, detach): memory, devices and vCPUs, no
	 * kernel; not started. *vm must stay valid until destroy. */
	int (*build)(void *ctx, struct vm_config *cfg, struct vm **vm, char *err, size_t errlen);
	/* snapshot_state_load_incoming: the state, the CPU check left out
	 * (the handshake ran it). */
	int (*state_load)(struct vm *vm, const uint8_t *payload, size_t len, char *err,
			  size_t errlen);
	/* Start the vCPUs (vm_start). The VM may have pause_req set: the
	 * source had the guest paused, and it stays paused here. */
	int (*start)(void *ctx, struct vm *vm, char *err, size_t errlen);
	/* After a failure: tear down what build (and start) made. */
	void (*destroy)(void *ctx, struct vm *vm);
	/* Optional: the socket listens (a detaching `run -d` may return). */
	void (*listening)(void *ctx, const char *addr);
	/* Optional: the source connected on fd, and (fd -1) that connection is
	 * about to be closed. In between another thread may shutdown(2) fd to
	 * abort the transfer (which then fails and cleans up as any other). */
	void (*connected)(void *ctx, int fd);
};

/* The snapshot code's config_load, cpu_model and state_load, and a plain build
 * (vm_create_restore into a malloc'd struct vm; ctx unused), start
 * (vm_start) and destroy (vm_join, vm_destroy, free). A CLI that names
 * the guest, detaches or sets up a control socket brings its own build
 * and start and keeps the others. */
extern const struct migrate_target_ops migrate_default_target_ops;

#define MIGRATE_MAX_NETS 4 /* the device table's --net */

struct migrate_incoming {
	const char *listen;		/* HOST:PORT ("0.0.0.0:4444", "[::]:4444") */
	const char *storage_dir;	/* where disk images sent with --with-storage go */
	unsigned int accept_timeout_ms; /* 0: wait for a source forever */
	/* The host resources the guest gets here (resources.c): the stream
	 * names none. --disk PATH per source disk, in order; --net SPEC per
	 * source network; --vsock SPEC. */
	const char *disks[MIG_MAX_DISKS];
	unsigned int ndisks;
	const char *nets[MIGRATE_MAX_NETS];
	unsigned int nnets;
	const char *vsock;
	struct migrate_tls tls;
	/* Its TLS context, built by migrate_incoming_check (the module loaded,
	 * the key or certificates read) before any seccomp filter or jail:
	 * NULL for a plain stream. */
	struct mig_tls_ctx *tlsc;
	char *owned[MIG_MAX_DISKS + 2]; /* paths made absolute (migrate_incoming_check) */
	const struct migrate_target_ops *ops;
	void *ctx;
	/* Optional: an fd (an eventfd) that, once readable, ends the wait for
	 * a source: migrate_receive then fails with -ECANCELED. NULL: none (a
	 * pointer, so that a zeroed struct asks for nothing). A transfer under
	 * way is ended through ops->connected's fd instead. */
	const int *cancel_fd;
};

/* The migrated guest and what it keeps alive (cfg points into config). */
struct migrate_target {
	struct vm *vm;
	struct vm_config cfg;
	uint8_t *config; /* the HELLO body cfg's strings point into */
	char *disk_specs[MIG_MAX_DISKS];
	uint64_t pages, zero_pages, disk_bytes, bytes;
	uint64_t total_ns; /* accept to "running" */
};

/* Listen on in->listen, take a source, and bring its guest up: on 0 the
 * guest runs (t->vm) and the source has been told. A connection that
 * fails before the VM is built (not a stream, a replayed one, a CONFIG
 * naming host resources in was not given) is answered, dropped and logged
 * in one line (cv_warn), and the next one taken; the wait ends with
 * cancel_fd or after accept_timeout_ms. On failure (-errno, one line in
 * err) nothing is left: no VM, no partial disk image. Free t with
 * migrate_target_free after the VM is destroyed. */
int migrate_receive(const struct migrate_incoming *in, struct migrate_target *t, char *err,
		    size_t errlen) CV_MUST;
/* Free what *t keeps alive for the guest's configuration (not the VM). */
void migrate_target_free(struct migrate_target *t);

/* ---- pure helpers (tests, the CLI) ---- */

enum migrate_decision {
	MIGRATE_CONTINUE, /* another round */
	MIGRATE_STOP,	  /* pause and send the rest */
	MIGRATE_GIVE_UP,  /* cannot meet the downtime target and may not force */
};

struct migrate_converge {
	uint64_t remaining;   /* dirty bytes left to send */
	uint64_t bandwidth;   /* bytes/s measured (0: not yet known) */
	uint64_t dirty_rate;  /* bytes/s */
	uint64_t downtime_ms; /* the target */
	uint64_t overhead_us; /* fixed cost of the stop (state, start, reply) */
	unsigned int round;   /* rounds done after round 0 */
	unsigned int max_rounds;
	unsigned int stalled; /* migrate_stall_count */
	bool force;
};

/* Decide after a round; *expected_us gets the downtime stopping now would
 * take (UINT64_MAX while the bandwidth is unknown). */
enum migrate_decision migrate_decide(const struct migrate_converge *c, uint64_t *expected_us);

/* Consecutive rounds that did not shrink the remainder by 10%. */
unsigned int migrate_stall_count(unsigned int stalled, uint64_t prev_remaining, uint64_t remaining);

/* Split "HOST:PORT" / "[V6]:PORT" (port 1-65535). 0 or -EINVAL + err. */
int migrate_parse_addr(const char *s, char *host, size_t hostlen, char *port, size_t portlen,
		       char *err, size_t errlen) CV_MUST;

/* A checksum of guest RAM (pages that read as zero count as absent), the
 * same on both ends of a correct migration. Pause the guest first. */
uint64_t migrate_memsum(const struct guest_mem *gm);

/* The control request that carries migrate's options to the monitor, one line:
 * {"cmd":"migrate","dest":"H:P","downtime_ms":N,"max_rounds":N,
 *  "force":B,"with_storage":B,"verify":B,"max_bandwidth":N[,"tls":true]
 *  [,"insecure":true]}, the connection to dest passed with it (o->fd). Key
 * and certificate paths never travel: the client does the TLS. */
int migrate_req_format(const struct migrate_opts *o, char *buf, size_t len) CV_MUST;
/* Parse such a request (a JSON object text; unknown keys are errors);
 * o->dest points into *owned (free() it), the TLS paths of an older
 * client's request ("tls_psk", "tls_creds", which the monitor refuses)
 * into o->tls.owned (migrate_tls_free). Pure. */
int migrate_req_parse(const char *json, size_t len, struct migrate_opts *o, char **owned, char *err,
		      size_t errlen) CV_MUST;

/* The progress lines: {"progress":{...}} for each MIGRATE_EV_ROUND and the
 * final {"ok":true,"migrated":{...}} for MIGRATE_EV_DONE (what --json
 * prints, and what the monitor streams back before its reply); a one-line
 * bar for a tty ("\r" first, no newline); and the closing summary line. */
int migrate_progress_json(const struct migrate_progress *p, char *buf, size_t len) CV_MUST;
void migrate_progress_bar(const struct migrate_progress *p, char *buf, size_t len);
void migrate_summary_line(const struct migrate_progress *p, char *buf, size_t len);

/* Read back a line migrate_progress_json wrote (the client renders the
 * bar from the monitor's stream): 1 for progress, 2 for the final
 * summary, 0 for any other line (the monitor's reply), -EINVAL if it is
 * not JSON. p->dest is NULL. Pure. */
int migrate_progress_parse(const char *line, size_t len, struct migrate_progress *p) CV_MUST;

/* `run --incoming HOST:PORT [--storage-dir DIR] [--disk PATH]...
 * [--net SPEC]... [--vsock SPEC] [--incoming-timeout SECONDS] [--tls-psk
 * FILE] [--tls-creds DIR] [--insecure]`: take one of these flags (value
 * may be NULL for a flag without one; it must outlive in). 1 taken (with
 * value), 2 taken without a value (--insecure), 0 not ours, or -EINVAL
 * with one line. Pure. */
int migrate_incoming_flag(struct migrate_incoming *in, const char *flag, const char *value,
			  char *err, size_t errlen) CV_MUST;

/* Once every flag is in, before the monitor starts: --storage-dir is a
 * writable directory and each --disk an existing file (both made
 * absolute, in->owned), the --net and --vsock values parse (a relative
 * uds= path made absolute), and the TLS flags (migrate_tls_check). 0, or -EINVAL / -ENOENT / -EACCES / -ENOMEM
 * with one line. Free with migrate_incoming_free. */
int migrate_incoming_check(struct migrate_incoming *in, char *err, size_t errlen) CV_MUST;
/* Free what migrate_incoming_check allocated. */
void migrate_incoming_free(struct migrate_incoming *in);

/* The host side of the guest's disks, networks and vsock in dc (the
 * stream's CONFIG) replaced with in's (see src/migrate/resources.c):
 * storage says the images travel (into in->storage_dir). 0, or -EINVAL
 * with one line naming what the target lacks or what disagrees with the
 * guest (a MAC, a CID). Pure. */
int migrate_target_resources(struct devices_config *dc, const struct migrate_incoming *in,
			     bool storage, char *err, size_t errlen) CV_MUST;

/* ---- link.c: the client's end of the stream (`cvisor migrate`) ---- */

/* A connection to a target, made by the client: a plain TCP socket, or a
 * TLS session relayed to a socketpair whose other end the monitor gets. */
struct migrate_link;

/* Load the TLS module and read the key or certificates when o->tls names
 * them (and check o->dest against the plain-stream rule): 0 with *out, or
 * -errno with one line in err (bad flags or files, a missing module:
 * status 2). */
int migrate_link_new(const struct migrate_opts *o, struct migrate_link **out, char *err,
		     size_t errlen) CV_MUST;
/* Connect to o->dest; with TLS, shake hands (verifying the target as the
 * monitor used to), wait for the target's first bytes (a client
 * certificate the target refuses shows here, as its alert), and start
 * relaying. *pass_fd is the fd to pass to the monitor, the caller's to
 * close once passed (the relay ends only when the monitor's end, this
 * fd, is closed everywhere). 0, or -errno with one line in err. */
int migrate_link_connect(struct migrate_link *l, const struct migrate_opts *o, int *pass_fd,
			 char *err, size_t errlen) CV_MUST;
/* After the monitor's reply: let the relay finish (the monitor has closed
 * its end; a relay still busy a few seconds later is cut), and free. why
 * gets a TLS failure the relay met ("" if none), for the error line. */
void migrate_link_close(struct migrate_link *l, char *why, size_t whylen);

#endif
