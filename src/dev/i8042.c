/* i8042.c - the PS/2 controller (see include/cvisor/i8042.h).
 *
 * Just enough of the 8042 for Linux's i8042 driver to probe the controller
 * and find no devices behind it, and for the two classic reset paths
 * (command 0xFE and the output port's reset bit). Command numbers and
 * register bits are those of the IBM PC/AT Technical Reference, "Keyboard
 * Controller", and match Linux's drivers/input/serio/i8042.h. No IRQ lines
 * are modelled: nothing ever arrives from a keyboard or mouse. */
#include "cvisor/i8042.h"

#include <errno.h>
#include <string.h>

/* Status register (port 0x64 read). */
#define STS_OBF 0x01	 /* output buffer full */
#define STS_IBF 0x02	 /* input buffer full: always 0, writes complete at once */
#define STS_SYS 0x04	 /* system flag: set by self-test or command byte bit 2 */
#define STS_CMD 0x08	 /* last write was to the command port */
#define STS_UNLOCK 0x10	 /* keyboard inhibit switch off */
#define STS_AUXDATA 0x20 /* output buffer holds a byte from the aux port */
#define STS_VALID (STS_OBF | STS_SYS | STS_CMD | STS_UNLOCK | STS_AUXDATA)

/* Command byte ("CTR" in Linux). */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

/* Output port (commands 0xD0/0xD1). */
#define OUTP_RESET 0x01 /* active low: 0 holds the CPU in reset */
#define OUTP_A20 0x02
#define OUTP_KBD_IRQ 0x10
#define OUTP_AUX_IRQ 0x20

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_OUTP 0xd0
#define CMD_WRITE_OUTP 0xd1
#define CMD_WRITE_KBD_OUT 0xd2
#define CMD_WRITE_AUX_OUT 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_PULSE_BASE 0xf0

#define OUTBUF_LEN ((unsigned int)sizeof(((struct i8042 *)0)->outbuf))
#define I8042_STATE_VERSION 1

/* What firmware leaves behind before it boots an OS: self-test passed
 * (SYS), keyboard interrupt on, scancode translation on. */
#define CTR_POWER_ON (CTR_KBDINT | CTR_SYS | CTR_XLATE)

/* Queue a byte for the guest. The real controller has a single output
 * register, so a byte from the other port replaces anything unread: every
 * queued byte then comes from the port STS_AUXDATA names. */
static void out_push(struct i8042 *k, uint8_t v, bool aux)
{
	if (k->out_count && !(k->status & STS_AUXDATA) != !aux)
		k->out_count = 0;
	if (k->out_count == OUTBUF_LEN)
		return;
	k->outbuf[(k->out_head + k->out_count) % OUTBUF_LEN] = v;
	k->out_count++;
	k->status |= STS_OBF;
	if (aux)
		k->status |= STS_AUXDATA;
	else
		k->status &= (uint8_t)~STS_AUXDATA;
}

/* Reading an empty output buffer returns the last byte again, as the
 * output register still holds it. */
static uint8_t out_pop(struct i8042 *k)
{
	uint8_t v;

	if (!k->out_count)
		return k->outbuf[(k->out_head + OUTBUF_LEN - 1) % OUTBUF_LEN];
	v = k->outbuf[k->out_head];
	k->out_head = (k->out_head + 1) % OUTBUF_LEN;
	if (!--k->out_count)
		k->status &= (uint8_t) ~(STS_OBF | STS_AUXDATA);
	return v;
}

/* A20 is always enabled (KVM has no A20 gate) and the CPU is running; bits
 * 4-5 are the IRQ1/IRQ12 outputs, high while a byte waits with its
 * interrupt enabled. */
static uint8_t outport_read(const struct i8042 *k)
{
	uint8_t v = OUTP_RESET | OUTP_A20;

	if (k->status & STS_OBF) {
		if (k->status & STS_AUXDATA)
			v |= (k->cmd_byte & CTR_AUXINT) ? OUTP_AUX_IRQ : 0;
		else
			v |= (k->cmd_byte & CTR_KBDINT) ? OUTP_KBD_IRQ : 0;
	}
	return v;
}

static void i8042_reset_locked(struct i8042 *k)
{
	k->status = STS_SYS | STS_UNLOCK;
	k->cmd_byte = CTR_POWER_ON;
	k->pending_cmd = 0;
	memset(k->outbuf, 0, sizeof(k->outbuf));
	k->out_head = 0;
	k->out_count = 0;
}

void i8042_init(struct i8042 *k, void (*reset)(void *), void *ctx)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->reset = reset;
	k->ctx = ctx;
	i8042_reset_locked(k);
}

static void i8042_pulse_reset(struct i8042 *k)
{
	if (k->reset)
		k->reset(k->ctx);
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		out_push(k, k->cmd_byte, false);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP:
	case CMD_WRITE_KBD_OUT:
	case CMD_WRITE_AUX_OUT:
	case CMD_WRITE_AUX:
		k->pending_cmd = cmd; /* the parameter follows on the data port */
		break;
	case CMD_AUX_DISABLE:
		k->cmd_byte |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->cmd_byte &= (uint8_t)~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		out_push(k, 0x00, false); /* 0x00: no clock/data line error */
		break;
	case CMD_SELF_TEST:
		k->status |= STS_SYS;
		out_push(k, 0x55, false); /* 0x55: controller OK */
		break;
	case CMD_KBD_DISABLE:
		k->cmd_byte |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->cmd_byte &= (uint8_t)~CTR_KBDDIS;
		break;
	case CMD_READ_OUTP:
		out_push(k, outport_read(k), false);
		break;
	default:
		/* 0xF0-0xFF pulse the output port lines whose bit is 0 in the
		 * low nibble for 6 us; bit 0 is the CPU reset line (0xFE is the
		 * usual "reboot" command). Anything else is ignored. */
		if (cmd >= CMD_PULSE_BASE && !(cmd & OUTP_RESET))
			i8042_pulse_reset(k);
		break;
	}
}

