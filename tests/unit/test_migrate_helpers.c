/* test_migrate_helpers.c - the live migration's pure helpers (moved from
 * test_migrate.c, which keeps the stream): the convergence decision
 * (policy.c), HOST:PORT, the control request that carries `cvisor
 * migrate`'s options, the progress lines (cli.c), `run --incoming`'s
 * flags, the whole-RAM checksum both ends compute (ram.c), the
 * wording of a target's CPU check (proto.c), and the TLS flags and PSK
 * files (tls_config.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/devices.h"
#include "cvisor/guest_mem.h"
#include "cvisor/migrate.h"
#include "cvisor/migrate_proto.h"
#include "cvisor/vm.h"
#include "../../src/migrate/migrate_priv.h"

#define RAM (1u << 20)

static void test_decide(void **state)
{
	struct migrate_converge c = {
		.remaining = 4 << 20,
		.bandwidth = 1000 << 20,
		.downtime_ms = 50,
		.overhead_us = 1000,
		.round = 1,
		.max_rounds = 30,
		.force = true,
	};
	uint64_t exp;

	(void)state;
	/* 4 MiB at 1000 MiB/s: 4 ms + 1 ms: stop. */
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	assert_int_equal(exp, 5000);
	/* 100 MiB: 100 ms: another round. */
	c.remaining = 100 << 20;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_CONTINUE);
	assert_int_equal(exp, 101000);
	/* Bandwidth unknown yet: continue unless nothing is left. */
	c.bandwidth = 0;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_CONTINUE);
	assert_int_equal(exp, UINT64_MAX);
	c.remaining = 0;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	/* Out of rounds: stop anyway, or give up. */
	c.remaining = 100 << 20;
	c.bandwidth = 1000 << 20;
	c.round = 30;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	c.force = false;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_GIVE_UP);
	/* Not converging (dirtied as fast as sent): the same, earlier. */
	c.round = 3;
	c.stalled = MIGRATE_STALL_ROUNDS;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_GIVE_UP);
	c.stalled = MIGRATE_STALL_ROUNDS - 1;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_CONTINUE);
	/* Even when stalled, a remainder that fits stops. */
	c.stalled = 99;
	c.remaining = 1 << 20;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	/* Stall counting: less than 10% progress counts. */
	assert_int_equal(migrate_stall_count(0, 100, 95), 1);
	assert_int_equal(migrate_stall_count(1, 100, 120), 2);
	assert_int_equal(migrate_stall_count(2, 100, 89), 0);
}

static void test_addr_and_args(void **state)
{
	/* No port, port 0, an unbracketed IPv6 address, no host. */
	static const char *const bad[] = { "host", "h:0", "::1:80", ":80" };
	char host[64], port[8], err[256];

	(void)state;
	assert_int_equal(migrate_parse_addr("10.0.0.2:4444", host, sizeof(host), port, sizeof(port),
					    err, sizeof(err)),
			 0);
	assert_string_equal(host, "10.0.0.2");
	assert_string_equal(port, "4444");
	assert_int_equal(migrate_parse_addr("[::1]:80", host, sizeof(host), port, sizeof(port), err,
					    sizeof(err)),
			 0);
	assert_string_equal(host, "::1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(migrate_parse_addr(bad[i], host, sizeof(host), port, sizeof(port),
						    err, sizeof(err)),
				 -EINVAL);
	/* `cvisor migrate`'s command line: test_cli.c (the verb table). */
}

