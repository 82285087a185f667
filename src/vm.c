/* vm.c - build a VM from its configuration: KVM, memory, irqchip, devices,
 * firmware tables, kernel, vCPUs; and tear it down. */
#include "cvisor/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "cvisor/acpi.h"
#include "cvisor/firmware.h"
#include "cvisor/kvm.h"
#include "cvisor/mptable.h"
#include "cvisor/pty.h"
#include "cvisor/snapshot.h"
#include "cvisor/syscall_shim.h"
#include "cvisor/vcpu.h"
#include "cvisor/x86.h"

/* KVM on VT-x needs three pages for the real-mode TSS and the identity map
 * of unrestricted-guest-less CPUs; put them in the hole below the BIOS.
 * A --firmware image may fill the top 16 MiB: then below it, where QEMU
 * puts them. */
#define KVM_TSS_ADDR 0xfffbd000
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000
#define KVM_TSS_ADDR_FW 0xfeffd000
#define KVM_IDENTITY_MAP_ADDR_FW 0xfeffc000

static_assert(CONFIG_MAX_CPUS <= DIRTY_MAX_RINGS, "a dirty ring for every vCPU");

struct file_map {
	const uint8_t *data;
	size_t len;
};

/* The kernel or initrd the user named: every failure is CV_EXIT_USAGE. */
static int map_file(const char *what, const char *path, struct file_map *m, struct cv_error *e)
{
	struct stat st;
	const char *why;
	int fd, r = cv_open_regular(path, O_RDONLY, CV_OPEN_NONEMPTY, &fd, &st, &why);
	void *p;

	if (r)
		return cv_fail(e, CV_EXIT_USAGE, r, "--%s %s: %s", what, path, why);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return cv_fail(e, CV_EXIT_USAGE, -errno, "--%s %s: %s", what, path,
			       strerror(errno));
	m->data = p;
	m->len = (size_t)st.st_size;
	return 0;
}

static void unmap_file(struct file_map *m)
{
	if (m->data)
		munmap((void *)m->data, m->len);
	m->data = NULL;
}

/* How long a vCPU waits for a console reader before output is dropped. */
#define CONSOLE_STALL_MS 200

/* Device callbacks. They run with the device's lock held, on vCPU threads. */
static void uart_tx(void *ctx, const uint8_t *buf, size_t len)
{
	struct vm *vm = ctx;

	if (vm->cfg->serial == CONFIG_SERIAL_OFF)
		return;
	if (vm->serial_pty)
		pty_write(vm->serial_pty, buf, len);
	if (vm->console_write) {
		vm->console_write(vm->console_ctx, buf, len);
		return;
	}
	if (vm->serial_pty)
		return;
	/* A closed or stalled console must not stop the guest, nor hold the
	 * UART lock the main thread needs: wait a bounded time for room, then
	 * drop the output (once said). */
	while (len) {
		struct pollfd p = { .fd = vm->out_fd, .events = POLLOUT };
		ssize_t w;

		if (poll(&p, 1, CONSOLE_STALL_MS) <= 0 || !(p.revents & POLLOUT)) {
			if (!vm->console_stalled)
				cv_warn("console output is not being read; dropping it");
			vm->console_stalled = true;
			return;
		}
		w = write(vm->out_fd, buf, len);
		if (w <= 0) {
			if (w < 0 && errno == EINTR && !atomic_load(&vm->stop))
				continue;
			return;
		}
		buf += w;
		len -= (size_t)w;
	}
	vm->console_stalled = false;
}

static void uart_irq(void *ctx, int level)
{
	vm_set_irq(ctx, SERIAL8250_COM1_IRQ, level);
}

static void kbd_reset(void *ctx)
{
	vm_request_reset(ctx);
}

static void pm_event(void *ctx, enum acpi_pm_event ev)
{
	if (ev == ACPI_PM_POWEROFF)
		vm_request_stop(ctx, VM_STOP_POWEROFF, NULL);
	else
		vm_request_reset(ctx);
}

static void pm_irq(void *ctx, int level)
{
	vm_set_irq(ctx, ACPI_SCI_IRQ, level);
}

