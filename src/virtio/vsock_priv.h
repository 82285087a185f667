/* vsock_priv.h - private to the virtio-vsock model: the packet header and
 * the device and connection state shared by vsock.c (the device, its
 * queues and lifecycle) and vsock_conn.c (the connection table and the
 * unix sockets behind it). */
#ifndef CVISOR_VIRTIO_VSOCK_PRIV_H
#define CVISOR_VIRTIO_VSOCK_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cvisor/virtio_vsock.h"

#define HDR_LEN 44 /* struct virtio_vsock_hdr (5.10.6) */
#define TYPE_STREAM 1
#define SHUT_F_RCV 1 /* 5.10.6.5: the sender will receive no more */
#define SHUT_F_SEND 2
#define MAX_PKT (64u << 10) /* payload per packet, either way */
#define RST_MAX 512	    /* RSTs owed to the guest for unknown ports */
#define LINE_MAX_LEN 32	    /* "CONNECT <port>\n" */
#define HANDSHAKE_NS 2000000000ULL
#define HOST_PORT_BASE (1u << 30)

enum {
	OP_REQUEST = 1,
	OP_RESPONSE,
	OP_RST,
	OP_SHUTDOWN,
	OP_RW,
	OP_CREDIT_UPDATE,
	OP_CREDIT_REQUEST
};
enum conn_state { C_FREE, C_HANDSHAKE, C_REQUESTING, C_ESTABLISHED, C_DEAD };
/* Control packets owed to the guest, sent in this order. */
enum { P_REQUEST = 1, P_RESPONSE = 2, P_CREDIT_UPDATE = 4, P_CREDIT_REQUEST = 8, P_SHUTDOWN = 16 };

/* struct virtio_vsock_hdr (5.10.6), packed little-endian: le64 src_cid,
 * dst_cid; le32 src_port, dst_port, len; le16 type, op; le32 flags,
 * buf_alloc, fwd_cnt. Held here as one u64 per field. */
union hdr {
	struct {
		uint64_t src_cid, dst_cid, src_port, dst_port, len, type, op, flags, buf_alloc,
			fwd_cnt;
	};
	uint64_t f[10];
};

struct vsock;

struct conn {
	struct vsock *vs;
	enum conn_state state;
	int fd;
	uint32_t events; /* what the loop watches; 0 = not registered */
	bool watched;
	uint32_t guest_port, host_port;
	uint8_t pending;
	bool rx_ready;	    /* the socket may have data for the guest */
	bool hup;	    /* the socket hung up: no longer watched */
	bool host_eof;	    /* read EOF: SHUTDOWN(SEND) owed or sent */
	bool wr_shut;	    /* shutdown(SHUT_WR) done after the guest's SEND */
	uint8_t guest_shut; /* SHUTDOWN flags the guest sent */
	/* 5.10.6.3: the guest's buffer and what we sent / what it consumed. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
	bool credit_requested;
	/* Our side: bytes written to the socket, as last told to the guest. */
	uint32_t fwd_cnt, fwd_reported;
	uint8_t *buf; /* guest -> host bytes the socket did not take yet */
	uint32_t buf_head, buf_len;
	char line[LINE_MAX_LEN];
	unsigned int line_len;
	uint64_t deadline_ns;
};

struct vsock {
	struct virtio_dev *d;
	struct evloop *loop;
	uint64_t cid;
	char path[VIRTIO_VSOCK_PATH_MAX + 1];
	int listen_fd, kick_fd, timer_fd;
	struct conn conns[VIRTIO_VSOCK_CONN_MAX];
	uint32_t rsts[RST_MAX][2]; /* guest port, host port */
	unsigned int rst_head, rst_len, rr;
	uint32_t next_port;
	bool event_pending, rx_held;
	struct virtq_elem rx_elem, tx_elem, ev_elem;
	bool warned_hdr, warned_cid, warned_credit, warned_small;
};

/* vsock.c: complete the held rx buffer with header h (filled in for c, if
 * not NULL) and h->len payload bytes already in place after it (the push
 * marks those dirty: write them through a slice of exactly that range). */
void vsock_rx_push(struct vsock *vs, union hdr *h, struct conn *c);

/* vsock.c: send the guest what is owed, while it provides rx buffers. */
void vsock_rx(struct vsock *vs);

/* The REQUESTING or ESTABLISHED connection for this pair of ports, or NULL. */
struct conn *conn_find(struct vsock *vs, uint32_t guest_port, uint32_t host_port);

/* Owe the guest an OP_RST for a pair of ports that has no connection. */
void vsock_rst_queue(struct vsock *vs, uint32_t guest_port, uint32_t host_port);

/* Close c's socket and free its slot, owing the guest an RST if rst. */
void conn_close(struct conn *c, bool rst);

/* Update what the event loop watches on c's socket. */
void conn_watch(struct conn *c);

/* Bytes the guest can still take on c (5.10.6.3). */
uint32_t conn_credit(const struct conn *c);

/* c's socket may have data the guest still wants. */
bool conn_rx_wanted(const struct conn *c);

/* Finish c (shutdown, RST) once both directions are done. */
void conn_check_done(struct conn *c);

/* Write c's buffered guest bytes to the socket. */
void conn_flush(struct conn *c);

/* OP_RW: len payload bytes after the header of e, to c's socket. */
void conn_from_guest(struct conn *c, const struct virtq_elem *e, uint32_t len);

/* Read c's socket into the held rx buffer. True if a packet was pushed. */
bool conn_to_guest(struct vsock *vs, struct conn *c);

/* OP_REQUEST from the guest (header h) to a host port: connect or RST. */
void vsock_guest_connect(struct vsock *vs, const union hdr *h);

/* Event loop handlers: a connection on the listener, the handshake timer. */
void vsock_accept(void *opaque, int fd, uint32_t events);
void vsock_timer(void *opaque, int fd, uint32_t events);

/* Listen on path (a stale socket file is replaced). Returns the fd, or
 * -errno with one line in err. */
int vsock_listen(const char *path, char *err, size_t errlen) CV_MUST;

#endif