static void test_request_roundtrip(void **state)
{
	struct migrate_opts o, back;
	char buf[512], err[256], *owned;

	(void)state;
	migrate_opts_init(&o);
	o.dest = "[fe80::1]:4444";
	o.downtime_ms = 25;
	o.max_rounds = 7;
	o.force = false;
	o.with_storage = true;
	o.verify = true;
	o.max_bandwidth = 123456789;
	assert_int_equal(migrate_req_format(&o, buf, sizeof(buf)), 0);
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)), 0);
	assert_string_equal(back.dest, o.dest);
	assert_int_equal(back.downtime_ms, 25);
	assert_int_equal(back.max_rounds, 7);
	assert_true(!back.force && back.with_storage && back.verify);
	assert_int_equal(back.max_bandwidth, 123456789);
	assert_false(back.encrypted);
	assert_int_equal(back.fd, -1); /* the connection comes with the request, not in it */
	free(owned);
	/* TLS: the client says the stream is relayed through a session; the
	 * key's path never travels (the monitor reads no key files). */
	o.encrypted = true;
	o.tls.psk_file = "/secret/mig.psk";
	assert_int_equal(migrate_req_format(&o, buf, sizeof(buf)), 0);
	assert_null(strstr(buf, "mig.psk"));
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)), 0);
	assert_true(back.encrypted && !back.tls.psk_file && !back.linked);
	free(owned);
	/* A passed connection is named in the request ("link"). */
	o.linked = true;
	assert_int_equal(migrate_req_format(&o, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "\"link\":true"));
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)), 0);
	assert_true(back.linked);
	free(owned);
	o.linked = false;
	o.encrypted = false;
	o.tls.psk_file = NULL;
	assert_int_equal(migrate_req_format(&o, buf, 10), -ENOSPC);
	/* Unknown keys, wrong types, missing dest. */
	strcpy(buf, "{\"cmd\":\"migrate\",\"dest\":\"h:1\",\"speed\":1}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "unknown key \"speed\""));
	assert_null(owned);
	strcpy(buf, "{\"cmd\":\"migrate\",\"dest\":\"h:1\",\"downtime_ms\":-5}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	strcpy(buf, "{\"cmd\":\"migrate\"}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "needs \"dest\""));
	strcpy(buf, "{\"cmd\":\"migrate\",\"dest\":\"h:1\",\"force\":1}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(migrate_req_parse("[1", 2, &back, &owned, err, sizeof(err)), -EINVAL);
}

static void test_progress_lines(void **state)
{
	struct migrate_progress p = {
		.event = MIGRATE_EV_ROUND, .phase = MIGRATE_PRECOPY, .round = 2,
		.elapsed_ns = 1500000000, .bytes = 12345678, .ram_bytes = 1 << 30,
		.pages = 3000, .zero_pages = 10, .remaining = 40960, .rate = 800000000,
		.dirty_rate = 1000000, .expected_downtime_us = 1234,
	}, q;
	char line[1024];

	(void)state;
	assert_int_equal(migrate_progress_json(&p, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "{\"progress\":{\"event\":\"round\""));
	assert_int_equal(migrate_progress_parse(line, strlen(line), &q), 1);
	assert_int_equal(q.event, MIGRATE_EV_ROUND);
	assert_int_equal(q.phase, MIGRATE_PRECOPY);
	assert_int_equal(q.round, 2);
	assert_int_equal(q.bytes, 12345678);
	assert_int_equal(q.remaining, 40960);
	assert_int_equal(q.expected_downtime_us, 1234);
	p.expected_downtime_us = UINT64_MAX;
	assert_int_equal(migrate_progress_json(&p, line, sizeof(line)), 0);
	assert_int_equal(migrate_progress_parse(line, strlen(line), &q), 1);
	assert_int_equal(q.expected_downtime_us, UINT64_MAX);
	migrate_progress_bar(&p, line, sizeof(line));
	assert_true(line[0] == '\r' && !strchr(line, '\n'));
	p.event = MIGRATE_EV_DONE;
	p.phase = MIGRATE_DONE;
	p.downtime_us = 4321;
	p.throughput = 900000000;
	p.forced = true;
	p.downtime_target_ms = 50;
	p.dest = "10.200.0.2:4444";
	assert_int_equal(migrate_progress_json(&p, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "{\"ok\":true,\"migrated\":{"));
	assert_int_equal(migrate_progress_parse(line, strlen(line), &q), 2);
	assert_int_equal(q.downtime_us, 4321);
	assert_int_equal(q.round, 2);
	assert_true(q.forced);
	migrate_summary_line(&p, line, sizeof(line));
	assert_non_null(strstr(line, "migrated to 10.200.0.2:4444 in 1.500 s"));
	assert_non_null(strstr(line, "3 rounds, downtime 4.321 ms (target 50 ms)"));
	assert_non_null(strstr(line, "forced"));
	assert_int_equal(migrate_progress_parse("{\"ok\":false}", 12, &q), 0);
	assert_int_equal(migrate_progress_parse("nope", 4, &q), -EINVAL);
}

static void test_incoming_flags(void **state)
{
	struct migrate_incoming in = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(migrate_incoming_flag(&in, "--incoming", "0.0.0.0:4444", err, sizeof(err)),
			 1);
	assert_string_equal(in.listen, "0.0.0.0:4444");
	assert_int_equal(migrate_incoming_flag(&in, "--storage-dir", "/srv", err, sizeof(err)), 1);
	assert_string_equal(in.storage_dir, "/srv");
	assert_int_equal(migrate_incoming_flag(&in, "--name", "x", err, sizeof(err)), 0);
	assert_int_equal(migrate_incoming_flag(&in, "--incoming", "4444", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "--incoming 4444"));
	assert_int_equal(migrate_incoming_flag(&in, "--incoming", NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(migrate_incoming_flag(&in, "--storage-dir", "", err, sizeof(err)),
			 -EINVAL);
	/* The target's own resources, and how long it waits. */
	assert_int_equal(migrate_incoming_flag(&in, "--disk", "/a.img", err, sizeof(err)), 1);
	assert_int_equal(migrate_incoming_flag(&in, "--disk", "/b.img", err, sizeof(err)), 1);
	assert_int_equal(in.ndisks, 2);
	assert_string_equal(in.disks[1], "/b.img");
	assert_int_equal(migrate_incoming_flag(&in, "--disk", "/c.img,readonly", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "options come from the source"));
	assert_int_equal(migrate_incoming_flag(&in, "--net", "tap=t0", err, sizeof(err)), 1);
	assert_int_equal(migrate_incoming_flag(&in, "--vsock", "3", err, sizeof(err)), 1);
	assert_int_equal(migrate_incoming_flag(&in, "--incoming-timeout", "5", err, sizeof(err)),
			 1);
	assert_int_equal(in.accept_timeout_ms, 5000);
	assert_int_equal(migrate_incoming_flag(&in, "--incoming-timeout", "0", err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(migrate_incoming_flag(&in, "--incoming-timeout", "x", err, sizeof(err)),
			 -EINVAL);
}

/* Checked at start, not when a source comes: a missing or a non-directory
 * --storage-dir, a missing --disk. */
static void test_incoming_check(void **state)
{
	struct migrate_incoming in = { 0 };
	char err[512];

	(void)state;
	in.storage_dir = "/nonexistent-cvisor-dir";
	assert_int_equal(migrate_incoming_check(&in, err, sizeof(err)), -ENOENT);
	assert_string_equal(err,
			    "--storage-dir /nonexistent-cvisor-dir: No such file or directory");
	migrate_incoming_free(&in);
	in.storage_dir = "/proc/self/status";
	assert_int_equal(migrate_incoming_check(&in, err, sizeof(err)), -ENOTDIR);
	assert_non_null(strstr(err, "not a directory"));
	migrate_incoming_free(&in);
	in.storage_dir = "/tmp";
	in.disks[in.ndisks++] = "/nonexistent-cvisor.img";
	assert_int_equal(migrate_incoming_check(&in, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "--disk /nonexistent-cvisor.img"));
	migrate_incoming_free(&in);
	in.storage_dir = "/tmp"; /* the resolved one is freed */
	in.ndisks = 0;
	in.nets[in.nnets++] = "wire";
	assert_int_equal(migrate_incoming_check(&in, err, sizeof(err)), -EINVAL);
	in.nnets = 0;
	in.vsock = "7,uds=rel.sock";
	assert_int_equal(migrate_incoming_check(&in, err, sizeof(err)), 0);
	assert_string_equal(in.storage_dir, "/tmp");
	assert_true(in.vsock[0] == '7' && strstr(in.vsock, ",uds=/") &&
		    strstr(in.vsock, "/rel.sock"));
	migrate_incoming_free(&in);
}

/* The stream's CONFIG with the guest's devices as a source sends them. */
static void source_devices(struct devices_config *dc, const char *disk, const char *net,
			   const char *vsock)
{
	struct cv_error e = { 0 };

	memset(dc, 0, sizeof(*dc));
	if (disk)
		assert_int_equal(devices_add(dc, devices_type("disk"), "--disk", disk, &e), 0);
	if (net)
		assert_int_equal(devices_add(dc, devices_type("net"), "--net", net, &e), 0);
	if (vsock)
		assert_int_equal(devices_add(dc, devices_type("vsock"), "--vsock", vsock, &e), 0);
}

/* Host resources are the target's: the stream names none it was not given. */
static void test_target_resources(void **state)
{
	struct migrate_incoming in = { 0 };
	struct devices_config dc;
	char err[512];

	(void)state;
	/* A disk the target was not given: refused, naming it. */
	source_devices(&dc, "/etc/shadow,serial=S1", NULL, NULL);
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the source's disk 0 (/etc/shadow): give the target --disk"));
	/* Given: the target's path, the guest's options. */
	in.disks[in.ndisks++] = "/srv/g.img";
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), 0);
	assert_string_equal(devices_spec(&dc, devices_type("disk"), 0), "/srv/g.img,serial=S1");
	devices_config_free(&dc);
	/* One too many --disk. */
	source_devices(&dc, NULL, NULL, NULL);
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "given 1 --disk, the guest has 0 disks"));
	/* Storage migration wants --storage-dir, and no --disk. */
	source_devices(&dc, "/x.img", NULL, NULL);
	assert_int_equal(migrate_target_resources(&dc, &in, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "give --storage-dir DIR"));
	in.storage_dir = "/srv";
	assert_int_equal(migrate_target_resources(&dc, &in, true, err, sizeof(err)), -EINVAL);
	in.ndisks = 0;
	assert_int_equal(migrate_target_resources(&dc, &in, true, err, sizeof(err)), 0);
	devices_config_free(&dc);
	/* Networks: the target's backend, the guest's MAC. */
	source_devices(&dc, NULL, "tap=srctap,mac=52:54:00:aa:bb:cc", NULL);
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the source's network 0 (tap=srctap"));
	in.nets[in.nnets++] = "tap=mytap";
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), 0);
	assert_string_equal(devices_spec(&dc, devices_type("net"), 0),
			    "tap=mytap,mac=52:54:00:aa:bb:cc");
	in.nets[0] = "user,mac=52:54:00:00:00:01";
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the guest's MAC is 52:54:00:aa:bb:cc"));
	devices_config_free(&dc);
	/* A default MAC is the guest's too. */
	source_devices(&dc, NULL, "user", NULL);
	in.nets[0] = "tap=mytap";
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), 0);
	assert_string_equal(devices_spec(&dc, devices_type("net"), 0),
			    "tap=mytap,mac=52:54:00:12:34:56");
	devices_config_free(&dc);
	/* Rate limits go with the guest; the target's own win. */
	source_devices(&dc, "/x.img,bw=10M,iops=100", "user,rx-bw=1M,tx-pps=50", NULL);
	in.disks[in.ndisks++] = "/srv/g.img";
	in.nets[0] = "tap=mytap,tx-pps=70";
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), 0);
	assert_string_equal(devices_spec(&dc, devices_type("disk"), 0),
			    "/srv/g.img,bw=10M,iops=100");
	assert_string_equal(devices_spec(&dc, devices_type("net"), 0),
			    "tap=mytap,rx-bw=1M,tx-pps=70,mac=52:54:00:12:34:56");
	devices_config_free(&dc);
	in.ndisks = 0;
	in.nnets = 0;
	/* vsock: the target's socket, the guest's CID. */
	source_devices(&dc, NULL, NULL, "5,uds=/root/owned.sock");
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "give the target --vsock 5[,uds=PATH]"));
	in.vsock = "6,uds=/run/t.sock";
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the guest's CID is 5"));
	in.vsock = "5,uds=/run/t.sock";
	assert_int_equal(migrate_target_resources(&dc, &in, false, err, sizeof(err)), 0);
	assert_string_equal(devices_spec(&dc, devices_type("vsock"), 0), "5,uds=/run/t.sock");
	devices_config_free(&dc);
}