void vm_set_irq(struct vm *vm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };

	if (vm->cfg->irqchip == CONFIG_IRQCHIP_SPLIT) {
		ioapic_set_irq(&vm->ioapic, gsi, level);
		return;
	}
	if (kvm_ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		cv_debug("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

void vm_request_stop(struct vm *vm, enum vm_stop why, const char *msg)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;
	char lost[sizeof(vm->stop_msg)];

	/* A guest whose memory file was cut under it fails in whatever way
	 * it touches the lost pages (KVM_RUN's EFAULT, a triple fault): say
	 * what happened instead. */
	if ((why == VM_STOP_CRASH || why == VM_STOP_INTERNAL || why == VM_STOP_HOST) &&
	    snapshot_mem_lost(vm, lost, sizeof(lost))) {
		why = VM_STOP_MEMFILE;
		msg = lost;
	}
	if (!atomic_compare_exchange_strong(&vm->stop, &expected, (int)why))
		return;
	if (msg)
		snprintf(vm->stop_msg, sizeof(vm->stop_msg), "%s", msg);
	/* A vm_pause() waiting for vCPUs that will never park must see this. */
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->lock);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow with one write; nothing to do. */
	}
}

static void ioapic_deliver(void *ctx, uint64_t addr, uint32_t data)
{
	struct vm *vm = ctx;
	struct kvm_msi msi = { .address_lo = (uint32_t)addr,
			       .address_hi = (uint32_t)(addr >> 32),
			       .data = data };

	if (kvm_ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		cv_debug("KVM_SIGNAL_MSI %#llx/%#x: %s", (unsigned long long)addr, data,
			 strerror(errno));
}

static void ioapic_route(void *ctx, unsigned int pin, bool present, uint64_t addr, uint32_t data)
{
	struct vm *vm = ctx;
	int r = irq_set_pin(&vm->router, pin, present, addr, data);

	if (r)
		cv_warn("IOAPIC pin %u: KVM_SET_GSI_ROUTING: %s", pin, strerror(-r));
}

static const struct ioapic_ops ioapic_ops = {
	.deliver = ioapic_deliver,
	.route = ioapic_route,
};

static int setup_devices(struct vm *vm)
{
	int r;

	if (vm->cfg->irqchip == CONFIG_IRQCHIP_SPLIT) {
		ioapic_init(&vm->ioapic, (uint8_t)vm->ncpus, &ioapic_ops, vm);
		if ((r = bus_register(&vm->mmio, LAYOUT_IOAPIC, IOAPIC_MMIO_LEN, &ioapic_bus_ops,
				      &vm->ioapic, "ioapic")))
			return r;
	}

	serial8250_init(&vm->uart, uart_tx, uart_irq, vm);
	i8042_init(&vm->kbd, kbd_reset, vm);
	acpi_pm_init(&vm->pm, pm_event, pm_irq, vm);
	rtc_init(&vm->rtc, NULL, NULL);
	if ((r = bus_register(&vm->pio, SERIAL8250_COM1_BASE, 8, &serial8250_bus_ops, &vm->uart,
			      "com1")) ||
	    (r = bus_register(&vm->pio, I8042_DATA_PORT, 1, &i8042_data_ops, &vm->kbd, "i8042")) ||
	    (r = bus_register(&vm->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, &vm->kbd, "i8042")) ||
	    (r = bus_register(&vm->pio, RTC_PORT, RTC_PORT_LEN, &rtc_bus_ops, &vm->rtc, "rtc")) ||
	    (r = bus_register(&vm->pio, ACPI_PM_BASE, ACPI_PM_LEN, &acpi_pm_bus_ops, &vm->pm,
			      "acpi-pm")))
		return r;
	return 0;
}

void vm_acpi_config(const struct vm *vm, struct acpi_config *ac)
{
	*ac = (struct acpi_config){
		.ncpus = vm->ncpus,
		.lapic_addr = LAYOUT_LAPIC,
		.ioapic_addr = LAYOUT_IOAPIC,
		.ioapic_id = (uint8_t)vm->ncpus,
		.no_pic = vm->cfg->irqchip == CONFIG_IRQCHIP_SPLIT,
	};
}

static int setup_firmware_tables(struct vm *vm, uint64_t *rsdp)
{
	struct acpi_config ac;
	uint8_t *acpi = guest_mem_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_MAX);
	uint8_t *mp = guest_mem_ptr(&vm->mem, LAYOUT_MPTABLE, LAYOUT_MPTABLE_MAX);
	size_t used;
	int r;

	vm_acpi_config(vm, &ac);
	if (!acpi || !mp)
		return -E2BIG;
	if ((r = acpi_build(acpi, LAYOUT_ACPI_MAX, LAYOUT_ACPI, &ac, &used)))
		return r;
	if ((r = mptable_build(mp, LAYOUT_MPTABLE_MAX, LAYOUT_MPTABLE, vm->ncpus, LAYOUT_IOAPIC,
			       (uint8_t)vm->ncpus, &used)))
		return r;
	*rsdp = LAYOUT_ACPI;
	return 0;
}

