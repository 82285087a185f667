/* test_api_config.c - vm.create's body (Cloud Hypervisor's VmConfig) to
 * struct vm_config (src/api/vmconfig.c): both kernel forms, the devices
 * as the device table's specs, and every field cvisor cannot honour or a
 * contradiction refused with the field's name. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/api.h"

static struct vm_config c;
static struct api_vm_io io;
static char err[512];

static int create(const char *body)
{
	config_free(&c);
	config_init(&c);
	err[0] = '\0';
	return api_vm_config(body, strlen(body), &c, &io, err, sizeof(err));
}

static const char *spec(const char *type, unsigned int i)
{
	return devices_spec(&c.devices, devices_type(type), i);
}

static void test_payload_form(void **state)
{
	(void)state;
	assert_int_equal(create("{\"cpus\":{\"boot_vcpus\":2,\"max_vcpus\":2},"
				"\"memory\":{\"size\":536870912,\"mergeable\":true},"
				"\"payload\":{\"kernel\":\"/k\",\"cmdline\":\"console=hvc0\","
				"\"initramfs\":\"/rd\"},"
				"\"disks\":[{\"path\":\"/a.img\",\"readonly\":true},"
				"{\"path\":\"/b.img\",\"readonly\":false,\"direct\":true,"
				"\"num_queues\":2}],"
				"\"net\":[{\"tap\":\"tap0\",\"mac\":\"52:54:00:00:00:01\"}],"
				"\"rng\":{\"src\":\"/dev/urandom\"},"
				"\"vsock\":{\"cid\":3,\"socket\":\"/tmp/v.sock\"},"
				"\"balloon\":{\"size\":67108864},"
				"\"serial\":{\"mode\":\"Pty\"},\"console\":{\"mode\":\"Off\"}}"),
			 0);
	assert_string_equal(c.kernel, "/k");
	assert_string_equal(c.initrd, "/rd");
	assert_string_equal(c.cmdline, "console=hvc0");
	assert_int_equal(c.ncpus, 2);
	assert_int_equal(c.mem_size, 512ULL << 20);
	assert_true(c.ksm);
	assert_string_equal(spec("disk", 0), "/a.img,readonly");
	assert_string_equal(spec("disk", 1), "/b.img,direct,queues=2");
	assert_string_equal(spec("net", 0), "tap=tap0,mac=52:54:00:00:00:01");
	assert_int_equal(devices_count(&c.devices, devices_type("rng")), 1);
	assert_string_equal(spec("vsock", 0), "3,uds=/tmp/v.sock");
	assert_string_equal(spec("balloon", 0), "67108864b");
	assert_string_equal(io.serial_mode, "Pty");
	assert_string_equal(io.console_mode, "Off");
}

/* libvirt 9.0 (and 11.3 below version 28): top-level kernel, cmdline,
 * initramfs; Cloud Hypervisor's defaults where nothing is given. */
static void test_old_form(void **state)
{
	(void)state;
	assert_int_equal(create("{\"kernel\":{\"path\":\"/k\"},\"cmdline\":{\"args\":\"quiet\"},"
				"\"initramfs\":{\"path\":\"/rd\"},\"cpus\":{\"boot_vcpus\":1}}"),
			 0);
	assert_string_equal(c.kernel, "/k");
	assert_string_equal(c.initrd, "/rd");
	assert_string_equal(c.cmdline, "quiet");
	assert_int_equal(c.mem_size, 512ULL << 20);
	assert_string_equal(io.serial_mode, "Null");
	assert_string_equal(io.console_mode, "Tty");
	assert_int_equal(create("{\"payload\":{\"kernel\":\"/k\"},"
				"\"serial\":{\"mode\":\"File\",\"file\":\"/tmp/s.log\"}}"),
			 0);
	assert_string_equal(io.serial_mode, "File");
	assert_string_equal(io.serial_file, "/tmp/s.log");
}

