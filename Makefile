# cvisor - see README.md. `make` builds build/cvisor; `make test` runs every test.
CC ?= gcc
BUILD := build
GEN := $(BUILD)/gen
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Iinclude -I$(GEN) -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -MMD -MP -g
CFLAGS ?= -O2
# json-c, liburing, zstd, zlib (qcow2's compressed clusters) and http-parser
# (the REST API's requests, src/api/) are linked statically: a dynamic
# library costs every guest resident pages at start (the VMM floor is
# measured in bench/).
# libseccomp is used at build time only (below). OpenSSL (migration's TLS)
# is not linked at all: src/migrate/tls.c is the module build/cvisor-tls.so,
# which a process loads only when it does TLS (tls_module.c).
LDLIBS := -Wl,-Bstatic -ljson-c -luring -lzstd -lz -lhttp_parser -Wl,-Bdynamic -lpthread -ldl

TLS_SRC := src/migrate/tls.c
SRC := $(filter-out $(TLS_SRC),$(sort $(shell find src -name '*.c')))
LIB_SRC := $(filter-out src/main.c,$(SRC))
OBJ := $(SRC:%.c=$(BUILD)/obj/%.o)
# Unit tests link the library objects built with ASan and UBSan.
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/san/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)

.PHONY: all test check unit tsan san guest tiny clean fuzz fuzz-build run install libvirt
all: $(BUILD)/cvisor $(BUILD)/cvisor-tls.so $(BUILD)/cloud-hypervisor

$(BUILD)/cvisor: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# cvisor under Cloud Hypervisor's name: the REST API mode (src/api/) that
# libvirt's ch driver and Kata's clh driver start.
$(BUILD)/cloud-hypervisor: $(BUILD)/cvisor
	ln -sf cvisor $@

# The TLS module: tls.c and the helpers of util.c it calls, exporting only
# cvisor_tls_module (-fvisibility=hidden); --no-undefined keeps it from
# needing anything of the binary's.
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<
$(BUILD)/cvisor-tls.so: $(TLS_SRC:%.c=$(BUILD)/pic/%.o) $(BUILD)/pic/src/util.o
	$(CC) $(LDFLAGS) -shared -Wl,--no-undefined -Wl,-z,now -o $@ $^ -lssl -lcrypto

# PREFIX/bin/cvisor finds its module in PREFIX/lib/cvisor (tls_module.c).
PREFIX ?= /usr/local
install: all
	install -D -m 0755 $(BUILD)/cvisor $(DESTDIR)$(PREFIX)/bin/cvisor
	ln -sf cvisor $(DESTDIR)$(PREFIX)/bin/cloud-hypervisor
	install -D -m 0644 $(BUILD)/cvisor-tls.so $(DESTDIR)$(PREFIX)/lib/cvisor/cvisor-tls.so

# cvisor itself under ASan and UBSan, for the hostile-input campaign
# (tests/e2e/hostile.sh).
$(BUILD)/san/cvisor: $(SAN_OBJ) $(BUILD)/san/src/main.o
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)
san: $(BUILD)/san/cvisor

# Everything but main.o, for the benchmarks' harnesses (bench/*.c).
$(BUILD)/libcvisor.a: $(filter-out $(BUILD)/obj/src/main.o,$(OBJ))
	rm -f $@ && ar rcs $@ $^

# The seccomp filters: the tables of src/sandbox/seccomp.c compiled into
# BPF programs by a generator run here, not at each start of cvisor.
$(BUILD)/seccomp-bpf: scripts/seccomp-bpf.c src/sandbox/seccomp.c src/sandbox/sandbox_priv.h \
		include/cvisor/sandbox.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O1 -o $@ scripts/seccomp-bpf.c src/sandbox/seccomp.c \
		-Wl,-Bstatic -lseccomp -Wl,-Bdynamic
$(GEN)/seccomp_bpf.h: $(BUILD)/seccomp-bpf
	@mkdir -p $(dir $@)
	$< > $@.tmp && mv $@.tmp $@
$(foreach f,obj san tsan fuzzobj,$(BUILD)/$(f)/src/sandbox/sandbox.o): $(GEN)/seccomp_bpf.h

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c -o $@ $<

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O1 $(SAN) -c -o $@ $<