/* The guest's command line: the user's, plus a serial console when the
 * user named none, plus the words an emulating host needs. */
static char *build_cmdline(const struct vm *vm)
{
	const char *user = vm->cfg->cmdline;
	const char *console = strstr(user, "console=") ? "" : "console=ttyS0 ";
	const char *quirks = vm->quirks.active ? x86_quirk_cmdline() : "";
	const char *dev = vm_devices_cmdline(vm);
	size_t n = strlen(console) + strlen(user) + strlen(quirks) + strlen(dev) + 3;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s%s%s%s%s", console, user, dev[0] ? " " : "", dev,
			 quirks[0] ? " " : "", quirks);
	return s;
}

static int load_kernel(struct vm *vm, struct boot_entry *entry, struct cv_error *e)
{
	struct file_map kernel = { 0 }, initrd = { 0 };
	struct boot_image img = { 0 };
	char err[256];
	char *cmdline = NULL;
	int r;

	if ((r = map_file("kernel", vm->cfg->kernel, &kernel, e)))
		return r;
	if (vm->cfg->initrd && (r = map_file("initrd", vm->cfg->initrd, &initrd, e)))
		goto out;
	if ((r = setup_firmware_tables(vm, &img.rsdp_gpa))) {
		cv_fail(e, CV_EXIT_FAIL, r, "building ACPI and MP tables: %s", strerror(-r));
		goto out;
	}
	cmdline = build_cmdline(vm);
	if (!cmdline) {
		r = cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
		goto out;
	}
	img.kernel = kernel.data;
	img.kernel_len = kernel.len;
	img.initrd = initrd.data;
	img.initrd_len = initrd.len;
	img.cmdline = cmdline;
	/* The syscall shim's pages are the guest's from its first instruction. */
	if (vm->shim.on) {
		img.low_ram_end = SYSCALL_SHIM_GPA;
		vm->shim.area = true;
	}
	r = boot_load(&vm->mem, &img, entry, err, sizeof(err));
	if (r)
		cv_fail(e, CV_EXIT_USAGE, r, "kernel %s: %s", vm->cfg->kernel, err);
out:
	free(cmdline);
	unmap_file(&kernel);
	unmap_file(&initrd);
	return r;
}

static int check_host_memory(const struct vm_config *cfg, struct cv_error *e)
{
	struct sysinfo si;

	if (sysinfo(&si) == 0) {
		uint64_t total = (uint64_t)si.totalram * si.mem_unit;

		if (cfg->mem_size > total)
			return cv_fail(e, CV_EXIT_USAGE, -E2BIG,
				       "--memory %lluM exceeds the host's %lluM of RAM",
				       (unsigned long long)(cfg->mem_size >> 20),
				       (unsigned long long)(total >> 20));
	}
	return 0;
}

static int create_vcpus(struct vm *vm, const struct boot_entry *entry, struct cv_error *e)
{
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int r;

		v->vm = vm;
		v->id = i;
		v->fd = kvm_ioctl_val(vm->vm_fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0)
			return cv_fail(e, CV_EXIT_FAIL, -errno, "creating vCPU %u: %s", i,
				       strerror(errno));
		v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
			      0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			return cv_fail(e, CV_EXIT_FAIL, -errno, "mapping vCPU %u: %s", i,
				       strerror(errno));
		}
		syscall_shim_vcpu_init(v);
		if ((r = dirty_rings_map(&vm->dirty_rings, i, v->fd)))
			return cv_fail(e, CV_EXIT_FAIL, r, "mapping vCPU %u's dirty ring: %s", i,
				       strerror(-r));
		if ((r = x86_vcpu_setup(v, entry)))
			return cv_fail(e, CV_EXIT_FAIL, r, "setting up vCPU %u: %s", i,
				       strerror(-r));
	}
	return 0;
}

