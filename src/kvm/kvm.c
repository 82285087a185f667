/* kvm.c - /dev/kvm: open, capabilities, memory slots. */
#include "cvisor/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int kvm_open(int *fd, struct cv_error *e)
{
	int r, f = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (f < 0) {
		r = -errno;
		if (r == -ENOENT)
			return cv_fail(e, CV_EXIT_USAGE, r,
				       "/dev/kvm: no such device (load the kvm module, or enable "
				       "virtualization for this machine)");
		if (r == -EACCES || r == -EPERM)
			return cv_fail(e, CV_EXIT_USAGE, r,
				       "/dev/kvm: permission denied (add your user to group kvm)");
		return cv_fail(e, CV_EXIT_USAGE, r, "/dev/kvm: %s", strerror(-r));
	}
	r = kvm_ioctl_val(f, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		close(f);
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "/dev/kvm: unsupported KVM API version %d (need %d)", r,
			       KVM_API_VERSION);
	}
	*fd = f;
	return 0;
}

int kvm_cap(int fd, long cap)
{
	int r = kvm_ioctl_val(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

int kvm_set_memslot(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	return kvm_set_memslot_flags(vm_fd, slot, gpa, size, hva, 0);
}

int kvm_set_memslot_flags(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
			  uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	return kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

int kvm_enable_dirty_ring(int vm_fd, uint32_t *entries)
{
	long cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	/* Both caps report the largest ring in bytes; asked on the VM fd, as
	 * the answer may depend on the VM type. */
	uint64_t max = (uint64_t)kvm_cap(vm_fd, cap) / sizeof(struct kvm_dirty_gfn);
	struct kvm_enable_cap c = { 0 };

	if (!max) {
		cap = KVM_CAP_DIRTY_LOG_RING;
		max = (uint64_t)kvm_cap(vm_fd, cap) / sizeof(struct kvm_dirty_gfn);
	}
	if (!max)
		return -ENOTSUP;
	while (*entries > max)
		*entries >>= 1;
	c.cap = (uint32_t)cap;
	c.args[0] = (uint64_t)*entries * sizeof(struct kvm_dirty_gfn);
	return kvm_ioctl(vm_fd, KVM_ENABLE_CAP, &c) < 0 ? -errno : 0;
}

struct kvm_dirty_gfn *kvm_map_dirty_ring(int vcpu_fd, uint32_t entries)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)entries * sizeof(struct kvm_dirty_gfn), PROT_READ | PROT_WRITE,
		       MAP_SHARED, vcpu_fd, (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);

	return p == MAP_FAILED ? NULL : p;
}
