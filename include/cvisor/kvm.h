/* kvm.h - thin, size-checked wrappers around /dev/kvm ioctls. */
#ifndef CVISOR_KVM_H
#define CVISOR_KVM_H

#include <assert.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "cvisor/util.h"

/* The selftests' way: the wrapper returns the raw result and a static
 * assertion checks the argument against the size encoded in the command. */
#define kvm_ioctl(fd, cmd, arg)                                                    \
	({                                                                         \
		static_assert(sizeof(*(arg)) == _IOC_SIZE(cmd), "ioctl arg size"); \
		ioctl(fd, cmd, arg);                                               \
	})

/* Open /dev/kvm and check the API version. -errno; prints one line. */
int kvm_open(int *fd) CV_MUST;

/* KVM_CHECK_EXTENSION; 0 when absent. */
int kvm_cap(int fd, long cap);

/* Register a memory slot. */
int kvm_set_memslot(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva) CV_MUST;

#endif
