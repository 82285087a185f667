/* test_snapshot.c - the snapshot sections and files without KVM: CONFIG
 * written by hand from the layout documented in src/snapshot/format.c and
 * read back; every malformed payload refused with a message; the sparse
 * memory file (only pages with data written, at their offsets, holes
 * elsewhere, also from RAM that is itself mapped from a memory file); and
 * snapshot_open's checks of the pair FILE / FILE.mem. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/config.h"
#include "cvisor/guest_mem.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/snapshot.h"
#include "cvisor/vm.h"

#define MEM (16ULL << 20)
#define PAGE 4096

static void put_str(struct state_buf *b, const char *s)
{
	state_put_u8(b, s != NULL);
	state_put_u16(b, s ? (uint16_t)strlen(s) : 0);
	if (s)
		state_put_bytes(b, s, strlen(s));
}

/* What a payload to build looks like; tests change one thing at a time. */
struct shape {
	uint16_t config_version;
	uint16_t machine_version; /* 0 for version 1 */
	uint8_t shim_area;	  /* MACHINE version 2's last byte */
	uint8_t platform;	  /* MACHINE version 3's last byte */
	uint32_t ncpus;
	uint64_t machine_ram;
	const char *disk;
	unsigned int ndisks;
	bool two_configs, no_machine, no_kstate, trailing, extra_section;
};

static const struct shape good = {
	.config_version = 1, .ncpus = 2, .machine_ram = MEM, .disk = "/img,readonly", .ndisks = 1
};

static void put_config(struct state_buf *b, const struct shape *s)
{
	size_t at = snap_section_begin(b, SNAP_SEC_CONFIG, s->config_version);

	state_put_u64(b, MEM);
	state_put_u32(b, s->ncpus);
	state_put_u8(b, 2); /* emulated_host off */
	state_put_u32(b, 100);
	state_put_u32(b, 150);
	state_put_u64(b, 0);
	put_str(b, "/k.elf");
	put_str(b, NULL);
	put_str(b, "spin=5");
	put_str(b, NULL);
	state_put_u8(b, 1); /* mmio */
	state_put_u8(b, 1); /* rng */
	state_put_u8(b, 0);
	state_put_u64(b, 0);
	put_str(b, NULL);
	state_put_u32(b, s->ndisks);
	for (unsigned int i = 0; i < s->ndisks; i++)
		put_str(b, s->disk);
	state_put_u32(b, 1);
	put_str(b, "user");
	if (s->trailing)
		state_put_u8(b, 0);
	snap_section_end(b, at);
}

static void make_payload(struct state_buf *b, const struct shape *s)
{
	size_t at;

	memset(b, 0, sizeof(*b));
	put_config(b, s);
	if (s->two_configs)
		put_config(b, s);
	if (!s->no_machine) {
		at = snap_section_begin(b, SNAP_SEC_MACHINE,
					s->machine_version ? s->machine_version : 1);
		state_put_u64(b, s->machine_ram);
		state_put_u32(b, PAGE);
		state_put_u32(b, s->ncpus);
		state_put_u8(b, 0);
		state_put_u32(b, 1);
		state_put_u64(b, 0);
		state_put_u64(b, s->machine_ram);
		state_put_u64(b, 0);
		state_put_u32(b, 0); /* no CPUID entries */
		if (s->machine_version >= 2)
			state_put_u8(b, s->shim_area);
		if (s->machine_version >= 3)
			state_put_u8(b, s->platform);
		snap_section_end(b, at);
	}
	if (!s->no_kstate) {
		at = snap_section_begin(b, SNAP_SEC_KSTATE, 1);
		state_put_u32(b, 1);
		snap_section_end(b, at);
	}
	if (s->extra_section) {
		at = snap_section_begin(b, 9, 1);
		snap_section_end(b, at);
	}
	assert_int_equal(b->err, 0);
}