static void i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;

	k->pending_cmd = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		k->cmd_byte = v;
		/* The status register's system flag follows command byte bit 2. */
		k->status = (uint8_t)((k->status & ~STS_SYS) | (v & CTR_SYS));
		break;
	case CMD_WRITE_OUTP:
		/* A20 is ignored; a 0 in bit 0 asserts the CPU reset line. */
		if (!(v & OUTP_RESET))
			i8042_pulse_reset(k);
		break;
	case CMD_WRITE_KBD_OUT:
		out_push(k, v, false);
		break;
	case CMD_WRITE_AUX_OUT:
		/* Linux's AUX_LOOP probe reads the echo with STS_AUXDATA set. */
		out_push(k, v, true);
		break;
	default:
		/* 0xD4 (to the mouse) and plain writes (to the keyboard) go to
		 * devices that are not there, so nothing answers. Without an
		 * IRQ line a reply (ACK, or 0xFE) would stay in the output
		 * buffer and be taken for the answer to the driver's next
		 * controller command. With silence, atkbd's GETID and SETLEDS
		 * time out in the background (serio's kthread, not the boot
		 * path) and it quietly decides there is no keyboard, and
		 * psmouse is never probed because the aux port fails the IRQ
		 * test. A guest can skip that 250 ms test with i8042.noaux. */
		break;
	}
}

static void i8042_data_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	if (!len)
		return;
	memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	data[0] = out_pop(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_data_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	if (!len)
		return;
	pthread_mutex_lock(&k->lock);
	k->status &= (uint8_t)~STS_CMD;
	i8042_data(k, data[0]);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	if (!len)
		return;
	memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	data[0] = k->status;
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	if (!len)
		return;
	pthread_mutex_lock(&k->lock);
	/* A new command abandons one still waiting for its parameter. */
	k->pending_cmd = 0;
	k->status |= STS_CMD;
	i8042_command(k, data[0]);
	pthread_mutex_unlock(&k->lock);
}

const struct bus_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

const struct bus_ops i8042_cmd_ops = {
	.read = i8042_cmd_read,
	.write = i8042_cmd_write,
};

static void i8042_dev_reset(void *dev)
{
	struct i8042 *k = dev;

	pthread_mutex_lock(&k->lock);
	i8042_reset_locked(k);
	pthread_mutex_unlock(&k->lock);
}

/* State format, version 1, all little-endian:
 *   u32 version
 *   u8 status, u8 cmd_byte, u8 pending_cmd
 *   u32 out_head, u32 out_count, u8 outbuf[16]
 * The whole ring is kept: the slot before out_head is what a read of an
 * empty buffer returns. */
static int i8042_dev_save(void *dev, struct state_buf *out)
{
	struct i8042 *k = dev;

	pthread_mutex_lock(&k->lock);
	state_put_u32(out, I8042_STATE_VERSION);
	state_put_u8(out, k->status);
	state_put_u8(out, k->cmd_byte);
	state_put_u8(out, k->pending_cmd);
	state_put_u32(out, k->out_head);
	state_put_u32(out, k->out_count);
	state_put_bytes(out, k->outbuf, sizeof(k->outbuf));
	pthread_mutex_unlock(&k->lock);
	return out->err;
}

static bool pending_cmd_valid(uint8_t cmd)
{
	return cmd == 0 || cmd == CMD_WRITE_CTR || (cmd >= CMD_WRITE_OUTP && cmd <= CMD_WRITE_AUX);
}

static int i8042_dev_load(void *dev, struct state_rd *in)
{
	struct i8042 *k = dev;
	uint8_t status, cmd_byte, pending, buf[sizeof(k->outbuf)];
	uint32_t head, count;

	if (state_get_u32(in) != I8042_STATE_VERSION)
		return -EINVAL;
	status = state_get_u8(in);
	cmd_byte = state_get_u8(in);
	pending = state_get_u8(in);
	head = state_get_u32(in);
	count = state_get_u32(in);
	state_get_bytes(in, buf, sizeof(buf));
	if (in->err)
		return -EINVAL;
	if (head >= OUTBUF_LEN || count > OUTBUF_LEN || !pending_cmd_valid(pending))
		return -EINVAL;
	/* OBF is exactly "bytes queued", AUXDATA only with OBF, IBF never. */
	if (status & ~STS_VALID || !(status & STS_OBF) != !count ||
	    ((status & STS_AUXDATA) && !count))
		return -EINVAL;

	pthread_mutex_lock(&k->lock);
	k->status = status;
	k->cmd_byte = cmd_byte;
	k->pending_cmd = pending;
	k->out_head = head;
	k->out_count = count;
	memcpy(k->outbuf, buf, sizeof(buf));
	pthread_mutex_unlock(&k->lock);
	return 0;
}

const struct device_ops i8042_device_ops = {
	.name = "i8042",
	.reset = i8042_dev_reset,
	.save = i8042_dev_save,
	.load = i8042_dev_load,
};