/* Each refused with a message that names the field. */
static void test_refused(void **state)
{
	static const struct {
		const char *body, *msg;
	} bad[] = {
		{ "", "not one JSON object" },
		{ "{\"payload\":{\"kernel\":\"/k\"}", "not one JSON object" },
		{ "{\"payload\":{\"kernel\":\"/k\"}} x", "not one JSON object" },
		{ "[1]", "vm.create body: must be an object" },
		{ "{\"memory\":{\"size\":268435456}}", "payload.kernel: missing" },
		{ "{\"payload\":{\"kernel\":7}}", "payload.kernel: must be a string" },
		{ "{\"payload\":{\"kernel\":\"/k\",\"firmware\":\"/f\"}}", "payload.firmware" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"cpus\":{\"boot_vcpus\":0}}",
		  "cpus.boot_vcpus: must be at least 1" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"cpus\":{\"boot_vcpus\":-1}}",
		  "cpus.boot_vcpus: -1 is out of range" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"cpus\":{\"boot_vcpus\":\"2\"}}",
		  "cpus.boot_vcpus: must be an integer" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"cpus\":{\"boot_vcpus\":1,\"max_vcpus\":4}}",
		  "CPU hotplug unsupported" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"cpus\":{\"boot_vcpus\":999}}",
		  "cpus.boot_vcpus" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"cpus\":{\"boot_vcpus\":1,\"topology\":{}}}",
		  "cpus.topology: not supported" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"memory\":{\"size\":4096}}", "memory.size: " },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"memory\":{\"size\":268435457}}",
		  "multiple of 4 KiB" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"memory\":{\"size\":268435456,"
		  "\"hotplug_size\":1073741824}}",
		  "memory.hotplug_size: not supported by cvisor (memory hotplug)" },
		{ "{\"payload\":{\"kernel\":\"/"
		  "k\"},\"memory\":{\"size\":268435456,\"shared\":true}}",
		  "memory.shared: true is not supported" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"memory\":{}}", "memory.size: missing" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"disks\":[{\"readonly\":true}]}",
		  "disks[0].path: missing" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"disks\":[{\"path\":\"/a,b\"}]}",
		  "disks[0].path" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"disks\":[{\"path\":\"/"
		  "a\",\"queue_size\":64}]}",
		  "disks[0].queue_size" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"disks\":[{\"path\":\"/"
		  "a\",\"num_queues\":0}]}",
		  "disks[0]" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"disks\":{}}", "disks: must be an array" },
		{ "{\"payload\":{\"kernel\":\"/"
		  "k\"},\"net\":[{\"tap\":\"t0\",\"ip\":\"10.0.0.1\"}]}",
		  "net[0].ip: not supported" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"net\":[{\"mac\":\"52:54:00:00:00:01\"}]}",
		  "net[0].tap: missing" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"net\":[{\"tap\":\"t0\",\"mac\":\"zz\"}]}",
		  "net[0]" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"rng\":{\"src\":\"/dev/hwrng\"}}", "rng.src" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"vsock\":{\"cid\":3}}", "vsock: needs cid" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"vsock\":{\"cid\":1,\"socket\":\"/v\"}}",
		  "vsock" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"balloon\":{\"size\":1,"
		  "\"deflate_on_oom\":true}}",
		  "balloon.deflate_on_oom" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"serial\":{\"mode\":\"Socket\"}}",
		  "serial.mode: \"Socket\"" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"serial\":{\"mode\":\"File\"}}",
		  "serial.file: mode File needs a file" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"console\":{\"mode\":\"File\",\"file\":\"/"
		  "f\"}}",
		  "console.file" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"devices\":[{\"path\":\"/sys/bus/pci/x\"}]}",
		  "devices: not supported by cvisor (VFIO" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"fs\":[{\"tag\":\"t\",\"socket\":\"/s\"}]}",
		  "fs: not supported by cvisor (virtio-fs)" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"pmem\":[{}]}", "pmem: not supported" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"numa\":[{}]}", "numa: not supported" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"frobnicate\":1}",
		  "frobnicate: not supported" },
		{ "{\"payload\":{\"kernel\":\"/k\"},\"platform\":{\"num_pci_segments\":2}}",
		  "platform.num_pci_segments" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = create(bad[i].body);

		if (r != -EINVAL || !strstr(err, bad[i].msg))
			fail_msg("body %s: got %d \"%s\", want -EINVAL and \"%s\"", bad[i].body, r,
				 err, bad[i].msg);
	}
	/* Empty lists of what cvisor lacks ask for nothing. */
	assert_int_equal(create("{\"payload\":{\"kernel\":\"/k\"},\"fs\":[],\"devices\":null,"
				"\"iommu\":false,\"platform\":{\"num_pci_segments\":1}}"),
			 0);
	config_free(&c);
}

