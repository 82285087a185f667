/* virtio_balloon.h - the traditional memory balloon (virtio 1.2 section 5.5):
 * inflate and deflate queues, the statistics queue, and free page reporting.
 *
 * Target semantics (for `--balloon SIZE` and the toolstack's live control):
 * the target is the amount of guest RAM the balloon should HOLD, i.e. take
 * away from the guest, not the memory left to it. `--balloon 0` (the
 * default) leaves the guest all its RAM; `--balloon 1G` on a 4 GiB guest
 * asks the guest driver to give back 1 GiB. The byte count is rounded down
 * to 4 KiB pages (the balloon's unit, 5.5.6) and clamped to the guest's RAM.
 *
 * Host side: inflated pages and reported free pages are dropped with
 * madvise(MADV_DONTNEED) on the (private anonymous) guest RAM mapping, so
 * the host gets the memory back and the guest reads zeros if it touches the
 * page again. Deflate needs no work: pages fault back in on access. */
#ifndef CVISOR_VIRTIO_BALLOON_H
#define CVISOR_VIRTIO_BALLOON_H

#include <stdint.h>

#include "cvisor/evloop.h"
#include "cvisor/guest_mem.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"

/* Feature bits (5.5.3). cvisor offers STATS_VQ, DEFLATE_ON_OOM and
 * PAGE_REPORTING; FREE_PAGE_HINT and PAGE_POISON are not offered. */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

/* Statistics tags (5.5.6.3); memory amounts are bytes, the rest counts. */
#define VIRTIO_BALLOON_S_SWAP_IN 0
#define VIRTIO_BALLOON_S_SWAP_OUT 1
#define VIRTIO_BALLOON_S_MAJFLT 2
#define VIRTIO_BALLOON_S_MINFLT 3
#define VIRTIO_BALLOON_S_MEMFREE 4
#define VIRTIO_BALLOON_S_MEMTOT 5
#define VIRTIO_BALLOON_S_AVAIL 6
#define VIRTIO_BALLOON_S_CACHES 7
#define VIRTIO_BALLOON_S_HTLB_PGALLOC 8
#define VIRTIO_BALLOON_S_HTLB_PGFAIL 9
#define VIRTIO_BALLOON_S_NR 16 /* tags kept; Linux 6.12 sends up to 15 */

#define VIRTIO_BALLOON_PAGE_SIZE 4096u
#define VIRTIO_BALLOON_MAX_STATS 64	  /* tag/value pairs parsed from one buffer */
#define VIRTIO_BALLOON_STATS_INTERVAL_S 5 /* default statistics period */

struct virtio_balloon_stats {
	uint32_t target_pages;	 /* config num_pages: what the host asks for */
	uint32_t actual_pages;	 /* config actual: what the guest says it holds */
	uint64_t inflated_pages; /* valid PFNs received on inflateq (cumulative) */
	uint64_t deflated_pages; /* PFNs received on deflateq (cumulative) */
	uint64_t reported_pages; /* 4 KiB pages freed through page reporting */
	uint64_t invalid_pfns;	 /* inflate PFNs outside guest RAM, ignored */
	/* The last statistics buffer: values[tag] is valid if bit `tag` of
	 * valid is set; updated_ns is cv_now_ns() when it arrived (0: never). */
	uint32_t valid;
	uint64_t updated_ns;
	uint64_t values[VIRTIO_BALLOON_S_NR];
};

/* Initialize d as a virtio-balloon (label "virtio-balloon") with a starting
 * target of initial_target_bytes (see the semantics above). If loop is not
 * NULL, a timer on it asks the guest for fresh statistics every
 * VIRTIO_BALLOON_STATS_INTERVAL_S seconds (main thread). Returns 0,
 * -ERANGE for a target beyond guest RAM, -ENOMEM, or the timer's -errno. Undo with virtio_balloon_destroy. */
int virtio_balloon_create(struct virtio_dev *d, const struct guest_mem *mem, struct evloop *loop,
			  uint64_t initial_target_bytes) CV_MUST;

/* The device table's check and create (devices.h): --balloon SIZE, the
 * starting target (a plain number is MiB). */
int virtio_balloon_check(const char *what, const char *spec, struct cv_error *e) CV_MUST;
int virtio_balloon_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
				 const struct virtio_env *env, struct cv_error *e) CV_MUST;

/* Remove the timer and free the device's state (main thread). */
void virtio_balloon_destroy(struct virtio_dev *d);

/* Set the target (bytes the balloon should hold); any thread. Updates
 * num_pages and, once the driver is up, raises a config interrupt
 * (virtio_dev_config_changed). Returns 0, or -ERANGE (nothing changes) if
 * bytes exceed the guest's RAM. */
int virtio_balloon_set_target(struct virtio_dev *d, uint64_t bytes) CV_MUST;

/* The balloon's state and the guest's last statistics; any thread. */
int virtio_balloon_get_stats(struct virtio_dev *d, struct virtio_balloon_stats *out) CV_MUST;

/* Change the statistics period; 0 stops the periodic requests. Any thread.
 * Returns 0, -EINVAL without an event loop, or -errno from timerfd. */
int virtio_balloon_set_stats_interval(struct virtio_dev *d, unsigned int seconds) CV_MUST;

/* Ask the guest for fresh statistics now: return the stats buffer the
 * device holds (5.5.6.3); the guest refills and requeues it. Any thread.
 * Returns 0, or -EAGAIN if the device holds no stats buffer. */
int virtio_balloon_request_stats(struct virtio_dev *d) CV_MUST;

#endif
