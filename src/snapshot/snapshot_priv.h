/* snapshot_priv.h - what save.c, load.c and memfile.c share: FILE.mem.
 * Private to src/snapshot. */
#ifndef CVISOR_SNAPSHOT_PRIV_H
#define CVISOR_SNAPSHOT_PRIV_H

#include "cvisor/snapshot.h"
#include "cvisor/vm.h"

/* Write guest RAM's image (snapshot_mem_write) to t, a new temporary
 * beside mem (cv_tmpfile_open) for the caller to commit or abort. 0 or
 * -errno, with nothing left behind. */
int snapshot_mem_file_write(struct vm *vm, struct cv_tmpfile *t, const char *mem, uint64_t *written,
			    struct snapshot_mem_digest *digest) CV_MUST;

/* Open path.mem read-only, which must be a regular file of ram bytes.
 * -EINVAL (or -errno from open) with one line in err. */
int snapshot_mem_file_open(const char *path, uint64_t ram, int *mem_fd, char *err,
			   size_t errlen) CV_MUST;

#endif