/* The target's disk images from a HELLO: a qcow2 disk becomes a new
 * standalone qcow2 that qemu-img checks clean, written through the sink;
 * a hostile size, a disk the HELLO does not have, or a name with a '/'
 * is one line and leaves nothing in the directory. */
static void test_dst_disks(void **state)
{
	char dir[] = "/tmp/cvisor-dstdisk-XXXXXX", err[512], cmd[512];
	struct mig_hello h = { .ndisks = 2 };
	struct mig_dst_disks dd;
	struct vm *vm = calloc(1, sizeof(*vm));
	uint8_t data[4096];

	(void)state;
	assert_non_null(mkdtemp(dir));
	h.disks[0] =
		(struct mig_disk){ .size = 8 << 20, .format = MIG_DISK_QCOW2, .cluster_bits = 16 };
	strcpy(h.disks[0].name, "g.qcow2");
	h.disks[1] = (struct mig_disk){ .size = 1 << 20, .format = MIG_DISK_RAW };
	strcpy(h.disks[1].name, "r.img");
	assert_int_equal(mig_dst_disks_create(&dd, &h, dir, err, sizeof(err)), 0);
	assert_string_equal(mig_dst_disk_format(&dd, 0), "qcow2");
	assert_string_equal(mig_dst_disk_format(&dd, 1), "raw");
	memset(data, 0x6b, sizeof(data));
	assert_int_equal(mig_dst_disk_write(&dd, 0, 1 << 20, data, sizeof(data), false), 0);
	assert_int_equal(mig_dst_disk_write(&dd, 0, 2 << 20, NULL, 1 << 20, true), 0);
	assert_int_equal(mig_dst_disk_write(&dd, 1, 0, data, sizeof(data), false), 0);
	assert_int_equal(mig_dst_disk_write(&dd, 2, 0, data, sizeof(data), false), -EBADF);
	assert_int_equal(mig_dst_disks_finish(&dd, vm, err, sizeof(err)), 0);
	snprintf(cmd, sizeof(cmd),
		 "qemu-img check -q %s/g.qcow2 && qemu-img info %s/g.qcow2 | grep -q 'virtual "
		 "size: 8 MiB' && qemu-img create -q -f raw %s/want 8M && qemu-io -f raw -c "
		 "'write -P 0x6b 1M 4k' %s/want >/dev/null && qemu-img compare -q -F raw "
		 "%s/g.qcow2 %s/want",
		 dir, dir, dir, dir, dir, dir);
	assert_int_equal(system(cmd), 0);
	mig_dst_disks_free(&dd);
	snprintf(cmd, sizeof(cmd), "rm -f %s/*", dir);
	assert_int_equal(system(cmd), 0);
	/* Hostile: sizes no qcow2 image can have here. */
	h.ndisks = 1;
	h.disks[0].size = 1ULL << 56;
	h.disks[0].cluster_bits = 9;
	assert_int_equal(mig_dst_disks_create(&dd, &h, dir, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "the source's disk g.qcow2 of 72057594037927936 bytes does "
				    "not fit a qcow2 image with 512-byte clusters"));
	mig_dst_disks_abort(&dd);
	mig_dst_disks_free(&dd);
	assert_int_equal(rmdir(dir), 0); /* nothing left in it */
	assert_non_null(mkdtemp(strcpy(dir, "/tmp/cvisor-dstdisk-XXXXXX")));
	h.disks[0].size = 0;
	assert_int_equal(mig_dst_disks_create(&dd, &h, dir, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "of 0 bytes does not fit"));
	mig_dst_disks_abort(&dd);
	mig_dst_disks_free(&dd);
	strcpy(h.disks[0].name, "../g.qcow2");
	h.disks[0].size = 1 << 20;
	assert_int_equal(mig_dst_disks_create(&dd, &h, dir, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the source's disk name '../g.qcow2' is unsafe"));
	mig_dst_disks_abort(&dd);
	mig_dst_disks_free(&dd);
	assert_int_equal(rmdir(dir), 0);
	free(vm);
}

static void test_memsum(void **state)
{
	uint8_t *ram = calloc(1, RAM);
	struct guest_mem gm;
	uint64_t a, b;

	(void)state;
	guest_mem_init_buf(&gm, ram, RAM);
	assert_int_equal(migrate_memsum(&gm), 0); /* untouched: nothing */
	memset(ram, 0, RAM);
	assert_int_equal(migrate_memsum(&gm), 0); /* zero pages count as absent */
	ram[0x3000] = 1;
	a = migrate_memsum(&gm);
	assert_int_not_equal(a, 0);
	/* The same byte in another page is another sum. */
	ram[0x3000] = 0;
	ram[0x4000] = 1;
	b = migrate_memsum(&gm);
	assert_int_not_equal(a, b);
	ram[0x4000] = 0;
	ram[0x3000] = 1;
	assert_int_equal(migrate_memsum(&gm), a);
	free(ram);
}

/* A target's CPU check, worded for the source (mig_cpu_check; the check
 * itself is test_cpu_compat.c's). */
static void test_cpu_wording(void **state)
{
	struct cpu_model guest = { .has_vendor = true, .f7_ebx = 0x10 };
	struct cpu_model host = { .has_vendor = true, .f7_ebx = 0x10 };
	char err[256];

	(void)state;
	memcpy(guest.vendor, "GenuineIntel", 13);
	memcpy(host.vendor, "AuthenticAMD", 13);
	assert_int_equal(mig_cpu_check(&guest, &host, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the source's CPU vendor GenuineIntel differs from this host's "
				 "AuthenticAMD");
	memcpy(host.vendor, "GenuineIntel", 13);
	assert_int_equal(mig_cpu_check(&guest, &host, err, sizeof(err)), 0);
	host.f7_ebx = 0;
	assert_int_equal(mig_cpu_check(&guest, &host, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "this host's CPU lacks features the guest uses (CPUID 7.ebx bits "
				 "0x10); migrate to a host with the same CPU or a newer one");
	host.f7_ebx = 0x10;
	/* Leaves with an index and above 0x80000000 are named as such. */
	guest.xsave1_eax = 0x8;
	assert_int_equal(mig_cpu_check(&guest, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "CPUID 0xd.1.eax bits 0x8)"));
	guest.xsave1_eax = 0;
	guest.e1_edx = 1U << 29;
	assert_int_equal(mig_cpu_check(&guest, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "CPUID 0x80000001.edx bits 0x20000000)"));
	host.has_vendor = false;
	assert_int_equal(mig_cpu_check(&guest, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no vendor leaf"));
}

/* A PSK file with content text and mode; its path in path. */
static void write_psk(char *path, size_t len, const char *text, mode_t mode)
{
	FILE *f;

	snprintf(path, len, "/tmp/cvisor-psk-%d", (int)getpid());
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_tls_config(void **state)
{
	static const char key[] = "cvisor:000102030405060708090a0b0c0d0e0f"
				  "101112131415161718191a1b1c1d1e1f\n";
	struct migrate_tls t = { 0 };
	char path[64], err[512];

	(void)state;
	assert_int_equal(migrate_tls_flag(&t, "--insecure", NULL, err, sizeof(err)), 2);
	assert_int_equal(migrate_tls_flag(&t, "--tls-psk", NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(migrate_tls_flag(&t, "--disk", "x", err, sizeof(err)), 0);
	/* Plain: loopback, or --insecure. */
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", false, err, sizeof(err)), 0);
	t.insecure = false;
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "10.0.0.2:1 is not a loopback address"));
	assert_int_equal(migrate_tls_check(&t, "127.0.0.1:1", true, err, sizeof(err)), 0);
	assert_int_equal(migrate_tls_check(&t, "[::1]:1", true, err, sizeof(err)), 0);
	assert_int_equal(migrate_tls_check(&t, "0.0.0.0:1", true, err, sizeof(err)), -EINVAL);
	/* A good key, then others may read it, then a short one. */
	write_psk(path, sizeof(path), key, 0600);
	assert_int_equal(migrate_tls_flag(&t, "--tls-psk", path, err, sizeof(err)), 1);
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", false, err, sizeof(err)), 0);
	assert_string_equal(t.psk_file, path);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", false, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "group or others may access it (mode 0640): chmod 600"));
	write_psk(path, sizeof(path), "cvisor:0011\n", 0600);
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the key must be 32 bytes (64 hex digits), not 4 digits"));
	write_psk(path, sizeof(path), "no identity here\n", 0600);
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "want one line IDENTITY:HEXKEY"));
	unlink(path);
	/* Not both. */
	t.creds_dir = "/tmp";
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "give one of them"));
	t.psk_file = NULL;
	assert_int_equal(migrate_tls_check(&t, "10.0.0.2:1", true, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no readable ca-cert.pem (a target needs"));
	migrate_tls_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_addr_and_args),
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_progress_lines),
		cmocka_unit_test(test_incoming_flags),
		cmocka_unit_test(test_incoming_check),
		cmocka_unit_test(test_target_resources),
		cmocka_unit_test(test_dst_disks),
		cmocka_unit_test(test_memsum),
		cmocka_unit_test(test_cpu_wording),
		cmocka_unit_test(test_tls_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
