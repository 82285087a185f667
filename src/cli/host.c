/* host.c - `cvisor host [--json]`: what this host's /dev/kvm is, and what
 * a guest needs here. On a host that emulates guest kernel code (README
 * "Hosts without VT-x") cvisor adds kernel options to every --kernel boot;
 * a guest booted by its own loader (--firmware, then GRUB from its disk)
 * must carry them in its own configuration, and this prints them. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cvisor/error.h"
#include "cvisor/x86.h"
#include "verbs.h"

#define KVM_PATH "/dev/kvm"

int cli_host(const struct cli_verb *v, const struct cli_args *a)
{
	int fd = open(KVM_PATH, O_RDWR | O_CLOEXEC), api = -1, err = errno;
	bool emulates = x86_host_emulates();
	const char *opts = emulates ? x86_quirk_cmdline() : "";

	(void)v;
	if (fd >= 0) {
		api = ioctl(fd, KVM_GET_API_VERSION, 0);
		err = errno;
		close(fd);
	}
	if (a->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "kvm", json_object_new_boolean(api >= 0));
		json_object_object_add(o, "kvm_api", json_object_new_int(api));
		json_object_object_add(o, "emulated", json_object_new_boolean(emulates));
		json_object_object_add(o, "guest_cmdline", json_object_new_string(opts));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		if (api >= 0)
			printf("kvm: %s, API %d\n", KVM_PATH, api);
		else
			printf("kvm: %s: %s\n", KVM_PATH, strerror(err));
		printf("emulated host: %s\n", emulates ? "yes (kvm_pvm: guest kernel code is "
							 "emulated; README \"Hosts without VT-x\")"
						       : "no");
		/* The line scripts read: sed -n 's/^guest kernel options: //p'. */
		printf("guest kernel options: %s\n", opts);
	}
	if (api < 0) {
		cv_err("host: %s is not usable here", KVM_PATH);
		return CV_EXIT_FAIL;
	}
	return 0;
}
