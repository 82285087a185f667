/* fuzz_api_config.c - libFuzzer target for the REST API's JSON bodies
 * (src/api/vmconfig.c): vm.create's VmConfig and vm.add-net's NetConfig.
 *
 * Input: one byte (its low two bits: the descriptors said to come with a
 * vm.add-net, 0 to 3), then the body. The body goes to api_vm_config and
 * to api_net_config for the next NIC of what vm.create made.
 * Checked: no crash or leak (ASan); an error has a message and the config
 * holds nothing then; a vm.add-net accepted with one descriptor gives a
 * "tapfd" spec, with none a "tap=" one, and never with more than one; an
 * accepted id is short and not cvisor's own ('_'). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct api_vm_io io;
	struct vm_config cfg;
	char err[512] = "", spec[256], id[API_ID_MAX];
	unsigned int nfds, nnet;
	char *body;
	int r;

	if (size < 1)
		return 0;
	nfds = data[0] & 3;
	if (!(body = malloc(size)))
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	config_init(&cfg);
	r = api_vm_config(body, size - 1, &cfg, &io, err, sizeof(err));
	if (r && (!err[0] || (r != -EINVAL && r != -ENOMEM)))
		abort();
	nnet = devices_count(&cfg.devices, devices_type("net"));
	err[0] = '\0';
	r = api_net_config(body, size - 1, nfds, nnet, &io, spec, sizeof(spec), id, err,
			   sizeof(err));
	if (r && !err[0])
		abort();
	if (!r && (nfds > 1 || strncmp(spec, nfds ? "tapfd" : "tap=", nfds ? 5 : 4) ||
		   strlen(id) >= API_ID_MAX || id[0] == '_'))
		abort();
	config_free(&cfg);
	free(body);
	return 0;
}