/* vm.add-net's NetConfig with n descriptors, for NIC index. */
static int add_net(const char *body, unsigned int n, unsigned int index, char *sp, char *id)
{
	err[0] = '\0';
	return api_net_config(body, strlen(body), n, index, &io, sp, 256, id, err, sizeof(err));
}

static void test_add_net(void **state)
{
	static const struct {
		const char *body;
		unsigned int nfds;
		const char *msg;
	} bad[] = {
		{ "{\"mac\":\"52:54:00:00:00:01\"}", 0, "no tap: pass its descriptor" },
		{ "{\"mac\":\"52:54:00:00:00:01\"}", 3, "3 descriptors came with the request" },
		{ "{\"num_queues\":4}", 2, "num_queues: 4 is not supported" },
		{ "{\"tap\":\"t0\"}", 1, "both tap \"t0\" and a descriptor" },
		{ "{\"fds\":[3,4]}", 1, "fds: 2 listed, 1 passed" },
		{ "{\"ip\":\"10.0.0.1\"}", 1, "vm.add-net.ip: not supported" },
		{ "{\"mtu\":1400}", 1, "vm.add-net.mtu: not supported" },
		{ "{\"id\":\"_net0\"}", 1, "not starting with '_'" },
		{ "{\"id\":\"disk_a\"}", 1, "already the id of another device" },
		{ "{\"mac\":\"01:00:00:00:00:01\"}", 1, "bad mac" },
		{ "{\"mac\":", 1, "not one JSON object" },
		{ "[1]", 1, "vm.add-net body: must be an object" },
	};
	char sp[256], id[API_ID_MAX], buf[API_ID_MAX];

	(void)state;
	assert_int_equal(create("{\"payload\":{\"kernel\":\"/k\"},\"disks\":[{\"path\":\"/d\","
				"\"id\":\"disk_a\"},{\"path\":\"/e\"}]}"),
			 0);
	assert_string_equal(api_dev_id(&io, "disk0", buf), "disk_a");
	assert_string_equal(api_dev_id(&io, "disk1", buf), "_disk1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = add_net(bad[i].body, bad[i].nfds, 0, sp, id);

		if (r != -EINVAL || !strstr(err, bad[i].msg))
			fail_msg("body %s, %u fds: got %d \"%s\", want -EINVAL and \"%s\"",
				 bad[i].body, bad[i].nfds, r, err, bad[i].msg);
	}
	/* What libvirt 11.3 sends: one descriptor per queue pair. */
	assert_int_equal(add_net("{\"id\":\"net_0\",\"mac\":\"52:54:00:aa:bb:cc\","
				 "\"num_queues\":2}",
				 1, 0, sp, id),
			 0);
	assert_string_equal(sp, "tapfd,mac=52:54:00:aa:bb:cc");
	assert_string_equal(id, "net_0");
	/* Kata's form lists the sender's numbers; a tap by name takes none. */
	assert_int_equal(add_net("{\"fds\":[7],\"queue_size\":256}", 1, 1, sp, id), 0);
	assert_string_equal(sp, "tapfd");
	assert_string_equal(id, "");
	assert_int_equal(add_net("{\"tap\":\"vnet0\"}", 0, 1, sp, id), 0);
	assert_string_equal(sp, "tap=vnet0");
	/* vm.create takes no descriptors. */
	assert_int_equal(create("{\"payload\":{\"kernel\":\"/k\"},\"net\":[{\"tap\":\"t\","
				"\"fds\":[3]}]}"),
			 -EINVAL);
	assert_non_null(strstr(err, "net[0].fds: not supported by cvisor (tap descriptors come"));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload_form),
		cmocka_unit_test(test_old_form),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_add_net),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
