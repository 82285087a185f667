# tests/kvm/guests.mk - the tiny freestanding test guests (`make tiny`).
# Included by the top-level Makefile; self-contained so that
# `make -f tests/kvm/guests.mk tiny` works too. Output: $(BUILD)/tests/kvm/<name>.elf
BUILD ?= build
TINY_SRC := tests/kvm/guests
TINY_OUT := $(BUILD)/tests/kvm
TINY_OBJ := $(TINY_OUT)/obj
TINY_CC ?= gcc

# min-pagesize=0: guests really do read low addresses (BDA at 0x40e).
TINY_CFLAGS := -m64 -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie \
	-fno-stack-protector -mno-red-zone -mgeneral-regs-only \
	-fno-asynchronous-unwind-tables -fcf-protection=none --param=min-pagesize=0 \
	-Wall -Wextra -Werror -MMD -MP -I$(TINY_SRC)
TINY_LDFLAGS := -m64 -nostdlib -static -no-pie -Wl,--build-id=none \
	-Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack -T $(TINY_SRC)/link.ld

# Guests in C, linked with the runtime (crt0 + lib).
TINY_C_GUESTS := hello kbd_reset acpi_reset triple unclaimed refused ring3 smp unknown_insn \
	counter cmdline bootabi powerbtn burn echo virtio blkcount dirtier rtc ioapic clone
# Stand-alone assembly guests: they act at their very first instruction.
TINY_ASM_GUESTS := exit_now first_byte prot32 idle
TINY_GUESTS := $(TINY_C_GUESTS) $(TINY_ASM_GUESTS)
TINY_ELFS := $(TINY_GUESTS:%=$(TINY_OUT)/%.elf)
TINY_RT := $(TINY_OBJ)/crt0.o $(TINY_OBJ)/lib.o

# The multiboot test kernels (tests/kvm/guests/multiboot): 32-bit, run
# under cvisor and QEMU side by side. mbtest.elf is an ELF32 kernel,
# mbtest_aout.bin the same code as a flat binary with the a.out kludge.
MB_SRC := $(TINY_SRC)/multiboot
MB_OBJ := $(TINY_OBJ)/multiboot
MB_CFLAGS := -m32 -march=i686 -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie \
	-fno-stack-protector -mgeneral-regs-only -fno-asynchronous-unwind-tables \
	-fcf-protection=none --param=min-pagesize=0 -Wall -Wextra -Werror -MMD -MP
MB_LDFLAGS := -m32 -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
	-Wl,--no-warn-rwx-segments \
	-T $(MB_SRC)/link.ld
MB_GUESTS := $(TINY_OUT)/mbtest.elf $(TINY_OUT)/mbtest_aout.bin

$(MB_OBJ)/%.o: $(MB_SRC)/%.c
	@mkdir -p $(dir $@)
	$(TINY_CC) $(MB_CFLAGS) -c -o $@ $<
$(MB_OBJ)/crt.o: $(MB_SRC)/crt.S
	@mkdir -p $(dir $@)
	$(TINY_CC) $(MB_CFLAGS) -c -o $@ $<
$(MB_OBJ)/crt_aout.o: $(MB_SRC)/crt.S
	@mkdir -p $(dir $@)
	$(TINY_CC) $(MB_CFLAGS) -DMB_AOUT -c -o $@ $<
$(TINY_OUT)/mbtest.elf: $(MB_OBJ)/crt.o $(MB_OBJ)/mbtest.o $(MB_SRC)/link.ld
	$(TINY_CC) $(MB_LDFLAGS) -o $@ $(filter %.o,$^)
$(TINY_OUT)/mbtest_aout.elf: $(MB_OBJ)/crt_aout.o $(MB_OBJ)/mbtest.o $(MB_SRC)/link.ld
	$(TINY_CC) $(MB_LDFLAGS) -o $@ $(filter %.o,$^)
$(TINY_OUT)/mbtest_aout.bin: $(TINY_OUT)/mbtest_aout.elf
	objcopy -O binary $< $@

.PHONY: tiny
tiny: $(TINY_ELFS) $(MB_GUESTS)

$(TINY_OBJ)/%.o: $(TINY_SRC)/%.c
	@mkdir -p $(dir $@)
	$(TINY_CC) $(TINY_CFLAGS) -c -o $@ $<

$(TINY_OBJ)/%.o: $(TINY_SRC)/%.S
	@mkdir -p $(dir $@)
	$(TINY_CC) $(TINY_CFLAGS) -c -o $@ $<

$(TINY_C_GUESTS:%=$(TINY_OUT)/%.elf): $(TINY_OUT)/%.elf: $(TINY_OBJ)/%.o $(TINY_RT) $(TINY_SRC)/link.ld
	$(TINY_CC) $(TINY_LDFLAGS) -o $@ $(filter %.o,$^)

$(TINY_ASM_GUESTS:%=$(TINY_OUT)/%.elf): $(TINY_OUT)/%.elf: $(TINY_OBJ)/%.o $(TINY_SRC)/link.ld
	$(TINY_CC) $(TINY_LDFLAGS) -o $@ $(filter %.o,$^)

# The AP real-mode trampoline is only linked into smp.
$(TINY_OUT)/smp.elf: $(TINY_OBJ)/smp_tramp.o
# The virtio guest: its driver and its hostile test, linked into it only.
$(TINY_OUT)/virtio.elf: $(TINY_OBJ)/virtio_drv.o $(TINY_OBJ)/virtio_hostile.o
# The snapshot tests' counter that goes through a virtio-blk device.
$(TINY_OUT)/blkcount.elf: $(TINY_OBJ)/virtio_drv.o
# The guest cloned from one snapshot (restore --count): its vsock and net.
$(TINY_OUT)/clone.elf: $(TINY_OBJ)/virtio_drv.o

# Host side: the migration engine between two VMs in one process (needs the
# top-level Makefile's objects; `make migrate-harness`).
MIGRATE_HARNESS := $(BUILD)/tests/kvm/migrate_harness
$(MIGRATE_HARNESS): tests/kvm/migrate_harness.c $(filter-out $(BUILD)/obj/src/main.o,$(OBJ))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O2 -o $@ $^ $(LDLIBS)
.PHONY: migrate-harness
migrate-harness: $(MIGRATE_HARNESS)

-include $(wildcard $(TINY_OBJ)/*.d $(MB_OBJ)/*.d)