static int create_vm_fd(struct vm *vm, struct cv_error *e)
{
	bool fw = vm->cfg->firmware != NULL;
	uint64_t identity = fw ? KVM_IDENTITY_MAP_ADDR_FW : KVM_IDENTITY_MAP_ADDR;

	vm->vm_fd = kvm_ioctl_val(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return cv_fail(e, CV_EXIT_FAIL, -errno,
			       "KVM_CREATE_VM: %s (is hardware virtualization enabled?)",
			       strerror(errno));
	vm->run_size = kvm_ioctl_val(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0)
		return cv_fail(e, CV_EXIT_FAIL, -EIO, "KVM_GET_VCPU_MMAP_SIZE: %s",
			       strerror(errno));
	if (kvm_ioctl_val(vm->vm_fd, KVM_SET_TSS_ADDR, fw ? KVM_TSS_ADDR_FW : KVM_TSS_ADDR) < 0 ||
	    kvm_ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		cv_debug("TSS/identity map address: %s", strerror(errno));
	return 0;
}

/* After the memory slots: once the irqchip and the PIT's worker exist,
 * every slot change waits for an SRCU grace period (measured here: 0.7 ms
 * for a 256 MiB slot before, 10 ms after). */
static int create_irqchip(struct vm *vm, struct cv_error *e)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	struct kvm_enable_cap split = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { IOAPIC_PINS } };
	int r;

	/* A snapshot's or a migration's CONFIG did not go through config_check. */
	if ((r = config_check_irqchip(vm->cfg, e)))
		return r;
	if (vm->cfg->irqchip == CONFIG_IRQCHIP_SPLIT) {
		/* Before any vCPU (KVM API 7.16): LAPICs in KVM, the IOAPIC here,
		 * no PIC and no PIT. args[0] is how many GSIs are IOAPIC pins,
		 * whose level EOIs KVM reports (KVM_EXIT_IOAPIC_EOI). */
		if (!kvm_cap(vm->kvm_fd, KVM_CAP_SPLIT_IRQCHIP))
			return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
				       "--irqchip split: this host's KVM has no split irqchip "
				       "(KVM_CAP_SPLIT_IRQCHIP); use --irqchip kernel");
		if (kvm_ioctl(vm->vm_fd, KVM_ENABLE_CAP, &split) < 0)
			return cv_fail(e, CV_EXIT_FAIL, -errno,
				       "KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP): %s",
				       strerror(errno));
		return 0;
	}
	if (kvm_ioctl_val(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return cv_fail(e, CV_EXIT_FAIL, -errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (config_pit_on(vm->cfg) && kvm_ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return cv_fail(e, CV_EXIT_FAIL, -errno, "KVM_CREATE_PIT2: %s", strerror(errno));
	return 0;
}

/* The fields create_machine starts from: nothing acquired yet. */
static void vm_init(struct vm *vm, const struct vm_config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = vm->loop.epfd = -1;
	vm->out_fd = STDOUT_FILENO;
	vm->ncpus = cfg->ncpus;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	dirty_rings_init(&vm->dirty_rings);
}

/* /dev/kvm, and as many vCPUs as asked for. */
static int open_kvm(struct vm *vm, const struct vm_config *cfg, struct cv_error *e)
{
	int r, max_vcpus;

	if ((r = kvm_open(&vm->kvm_fd, e)))
		return r;
	max_vcpus = kvm_cap(vm->kvm_fd, KVM_CAP_MAX_VCPUS);
	if (!max_vcpus)
		max_vcpus = kvm_cap(vm->kvm_fd, KVM_CAP_NR_VCPUS);
	if (max_vcpus && cfg->ncpus > (unsigned int)max_vcpus)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--cpus %u: this host's KVM allows at most %d", cfg->ncpus,
			       max_vcpus);
	return 0;
}

/* Guest RAM (anonymous, or mem_fd's file mapped copy-on-write) and its
 * memory slots. */
static int create_memory(struct vm *vm, const struct vm_config *cfg, int mem_fd, struct cv_error *e)
{
	int r = mem_fd >= 0 ? guest_mem_init_file(&vm->mem, mem_fd, cfg->mem_size)
			    : guest_mem_init(&vm->mem, cfg->mem_size);

	if (r)
		return cv_fail(e, CV_EXIT_FAIL, r, "cannot map %lluM of guest memory: %s",
			       (unsigned long long)(cfg->mem_size >> 20), strerror(-r));
	if (cfg->ksm && access("/sys/kernel/mm/ksm", F_OK) < 0)
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "--ksm: this host has no KSM (no /sys/kernel/mm/ksm: the kernel "
			       "needs CONFIG_KSM); leave --ksm out");
	if (cfg->ksm && (r = guest_mem_mergeable(&vm->mem)))
		return cv_fail(e, CV_EXIT_FAIL, r, "--ksm: madvise(MADV_MERGEABLE): %s",
			       strerror(-r));
	for (unsigned int i = 0; i < vm->mem.nr; i++) {
		const struct guest_mem_region *g = &vm->mem.regions[i];

		if ((r = kvm_set_memslot(vm->vm_fd, i, g->gpa, g->size, g->hva)))
			return cv_fail(e, CV_EXIT_FAIL, r, "KVM_SET_USER_MEMORY_REGION: %s",
				       strerror(-r));
	}
	return 0;
}

/* Everything but the kernel: KVM, RAM, irqchip, devices. */
static int create_machine(struct vm *vm, const struct vm_config *cfg, int mem_fd,
			  struct cv_error *e)
{
	int r;

	vm_init(vm, cfg);
	if (devices_config_copy(&vm->devcfg, &cfg->devices))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	if ((r = check_host_memory(cfg, e)) || (r = open_kvm(vm, cfg, e)))
		return r;
	vm->quirks.active = x86_quirks_wanted(cfg->quirks);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return cv_fail(e, CV_EXIT_FAIL, -errno, "eventfd: %s", strerror(errno));
	if ((r = evloop_init(&vm->loop)))
		return cv_fail(e, CV_EXIT_FAIL, r, "epoll: %s", strerror(-r));
	if ((r = create_vm_fd(vm, e)))
		return r;
	/* These two still print what failed themselves (src/kvm, src/mem):
	 * the error adds which step it was. */
	if (vm->quirks.active && (r = syscall_shim_init(vm)))
		return cv_fail(e, CV_EXIT_FAIL, r, "setting up the syscall shim: %s", strerror(-r));
	/* Before any vCPU exists, for every guest: KVM allows it only then.
	 * An emulating host (PVM) pushes an entry per emulated store and runs
	 * past the ring's end (src/mem/dirty.c): the bitmap there. */
	if ((r = dirty_rings_enable(&vm->dirty_rings, vm->vm_fd, x86_host_emulates())))
		return cv_fail(e, CV_EXIT_FAIL, r, "enabling dirty page tracking: %s",
			       strerror(-r));
	if ((r = create_memory(vm, cfg, mem_fd, e)) || (r = create_irqchip(vm, e)))
		return r;
	if ((r = setup_devices(vm)))
		return cv_fail(e, CV_EXIT_FAIL, r, "registering devices: %s", strerror(-r));
	if ((r = vm_serial_open(vm, e)))
		return r;
	if ((r = vm_devices_init(vm)))
		return cv_fail(e, CV_EXIT_FAIL, r, "setting up the PCI bus: %s", strerror(-r));
	return vm_devices_create(vm, &vm->devcfg, e);
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct cv_error *e)
{
	struct boot_entry entry;
	int r;

	if ((r = create_machine(vm, cfg, -1, e)))
		return r;
	r = cfg->firmware ? firmware_load(vm, &entry, e) : load_kernel(vm, &entry, e);
	if (r)
		return r;
	vm->entry = entry;
	if ((r = x86_cpuid_init(vm, CPUID_BOOT)))
		return cv_fail(e, CV_EXIT_FAIL, r, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
	return create_vcpus(vm, &entry, e);
}

int vm_load_images(struct vm *vm, struct cv_error *e)
{
	struct boot_entry entry;
	int r;

	if (vm->cfg->firmware)
		return firmware_reload(vm, e);
	if ((r = load_kernel(vm, &entry, e)))
		return r;
	/* The same files give the same entry, unless one was replaced. */
	if (entry.mode != vm->entry.mode || entry.rip != vm->entry.rip ||
	    entry.arg != vm->entry.arg)
		return cv_fail(e, CV_EXIT_FAIL, -ESTALE,
			       "kernel %s: its entry point changed since the guest booted "
			       "(the file was replaced)",
			       vm->cfg->kernel);
	return 0;
}

int vm_create_restore(struct vm *vm, const struct vm_config *cfg, int mem_fd, struct cv_error *e)
{
	int r;

	if ((r = create_machine(vm, cfg, mem_fd, e)))
		return r;
	if (vm->mem.file_backed && (r = snapshot_mem_guard(vm)))
		return cv_fail(e, CV_EXIT_FAIL, r, "guarding the guest's memory file: %s",
			       strerror(-r));
	if ((r = x86_cpuid_init(vm, CPUID_RESUME)))
		return cv_fail(e, CV_EXIT_FAIL, r, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
	/* No entry registers: the vCPU state comes from the snapshot. */
	return create_vcpus(vm, NULL, e);
}

int vm_start(struct vm *vm)
{
	int r = vcpu_install_kick_handler();

	vm->start_ns = cv_now_ns();
	for (unsigned int i = 0; !r && i < vm->ncpus; i++)
		r = vcpu_start(&vm->vcpus[i]);
	if (r) {
		cv_err("starting vCPU threads: %s", strerror(-r));
		vm_request_stop(vm, VM_STOP_HOST, NULL);
	}
	return r;
}

void vm_pause(struct vm *vm)
{
	vm_pause_request(vm);
	for (unsigned int i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->lock);
	while (vm->parked < vm->ncpus && !atomic_load(&vm->stop))
		pthread_cond_wait(&vm->pause_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

void vm_pause_request(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = true;
	pthread_mutex_unlock(&vm->lock);
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = false;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_wait_held(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	while (vm->nheld < vm->ncpus && !atomic_load(&vm->stop))
		pthread_cond_wait(&vm->pause_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

void vm_release(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->held = false;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->lock);
}

bool vm_paused(struct vm *vm)
{
	bool p;

	pthread_mutex_lock(&vm->lock);
	p = vm->pause_req;
	pthread_mutex_unlock(&vm->lock);
	return p;
}

void vm_join(struct vm *vm)
{
	int expected = VM_RUNNING;

	/* Whoever joins without a recorded reason stops for a signal. */
	atomic_compare_exchange_strong(&vm->stop, &expected, VM_STOP_SIGNAL);
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned int i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
		vm->vcpus[i].started = false;
	}
}

void vm_destroy(struct vm *vm)
{
	dirty_rings_destroy(&vm->dirty_rings);
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			munmap(v->run, (size_t)vm->run_size);
		if (v->fd > 0)
			close(v->fd);
		v->run = NULL;
		v->fd = -1;
	}
	vm_devices_destroy(vm);
	vm_serial_close(vm);
	firmware_destroy(vm);
	if (vm->ioapic.ops)
		ioapic_destroy(&vm->ioapic);
	vm->ioapic.ops = NULL;
	devices_config_free(&vm->devcfg);
	state_buf_free(&vm->boot_state);
	free(vm->cpuid);
	vm->cpuid = NULL;
	if (vm->shim.on)
		pthread_mutex_destroy(&vm->shim.lock);
	vm->shim.on = false;
	guest_mem_destroy(&vm->mem);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	evloop_destroy(&vm->loop);
	vm->vm_fd = vm->kvm_fd = vm->stop_fd = -1;
}

int vm_exit_status(const struct vm *vm)
{
	switch (atomic_load(&vm->stop)) {
	case VM_STOP_POWEROFF:
	case VM_STOP_RESET:
	case VM_STOP_SAVED:
	case VM_RUNNING:
		return CV_EXIT_OK;
	case VM_STOP_CRASH:
		return CV_EXIT_GUEST_CRASH;
	case VM_STOP_INTERNAL:
		return CV_EXIT_INTERNAL;
	case VM_STOP_MEMFILE:
		return CV_EXIT_MEMFILE;
	default:
		return CV_EXIT_FAIL;
	}
}
