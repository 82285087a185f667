/* snapshot.h - a VM's whole state (but RAM) as snapshot sections, shared
 * by save/restore (src/snap/snapshot.c) and live migration
 * (src/snap/migrate.c). The container format is in snapfile.h. */
#ifndef CVISOR_SNAPSHOT_H
#define CVISOR_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/state.h"
#include "cvisor/util.h"

struct vm;
struct vm_config;

/* Append the sections for everything but guest RAM: CONFIG (what is
 * needed to build the same machine again), MACHINE, KSTATE, one VCPU per
 * vCPU, one DEVICE per device. The vCPUs must be paused (vm_pause) and the
 * devices quiesced. */
int snapshot_state_save(struct vm *vm, struct state_buf *out) CV_MUST;

/* Read the CONFIG section of a payload into cfg (strings point into the
 * payload, which must outlive cfg). -EINVAL with one line in err. */
int snapshot_config_load(const uint8_t *payload, size_t len, struct vm_config *cfg, char *err,
			 size_t errlen) CV_MUST;

/* Load every other section into a VM built from that config (restore or
 * migration target: vCPUs created, not started, guest RAM already in
 * place). Validates everything; -EINVAL with one line in err. */
int snapshot_state_load(struct vm *vm, const uint8_t *payload, size_t len, char *err,
			size_t errlen) CV_MUST;

#endif