# What tests, fuzzers and benchmarks share (tests/lib): the guest driver of
# virtqueues, built once per flavour (sanitizers, TSan, fuzzer) and linked in.
TEST_LIB_SRC := $(sort $(wildcard tests/lib/*.c))
TEST_LIB_H := $(wildcard tests/lib/*.h)
TEST_LIB_SAN := $(TEST_LIB_SRC:%.c=$(BUILD)/san/%.o)
TEST_LIB_TSAN := $(TEST_LIB_SRC:%.c=$(BUILD)/tsan/%.o)
TEST_LIB_FUZZ := $(TEST_LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)

# Every unit test links tests/unit/unit_tap.c: a test that hangs is named
# in cmocka's TAP when the runner's timeout ends it.
UNIT_LINK := -Wl,--wrap=_cmocka_run_group_tests -lcmocka $(LDLIBS)
# No .d file covers the test binaries: their shared headers are listed here.
$(BUILD)/tests/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(TEST_LIB_H) \
		$(BUILD)/san/unit_tap.o $(SAN_OBJ) $(TEST_LIB_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Itests/lib -O1 $(SAN) -o $@ $< $(BUILD)/san/unit_tap.o $(SAN_OBJ) \
		$(TEST_LIB_SAN) $(UNIT_LINK)

$(BUILD)/san/unit_tap.o: tests/unit/unit_tap.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O1 $(SAN) -c -o $@ $<

unit: $(UNIT_BIN)
# Keep the sanitizer objects between test links.
.SECONDARY: $(SAN_OBJ) $(TEST_LIB_SAN)

# ThreadSanitizer (`make tsan`): the unit tests and the migration harness,
# where vCPU threads, the main loop and the migration pump share state.
# -Wno-tsan: gcc warns that TSan does not model the fences virtq.c orders
# the rings shared with the guest by; the guest's side is not seen anyway.
TSAN := -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
TSAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/tsan/%.o)
TSAN_UNIT := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tsan/tests/unit/%)
TSAN_HARNESS := $(BUILD)/tsan/tests/kvm/migrate_harness
$(BUILD)/tsan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O1 $(TSAN) -c -o $@ $<
$(BUILD)/tsan/tests/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(TEST_LIB_H) \
		$(BUILD)/tsan/tests/unit/unit_tap.o $(TSAN_OBJ) $(TEST_LIB_TSAN)
	$(CC) $(CFLAGS_BASE) -Itests/lib -O1 $(TSAN) -o $@ $< $(BUILD)/tsan/tests/unit/unit_tap.o \
		$(TSAN_OBJ) $(TEST_LIB_TSAN) $(UNIT_LINK)
$(TSAN_HARNESS): tests/kvm/migrate_harness.c $(TSAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O1 $(TSAN) -o $@ $^ $(LDLIBS)
tsan: $(TSAN_UNIT) $(TSAN_HARNESS)
.SECONDARY: $(TSAN_OBJ) $(TEST_LIB_TSAN) $(BUILD)/tsan/tests/unit/unit_tap.o

# libFuzzer targets: tests/fuzz/fuzz_NAME.c with seeds in tests/fuzz/corpus/NAME.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -I$(GEN) -g -O1 -fsanitize=address,undefined \
	-fno-sanitize-recover=all
# The objects track their headers (.d, included below): a struct that grew
# must not leave stale objects behind, which the sanitizers then report
# as findings.
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -fsanitize=fuzzer-no-link -c -o $@ $<
$(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(TEST_LIB_H) $(FUZZ_OBJ) \
		$(TEST_LIB_FUZZ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -Itests/lib -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(TEST_LIB_FUZZ) \
		$(LDLIBS)
.SECONDARY: $(FUZZ_OBJ) $(TEST_LIB_FUZZ)

fuzz-build: $(FUZZ_BIN)
fuzz: $(FUZZ_BIN)
	bash scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

include tests/kvm/guests.mk

# The guest kit: kernels and initramfs built from Debian packages, cached
# per machine (see guest/README.md).
guest:
	bash scripts/guest-kit.sh $(BUILD)/guest

# libvirt 9.0 and 11.3 with only the Cloud Hypervisor driver, built from
# Debian's source packages and cached per machine (scripts/libvirt-build.sh,
# a minute each the first time), for the libvirt suite.
LIBVIRT_VERSIONS ?= 9.0 11.3
libvirt:
	@for v in $(LIBVIRT_VERSIONS); do bash scripts/libvirt-build.sh $$v >/dev/null || exit 1; done

test: all unit tsan san tiny guest fuzz-build migrate-harness
	bash scripts/run-tests.sh

# The quick loop, in under three minutes: no kernels, no fuzzing.
check: all unit tiny
	SUITES="format unit cli kvm" bash scripts/run-tests.sh

# Boot the default guest: the microVM kernel with a shell on the console.
run: all guest
	$(BUILD)/cvisor run --kernel $(BUILD)/guest/microvm.vmlinux \
		--initrd $(BUILD)/guest/initramfs.cpio --memory 256M --cpus 2 \
		--cmdline "cvisor.shell=1 panic=10"

clean:
	rm -rf $(BUILD)/obj $(BUILD)/pic $(BUILD)/san $(BUILD)/tsan $(BUILD)/tests $(BUILD)/cvisor \
		$(BUILD)/cvisor-tls.so

-include $(OBJ:.o=.d) $(TLS_SRC:%.c=$(BUILD)/pic/%.d) $(SAN_OBJ:.o=.d) $(TSAN_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) \
	$(TEST_LIB_SAN:.o=.d) $(TEST_LIB_TSAN:.o=.d) $(TEST_LIB_FUZZ:.o=.d)
