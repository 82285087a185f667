/* devices.c - the endpoints about the guest's devices: vm.add-net, which
 * hands the VMM a NIC (a tap's descriptor passed with the request, as
 * libvirt 11.3 and Kata do, or a tap's name) between vm.create and
 * vm.boot, and vm.counters, each disk's and NIC's I/O by device id. An id
 * is the one the client gave (DiskConfig's and NetConfig's "id"), else
 * "_" and cvisor's name of the device ("_disk0", "_net1"), which vm.info's
 * config shows too. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api_priv.h"
#include "cvisor/net_backend.h"
#include "cvisor/virtio_blk.h"
#include "cvisor/virtio_net.h"
#include "cvisor/vm.h"

/* The array `key` of vm.info's config, made if missing; NULL when out of
 * memory. */
static struct json_object *echo_array(struct api *a, const char *key)
{
	struct json_object *arr;

	if (json_object_object_get_ex(a->create_body, key, &arr) &&
	    json_object_is_type(arr, json_type_array))
		return arr;
	if (!(arr = json_object_new_array()) || json_object_object_add(a->create_body, key, arr))
		return NULL;
	return arr;
}

/* Give each entry of config.KEY without an id its device's id. */
static void echo_ids_of(struct api *a, const char *json_key, const char *dev_key)
{
	struct json_object *arr, *e;
	char name[16], buf[API_ID_MAX];

	if (!json_object_object_get_ex(a->create_body, json_key, &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return;
	/* vm.create took at most VM_MAX_VIRTIO devices */
	for (size_t i = 0; i < json_object_array_length(arr) && i < VM_MAX_VIRTIO; i++) {
		e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_object) ||
		    json_object_object_get_ex(e, "id", NULL))
			continue;
		snprintf(name, sizeof(name), "%.8s%u", dev_key, (unsigned int)i);
		json_object_object_add(e, "id",
				       json_object_new_string(api_dev_id(&a->io, name, buf)));
	}
}

void api_echo_ids(struct api *a)
{
	echo_ids_of(a, "disks", "disk");
	echo_ids_of(a, "net", "net");
}

/* ---- vm.add-net ---- */

/* May a NIC join the VM now? Else the answer, and false. */
static bool add_net_allowed(struct api *a, struct http_conn *c)
{
	if (a->state == API_NONE) {
		http_reply_error(c, 500, "vm.add-net: no VM is created (vm.create first)");
		return false;
	}
	if (a->state == API_RUNNING || a->boot || a->boot_conn) {
		http_reply_error(c, 500,
				 "vm.add-net: the VM is %s: cvisor has no device hotplug (add NICs "
				 "between vm.create and vm.boot)",
				 a->state == API_RUNNING ? "running" : "booting");
		return false;
	}
	if (!api_can_build(a)) {
		/* The filter also forbids looking at the tap (TUNGETIFF). */
		http_reply_error(
			c, 500,
			"vm.add-net: a guest already ran in this VMM, whose seccomp filter "
			"forbids building another (start a new VMM, or --seccomp false)");
		return false;
	}
	return true;
}

/* The NIC's entry in vm.info's config: the body without "fds" (the
 * sender's numbers), with its id. */
static void echo_net(struct api *a, const struct http_request *req, const char *id)
{
	struct json_object *o = json_tokener_parse(req->body), *arr = echo_array(a, "net");

	if (!o || !arr) {
		json_object_put(o);
		return;
	}
	json_object_object_del(o, "fds");
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_array_add(arr, o);
}

/* vm.add-net {NetConfig}: the NIC joins the created VM's config and is
 * built at vm.boot; answered with its PciDeviceInfo, the id and the
 * address it will have (devices are built in table order, each virtio
 * device in the next slot of bus 0 after the host bridge). */
