/* vm_multiboot.c - the machine a multiboot kernel gets (include/cvisor/vm.h,
 * vm_multiboot_load): what OS test suites such as kvm-unit-tests rely on
 * from `qemu-system-x86_64 -machine pc -kernel K -append ARGS -initrd
 * "M ARGS,M2" -device isa-debug-exit,iobase=0xf4,iosize=4`:
 * - the command line "K ARGS", K as the user wrote it (argv[0] to
 *   kvm-unit-tests), and each module's string "M ARGS";
 * - --initrd as the first module (QEMU's -initrd is the module list), then
 *   each --module FILE[,ARGS];
 * - fw_cfg at 0x510/0x511 with the RAM size and CPU counts;
 * - isa-debug-exit at 0xf4: a write of v ends cvisor with (v << 1) | 1.
 * The serial port, PIC, PIT, IOAPIC, LAPICs, ACPI and MP tables are the
 * ones every guest gets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/vm.h"

struct mb_files {
	struct vm_file files[BOOT_MAX_MODULES];
	struct boot_module mods[BOOT_MAX_MODULES];
	char *strings[BOOT_MAX_MODULES];
	unsigned int n;
};

/* One module: path is the file, its string "path[ args]". */
static int add_module(struct vm *vm, struct mb_files *f, const char *what, const char *path,
		      const char *args, struct cv_error *e)
{
	size_t n = strlen(path) + strlen(args) + 2;
	char *s;
	int r;

	if (f->n == BOOT_MAX_MODULES)
		return cv_fail(e, CV_EXIT_USAGE, -E2BIG, "at most %d multiboot modules",
			       BOOT_MAX_MODULES);
	if (!(s = malloc(n)))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	snprintf(s, n, "%s%s%s", path, args[0] ? " " : "", args);
	f->strings[f->n] = s;
	if ((r = vm_file_map(vm, what, path, true, &f->files[f->n], e)))
		return r;
	f->mods[f->n] = (struct boot_module){ f->files[f->n].data, f->files[f->n].len, s };
	f->n++;
	return 0;
}

static int map_modules(struct vm *vm, const struct vm_config *cfg, struct mb_files *f,
		       struct cv_error *e)
{
	char *list, *line, *save = NULL;
	int r = 0;

	if (cfg->initrd && (r = add_module(vm, f, "initrd", cfg->initrd, "", e)))
		return r;
	if (!cfg->modules)
		return 0;
	if (!(list = strdup(cfg->modules)))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	for (line = strtok_r(list, "\n", &save); line && !r; line = strtok_r(NULL, "\n", &save)) {
		char *comma = strchr(line, ',');

		if (comma)
			*comma = '\0';
		r = add_module(vm, f, "module", line, comma ? comma + 1 : "", e);
	}
	free(list);
	return r;
}

static void unmap_modules(struct mb_files *f)
{
	for (unsigned int i = 0; i < BOOT_MAX_MODULES; i++) {
		vm_file_unmap(&f->files[i]);
		free(f->strings[i]);
	}
}

/* fw_cfg's legacy items and isa-debug-exit, as on QEMU's pc machine. */
static int add_pc_ports(struct vm *vm)
{
	int r;

	if ((r = fw_cfg_init(&vm->fw_cfg)) ||
	    (r = fw_cfg_add_machine(&vm->fw_cfg, vm->mem.ram_size, vm->ncpus)) ||
	    (r = bus_register(&vm->pio, FW_CFG_PORT, FW_CFG_PORT_LEN, &fw_cfg_bus_ops, &vm->fw_cfg,
			      "fw_cfg")))
		return r;
	return vm_debug_exit_add(vm);
}

int vm_multiboot_load(struct vm *vm, const struct vm_file *kernel, struct boot_entry *entry,
		      struct cv_error *e)
{
	const struct vm_config *cfg = vm->cfg;
	struct mb_files f = { 0 };
	struct boot_image img = { .kernel = kernel->data, .kernel_len = kernel->len };
	size_t n = strlen(cfg->kernel) + strlen(cfg->cmdline) + 2;
	char err[256], *cmdline = malloc(n);
	int r;

	if (!cmdline)
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	/* QEMU's exact form, the space kept when ARGS is empty. */
	snprintf(cmdline, n, "%s %s", cfg->kernel, cfg->cmdline);
	if ((r = map_modules(vm, cfg, &f, e)))
		goto out;
	img.cmdline = cmdline;
	img.modules = f.mods;
	img.nmodules = f.n;
	if (vm->shim.on) {
		img.low_ram_end = SYSCALL_SHIM_GPA;
		vm->shim.area = true;
	}
	if ((r = boot_load(&vm->mem, &img, entry, err, sizeof(err)))) {
		cv_fail(e, CV_EXIT_USAGE, r, "kernel %s: %s", cfg->kernel, err);
		goto out;
	}
	/* A reset reloads the images only: the ports stay, their items too
	 * (the same RAM and CPUs). */
	if (!vm->multiboot && (r = add_pc_ports(vm))) {
		cv_fail(e, CV_EXIT_FAIL, r, "registering fw_cfg and isa-debug-exit: %s",
			strerror(-r));
		goto out;
	}
	vm->multiboot = true;
out:
	unmap_modules(&f);
	free(cmdline);
	return r;
}