static void test_config_round_trip(void **state)
{
	struct shape shape;
	struct state_buf b;
	struct vm_config cfg;
	char err[256];
	uint64_t ram = 0;

	(void)state;
	make_payload(&b, &good);
	config_init(&cfg);
	assert_int_equal(snapshot_config_load(b.data, b.len, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.mem_size, MEM);
	assert_int_equal(cfg.ncpus, 2);
	assert_int_equal(cfg.quirks, CONFIG_QUIRKS_OFF);
	assert_int_equal(cfg.cpu_cap, 150);
	assert_string_equal(cfg.kernel, "/k.elf");
	assert_null(cfg.initrd);
	assert_string_equal(cfg.cmdline, "spin=5");
	assert_int_equal(cfg.devices.transport, VIRTIO_TRANSPORT_MMIO);
	assert_int_equal(devices_count(&cfg.devices, devices_type("rng")), 1);
	assert_int_equal(devices_count(&cfg.devices, devices_type("balloon")), 0);
	assert_int_equal(devices_count(&cfg.devices, devices_type("vsock")), 0);
	assert_int_equal(devices_count(&cfg.devices, devices_type("disk")), 1);
	assert_string_equal(devices_spec(&cfg.devices, devices_type("disk"), 0), "/img,readonly");
	assert_int_equal(devices_count(&cfg.devices, devices_type("net")), 1);
	assert_string_equal(devices_spec(&cfg.devices, devices_type("net"), 0), "user");
	assert_null(cfg.name);
	config_free(&cfg);
	assert_int_equal(snapshot_ram_size(b.data, b.len, &ram, err, sizeof(err)), 0);
	assert_int_equal(ram, MEM);
	state_buf_free(&b);

	/* CONFIG and MACHINE alone (snapshot_config_save) are enough. */
	shape = good;
	shape.no_kstate = true;
	make_payload(&b, &shape);
	config_init(&cfg);
	assert_int_equal(snapshot_config_load(b.data, b.len, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.ncpus, 2);
	config_free(&cfg);
	state_buf_free(&b);
}

/* CONFIG version 2 is the canonical JSON config that config.c's field
 * table writes (snapshot_config_save, as `cvisor save` and a migration
 * source run it) and config_apply_json reads back. */
static void test_config_v2_round_trip(void **state)
{
	static struct vm vm;
	char *argv[] = { "run",	     "--kernel", "/k",	   "--cmdline", "a \"b\"",
			 "--memory", "16388K",	 "--cpus", "3",		"--cpu-cap",
			 "50",	     "--virtio", "mmio",   "--disk",	"/a,readonly",
			 "--disk",   "/b",	 "--rng",  "--balloon", "64",
			 "--vsock",  "5,uds=/s", "--name", "n",		"-d" };
	struct cv_error e = { 0 };
	struct vm_config c = { 0 }, back = { 0 };
	struct state_buf b = { 0 };
	char err[256];

	(void)state;
	config_init(&c);
	assert_int_equal(config_apply_flags(ARRAY_SIZE(argv), argv, &c, &e), 0);
	vm.cfg = &c;
	assert_int_equal(devices_config_copy(&vm.devcfg, &c.devices), 0);
	/* The VM's devices are written, as `cvisor set` left them. */
	assert_int_equal(devices_set_spec(&vm.devcfg, devices_type("disk"), 1, "/b,bw=10M"), 0);
	vm.ncpus = c.ncpus;
	vm.mem.ram_size = c.mem_size;
	assert_non_null(vm.cpuid = calloc(1, sizeof(*vm.cpuid)));
	assert_int_equal(snapshot_config_save(&vm, &b), 0);
	config_init(&back);
	assert_int_equal(snapshot_config_load(b.data, b.len, &back, err, sizeof(err)), 0);
	assert_string_equal(back.kernel, "/k");
	assert_null(back.initrd);
	assert_string_equal(back.cmdline, "a \"b\"");
	assert_int_equal(back.mem_size, 16388ULL << 10);
	assert_int_equal(back.ncpus, 3);
	assert_int_equal(back.cpu_cap, 50);
	assert_int_equal(back.cpu_weight, CONFIG_DEFAULT_CPU_WEIGHT);
	assert_int_equal(back.memory_limit, 0);
	assert_int_equal(back.devices.transport, VIRTIO_TRANSPORT_MMIO);
	assert_int_equal(back.devices.n, c.devices.n);
	for (unsigned int i = 0; i < c.devices.n; i++) {
		assert_ptr_equal(back.devices.dev[i].type, c.devices.dev[i].type);
		assert_string_equal(back.devices.dev[i].spec, vm.devcfg.dev[i].spec);
	}
	assert_string_equal(devices_spec(&back.devices, devices_type("disk"), 1), "/b,bw=10M");
	/* the name and -d belong to this run, not to the snapshot */
	assert_null(back.name);
	assert_false(back.detach);
	config_free(&back);
	config_free(&c);
	devices_config_free(&vm.devcfg);
	free(vm.cpuid);
	state_buf_free(&b);
}

/* Each shape must be refused, with a message containing want. */
static void refused(const struct shape *s, const char *want)
{
	struct state_buf b;
	struct vm_config cfg;
	char err[256] = "";

	make_payload(&b, s);
	config_init(&cfg);
	assert_int_equal(snapshot_config_load(b.data, b.len, &cfg, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("error '%s' does not contain '%s'", err, want);
	config_free(&cfg);
	state_buf_free(&b);
}

static void test_config_refused(void **state)
{
	struct shape s;

	(void)state;
	s = good, s.config_version = 3;
	refused(&s, "CONFIG section version 3 is not supported (this cvisor reads 1 to 2)");
	s = good, s.two_configs = true;
	refused(&s, "two CONFIG sections");
	s = good, s.no_machine = true;
	refused(&s, "no MACHINE section");
	s = good, s.extra_section = true;
	refused(&s, "unknown section id 9");
	s = good, s.trailing = true;
	refused(&s, "CONFIG section is malformed");
	s = good, s.ncpus = 0;
	refused(&s, "out of range");
	s = good, s.ndisks = devices_type("disk")->max + 1;
	refused(&s, "CONFIG section is malformed");
	s = good, s.disk = NULL;
	refused(&s, "CONFIG section is malformed");
}

/* MACHINE version 2 adds the syscall shim's area flag; version 1 still
 * loads (tests/data/snapshot-v1), and 3 is from a newer cvisor. */
static void test_machine_versions(void **state)
{
	struct state_buf b;
	char err[256] = "";
	uint64_t ram = 0;
	struct shape s;

	(void)state;
	for (uint8_t area = 0; area <= 1; area++) {
		s = good, s.machine_version = 2, s.shim_area = area;
		make_payload(&b, &s);
		assert_int_equal(snapshot_ram_size(b.data, b.len, &ram, err, sizeof(err)), 0);
		assert_int_equal(ram, MEM);
		state_buf_free(&b);
	}
	s = good, s.machine_version = 2, s.shim_area = 2;
	make_payload(&b, &s);
	assert_int_equal(snapshot_ram_size(b.data, b.len, &ram, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "MACHINE section is malformed"));
	state_buf_free(&b);
	/* Version 3 adds the platform byte (VM_PLATFORM_*, checked against the
	 * CONFIG when the machine is built); version 4 is not read. */
	s = good, s.machine_version = 3, s.platform = VM_PLATFORM_FW_CFG | VM_PLATFORM_DEBUG_EXIT;
	make_payload(&b, &s);
	assert_int_equal(snapshot_ram_size(b.data, b.len, &ram, err, sizeof(err)), 0);
	state_buf_free(&b);
	s = good, s.machine_version = 4;
	refused(&s, "MACHINE section version 4 is not supported (this cvisor reads 1 to 3)");
}

/* A MACHINE platform byte that disagrees with the CONFIG is refused
 * before the machine is touched. */
static void test_platform_refused(void **state)
{
	static const unsigned int kernel_bad[] = { VM_PLATFORM_FIRMWARE | VM_PLATFORM_FW_CFG,
						   VM_PLATFORM_DEBUG_EXIT, 8, 0xff };
	static const unsigned int fw_bad[] = { 0, VM_PLATFORM_FIRMWARE,
					       VM_PLATFORM_FW_CFG | VM_PLATFORM_DEBUG_EXIT,
					       VM_PLATFORM_ALL };
	struct vm_config cfg;
	struct vm vm;
	char err[256];

	(void)state;
	config_init(&cfg);
	memset(&vm, 0, sizeof(vm));
	vm.cfg = &cfg;
	for (size_t i = 0; i < ARRAY_SIZE(kernel_bad); i++) {
		err[0] = '\0';
		assert_int_equal(vm_platform_restore(&vm, kernel_bad[i], err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "do not match its CONFIG (kernel)"));
	}
	assert_int_equal(vm_platform_restore(&vm, 0, err, sizeof(err)), 0);
	cfg.firmware = "/bios.bin";
	for (size_t i = 0; i < ARRAY_SIZE(fw_bad); i++)
		assert_int_equal(vm_platform_restore(&vm, fw_bad[i], err, sizeof(err)), -EINVAL);
	assert_int_equal(vm_platform(&vm), VM_PLATFORM_FIRMWARE);
}

static void test_config_truncated(void **state)
{
	struct state_buf b;
	struct vm_config cfg;
	char err[256];

	struct shape shape = good;

	(void)state;
	/* CONFIG and MACHINE only: every cut of it is refused, never read
	 * past (a cut between them leaves no MACHINE). */
	shape.no_kstate = true;
	make_payload(&b, &shape);
	for (size_t n = 0; n < b.len; n++) {
		uint8_t *copy = malloc(n + 1);

		memcpy(copy, b.data, n);
		config_init(&cfg);
		assert_int_equal(snapshot_config_load(copy, n, &cfg, err, sizeof(err)), -EINVAL);
		config_free(&cfg);
		free(copy);
	}
	state_buf_free(&b);
}

static char *tmp_path(void)
{
	char *p = strdup("/tmp/cvisor-snapshot-test.XXXXXX");
	int fd = mkstemp(p);

	assert_true(fd >= 0);
	close(fd);
	return p;
}

static const uint64_t data_pages[] = { 0, 5, 1000, MEM / PAGE - 1 };

static void check_mem_file(const char *path, const uint8_t *expect)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	uint8_t *m;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, MEM);
	/* Sparse: a few data pages, not 16 MiB. */
	assert_true((uint64_t)st.st_blocks * 512 < 1024 * 1024);
	m = mmap(NULL, MEM, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(m != MAP_FAILED);
	assert_memory_equal(m, expect, MEM);
	munmap(m, MEM);
	close(fd);
}

static void test_mem_file(void **state)
{
	struct guest_mem gm, restored;
	struct snapshot_mem_digest digest, digest2, got;
	uint8_t *expect = calloc(1, MEM);
	char *path = tmp_path(), *path2 = tmp_path();
	uint64_t written;
	int fd;

	(void)state;
	assert_int_equal(guest_mem_init(&gm, MEM), 0);
	for (size_t i = 0; i < ARRAY_SIZE(data_pages); i++)
		for (int k = 0; k < PAGE; k += 512)
			gm.base[data_pages[i] * PAGE + k] = expect[data_pages[i] * PAGE + k] =
				(uint8_t)(i + 1);
	gm.base[7 * PAGE] = 0; /* present, all zeros: not written */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(snapshot_mem_write(&gm, fd, &written, &digest), 0);
	close(fd);
	assert_int_equal(written, ARRAY_SIZE(data_pages) * PAGE);
	check_mem_file(path, expect);

	/* RAM mapped from that file, one page written: saving it again must
	 * keep the file's pages the guest never touched. */
	fd = open(path, O_RDONLY);
	assert_int_equal(guest_mem_init_file(&restored, fd, MEM), 0);
	close(fd);
	restored.base[6 * PAGE + 8] = expect[6 * PAGE + 8] = 0x5a;
	fd = open(path2, O_WRONLY | O_TRUNC);
	assert_int_equal(snapshot_mem_write(&restored, fd, &written, &digest2), 0);
	close(fd);
	assert_int_equal(written, (ARRAY_SIZE(data_pages) + 1) * PAGE);
	check_mem_file(path2, expect);
	/* Copy-on-write: the file itself is unchanged. */
	fd = open(path, O_RDONLY);
	{
		uint8_t byte = 1;

		assert_int_equal(pread(fd, &byte, 1, 6 * PAGE + 8), 1);
		assert_int_equal(byte, 0);
	}
	/* The digest read back from each file is the one written; a file of
	 * zeros (right-sized) or the other save's does not match. */
	assert_int_equal(digest.pages, ARRAY_SIZE(data_pages));
	assert_int_equal(snapshot_mem_digest(fd, &got), 0);
	assert_true(got.pages == digest.pages && got.crc == digest.crc);
	close(fd);
	fd = open(path2, O_RDONLY);
	assert_int_equal(snapshot_mem_digest(fd, &got), 0);
	assert_true(got.pages == digest2.pages && got.crc == digest2.crc);
	assert_true(digest2.crc != digest.crc);
	close(fd);
	fd = open(path2, O_RDWR | O_TRUNC);
	assert_int_equal(ftruncate(fd, MEM), 0);
	assert_int_equal(snapshot_mem_digest(fd, &got), 0);
	assert_true(got.pages == 0 && got.crc == 0);
	close(fd);
	guest_mem_destroy(&restored);
	guest_mem_destroy(&gm);
	unlink(path);
	unlink(path2);
	free(path);
	free(path2);
	free(expect);
}

/* path with the payload of shape s, and path.mem of mem_size bytes (0: none). */
static void write_pair(const char *path, const struct shape *s, uint64_t mem_size)
{
	struct state_buf b;
	char mem[512];
	int fd;

	make_payload(&b, s);
	assert_int_equal(snap_file_write(path, &b), 0);
	state_buf_free(&b);
	snprintf(mem, sizeof(mem), "%s.mem", path);
	unlink(mem);
	if (!mem_size)
		return;
	fd = open(mem, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)mem_size), 0);
	close(fd);
}

static int open_pair(const char *path, char *err, size_t errlen)
{
	struct vm_config cfg;
	uint8_t *payload;
	size_t len;
	int fd, r;

	config_init(&cfg);
	r = snapshot_open(path, &cfg, &payload, &len, &fd, err, errlen);
	if (!r) {
		assert_true(fd >= 0);
		assert_int_equal(cfg.mem_size, MEM);
		close(fd);
		free(payload);
		config_free(&cfg);
	}
	return r;
}

static void test_open(void **state)
{
	char *path = tmp_path(), mem[512], err[512];
	struct shape s = good;

	(void)state;
	snprintf(mem, sizeof(mem), "%s.mem", path);
	write_pair(path, &good, MEM);
	assert_int_equal(open_pair(path, err, sizeof(err)), 0);
	write_pair(path, &good, MEM / 2);
	assert_int_equal(open_pair(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a regular file of 16777216 bytes"));
	write_pair(path, &good, 0);
	assert_int_equal(open_pair(path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "its memory file"));
	s.machine_ram = MEM * 2;
	write_pair(path, &s, MEM);
	assert_int_equal(open_pair(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "disagree on the RAM size"));
	unlink(mem);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_round_trip),
		cmocka_unit_test(test_config_v2_round_trip),
		cmocka_unit_test(test_config_refused),
		cmocka_unit_test(test_machine_versions),
		cmocka_unit_test(test_platform_refused),
		cmocka_unit_test(test_config_truncated),
		cmocka_unit_test(test_mem_file),
		cmocka_unit_test(test_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
