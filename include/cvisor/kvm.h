/* kvm.h - thin, size-checked wrappers around /dev/kvm ioctls. */
#ifndef CVISOR_KVM_H
#define CVISOR_KVM_H

#include <assert.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "cvisor/error.h"
#include "cvisor/util.h"

/* The selftests' way: the wrapper returns the raw result and a static
 * assertion checks the argument against the size encoded in the command.
 * A command whose argument is a header and a flexible array (KVM_SET_MSRS,
 * KVM_SET_CPUID2, KVM_SET_GSI_ROUTING, ...) encodes the header's size:
 * pass a pointer to the header. */
#define kvm_ioctl(fd, cmd, arg)                                                    \
	({                                                                         \
		static_assert(sizeof(*(arg)) == _IOC_SIZE(cmd), "ioctl arg size"); \
		ioctl(fd, cmd, arg);                                               \
	})

/* The same for an _IO command, which takes no argument struct: val goes
 * by value (a vCPU id, a capability, an address; 0 when unused), and the
 * assertion checks that cmd encodes neither a size nor a direction, so a
 * command that wants a pointer cannot be given a number. */
#define kvm_ioctl_val(fd, cmd, val)                                              \
	({                                                                       \
		static_assert(_IOC_SIZE(cmd) == 0 && _IOC_DIR(cmd) == _IOC_NONE, \
			      "ioctl takes a pointer: use kvm_ioctl");           \
		ioctl(fd, cmd, (unsigned long)(val));                            \
	})

/* Open /dev/kvm and check the API version. 0, or -errno with e filled
 * (CV_EXIT_USAGE: the host's setup, with what to do about it). */
int kvm_open(int *fd, struct cv_error *e) CV_MUST;

/* KVM_CHECK_EXTENSION; 0 when absent. */
int kvm_cap(int fd, long cap);

/* Register a memory slot. */
int kvm_set_memslot(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva) CV_MUST;

/* Register a memory slot with KVM_MEM_* flags (KVM_MEM_READONLY: a ROM,
 * whose writes exit as MMIO). 0 or -errno. */
int kvm_set_memslot_flags(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
			  uint32_t flags) CV_MUST;

/* Enable the dirty ring on a VM that has no vCPU yet, *entries entries per
 * vCPU (a power of two; lowered to the host's maximum): with
 * KVM_CAP_DIRTY_LOG_RING_ACQ_REL when offered, else KVM_CAP_DIRTY_LOG_RING
 * (api.rst 8.29; alike on x86). 0 with *entries as enabled, -ENOTSUP when
 * the host has no ring, or -errno from KVM_ENABLE_CAP. */
int kvm_enable_dirty_ring(int vm_fd, uint32_t *entries) CV_MUST;

/* Map a vCPU's dirty ring of `entries` entries (at KVM_DIRTY_LOG_PAGE_OFFSET
 * pages into the vCPU fd; MAP_SHARED, read-write: user space hands entries
 * back by setting their RESET flag). NULL with errno set. */
struct kvm_dirty_gfn *kvm_map_dirty_ring(int vcpu_fd, uint32_t entries);

#endif