void api_ep_add_net(struct api *a, struct http_conn *c, struct http_request *req)
{
	const struct device_type *t = devices_type("net");
	unsigned int index = devices_count(&a->cfg.devices, t);
	char spec[256], id[API_ID_MAX], name[16], buf[API_ID_MAX], err[512], tap[IFNAMSIZ];
	struct cv_error e = { 0 };
	struct json_object *o;
	const char *idp;
	bool vnet;
	int r, fd = -1, slot;

	if (!add_net_allowed(a, c))
		return;
	r = api_net_config(req->body, req->body_len, req->nfds, index, &a->io, spec, sizeof(spec),
			   id, err, sizeof(err));
	if (r) {
		http_reply_error(c, r == -ENOMEM ? 500 : 400, "%s", err);
		return;
	}
	if (req->nfds == 1) {
		if (net_tap_check_fd(req->fds[0], tap, &vnet, err, sizeof(err))) {
			http_reply_error(c, 400, "vm.add-net: %s", err);
			return;
		}
		fd = req->fds[0];
		req->fds[0] = -1; /* the config's from here, closed with it */
	}
	if ((r = devices_add_fd(&a->cfg.devices, t, "vm.add-net", spec, fd, &e))) {
		http_reply_error(c, r == -ENOMEM ? 500 : 400, "%s", e.msg);
		return;
	}
	snprintf(name, sizeof(name), "net%u", index);
	if (*id && api_dev_id_set(&a->io, name, id))
		*id = '\0'; /* cannot be: ids are fewer than devices */
	idp = api_dev_id(&a->io, name, buf);
	echo_net(a, req, idp);
	slot = devices_order(&a->cfg.devices, t, index) + 1;
	if (a->cfg.devices.transport != VIRTIO_TRANSPORT_PCI) {
		http_reply(c, 204, NULL, 0); /* added, at no PCI address */
		return;
	}
	snprintf(err, sizeof(err), "0000:00:%02x.0", (unsigned int)slot);
	if ((o = json_object_new_object())) {
		json_object_object_add(o, "id", json_object_new_string(idp));
		json_object_object_add(o, "bdf", json_object_new_string(err));
	}
	api_reply_json(c, o);
}

/* ---- vm.counters ---- */

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

/* One device's counters (Cloud Hypervisor's names), or NULL for a device
 * that has none. */
static struct json_object *dev_counters(struct vm_virtio *v)
{
	struct json_object *o;
	struct virtio_blk_stats bs;
	struct virtio_net_stats ns;

	if (strcmp(v->type->key, "disk") && strcmp(v->type->key, "net"))
		return NULL;
	if (!(o = json_object_new_object()))
		return NULL;
	if (!strcmp(v->type->key, "disk")) {
		virtio_blk_get_stats(&v->dev, &bs);
		add_u64(o, "read_bytes", bs.read_bytes);
		add_u64(o, "write_bytes", bs.write_bytes);
		add_u64(o, "read_ops", bs.read_ops);
		add_u64(o, "write_ops", bs.write_ops);
	} else {
		virtio_net_get_stats(&v->dev, &ns);
		add_u64(o, "rx_bytes", ns.rx_bytes);
		add_u64(o, "rx_frames", ns.rx_packets);
		add_u64(o, "tx_bytes", ns.tx_bytes);
		add_u64(o, "tx_frames", ns.tx_packets);
	}
	return o;
}

/* vm.counters: {"ID": {counter: value, ...}, ...} for each disk and NIC
 * of the running guest, as Cloud Hypervisor's VmCounters. */
void api_ep_counters(struct api *a, struct http_conn *c, struct http_request *req)
{
	struct json_object *o, *d;
	char name[16], buf[API_ID_MAX];

	(void)req;
	if (!api_need_vm(a, c, "vm.counters"))
		return;
	o = json_object_new_object();
	for (unsigned int i = 0; o && i < a->vm->nvirtio; i++) {
		struct vm_virtio *v = a->vm->virtio[i];

		if (!(d = dev_counters(v)))
			continue;
		snprintf(name, sizeof(name), "%s%u", v->type->key, v->index);
		json_object_object_add(o, api_dev_id(&a->io, name, buf), d);
	}
	api_reply_json(c, o);
}
