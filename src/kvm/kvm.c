/* kvm.c - /dev/kvm: open, capabilities, memory slots. */
#include "cvisor/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int kvm_open(int *fd)
{
	int r, f = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (f < 0) {
		r = -errno;
		if (r == -ENOENT)
			cv_err("/dev/kvm: no such device (load the kvm module, or enable "
			       "virtualization for this machine)");
		else if (r == -EACCES || r == -EPERM)
			cv_err("/dev/kvm: permission denied (add your user to group kvm)");
		else
			cv_err("/dev/kvm: %s", strerror(-r));
		return r;
	}
	r = ioctl(f, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		cv_err("/dev/kvm: unsupported KVM API version %d (need %d)", r, KVM_API_VERSION);
		close(f);
		return -ENOTSUP;
	}
	*fd = f;
	return 0;
}

int kvm_cap(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

int kvm_set_memslot(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	return kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}
