/* serial8250.c - a 16550A UART (see include/cvisor/serial8250.h).
 *
 * Register behaviour follows the TI/National PC16550D datasheet; comments
 * name the register section or table a rule comes from. Transmission
 * is instantaneous: a THR write goes straight to the host callback, so THR
 * and the transmitter are always empty (LSR.THRE and LSR.TEMT always set). */
#include "cvisor/serial8250.h"

#include <errno.h>
#include <string.h>

/* Register offsets (DLAB = LCR bit 7 selects DLL/DLM at 0 and 1). */
#define UART_RBR 0 /* read: receiver buffer; write: THR */
#define UART_IER 1
#define UART_IIR 2 /* read: IIR; write: FCR */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK 0x0f  /* bits 4-7 are always 0 (datasheet, IER) */

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_STORED 0xc9 /* enable, DMA mode, trigger level; bits 1-2 self-clear */

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f /* bits 5-7 are always 0 (datasheet, MCR) */

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_FIFOE 0x80
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI | LSR_FIFOE)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_DELTAS 0x0f

#define SERIAL8250_STATE_VERSION 1

/* The modem input lines: in loopback DTR->DSR, RTS->CTS, OUT1->RI and
 * OUT2->DCD (datasheet, MCR bit 4); otherwise a null-modem peer that is always there, so
 * DCD, DSR and CTS are asserted and getty does not wait for carrier. */
static uint8_t msr_lines(uint8_t mcr)
{
	uint8_t m = 0;

	if (!(mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	if (mcr & MCR_DTR)
		m |= MSR_DSR;
	if (mcr & MCR_RTS)
		m |= MSR_CTS;
	if (mcr & MCR_OUT1)
		m |= MSR_RI;
	if (mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

/* Latch the line state for a new MCR and set the delta bits (datasheet, MSR): DCTS,
 * DDSR and DDCD on any change, TERI only on RI's trailing edge. */
static void msr_set_lines(struct serial8250 *s)
{
	uint8_t old = s->msr & 0xf0, now = msr_lines(s->mcr), chg = old ^ now;

	if (chg & MSR_CTS)
		s->msr |= MSR_DCTS;
	if (chg & MSR_DSR)
		s->msr |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		s->msr |= MSR_TERI;
	if (chg & MSR_DCD)
		s->msr |= MSR_DDCD;
	s->msr = (s->msr & MSR_DELTAS) | now;
}

/* Highest-priority pending source (datasheet, "Interrupt Control Functions" table). */
static uint8_t iir_source(const struct serial8250 *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr & (LSR_OE | LSR_PE | LSR_FE | LSR_BI)))
		return IIR_RLSI;
	if ((s->ier & IER_ERBFI) && s->rx_count)
		return IIR_RDI;
	if ((s->ier & IER_ETBEI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

/* Recompute LSR.DR, IIR and the IRQ line after any state change. On PCs the
 * INTR pin reaches the PIC through a buffer enabled by OUT2, and in loopback
 * the OUT pins are forced inactive (datasheet, MCR bit 4), so either gates the IRQ. */
static void serial_update(struct serial8250 *s)
{
	uint8_t src;
	bool level;

	s->lsr =
		(uint8_t)((s->lsr & LSR_ERRORS) | LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0));
	src = iir_source(s);
	s->iir = (uint8_t)(src | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0));
	level = !(src & IIR_NO_INT) && (s->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->set_irq)
			s->set_irq(s->ctx, level);
	}
}

/* Callers check for room (rx_room_locked, or an overrun in loopback);
 * a full FIFO drops the byte here too, so the invariant cannot break. */
static void rx_push(struct serial8250 *s, uint8_t b)
{
	if (s->rx_count >= SERIAL8250_RX_BUF)
		return;
	s->rx[(s->rx_head + s->rx_count) % SERIAL8250_RX_BUF] = b;
	s->rx_count++;
}

static uint8_t rx_pop(struct serial8250 *s)
{
	uint8_t b;

	/* An empty RBR still holds the last character received. */
	if (!s->rx_count)
		return s->rx[(s->rx_head + SERIAL8250_RX_BUF - 1) % SERIAL8250_RX_BUF];
	b = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL8250_RX_BUF;
	s->rx_count--;
	return b;
}

static void serial_reset_locked(struct serial8250 *s)
{
	/* Power-on values (datasheet, "UART Reset Configuration" table). */
	s->ier = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = msr_lines(0);
	s->scr = 0;
	s->dll = 0x0c; /* 9600 baud, what a BIOS leaves behind */
	s->dlm = 0;
	s->fcr = 0;
	s->thr_ipending = false;
	memset(s->rx, 0, sizeof(s->rx));
	s->rx_head = 0;
	s->rx_count = 0;
	serial_update(s);
}

void serial8250_init(struct serial8250 *s, void (*tx)(void *, const uint8_t *, size_t),
		     void (*set_irq)(void *, int), void *ctx)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->tx = tx;
	s->set_irq = set_irq;
	s->ctx = ctx;
	serial_reset_locked(s); /* the line starts low: irq_level is false */
}

static uint8_t serial_read_reg(struct serial8250 *s, uint64_t offset)
{
	uint8_t v;

	switch (offset) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		return rx_pop(s);
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR:
		/* Reading IIR while THRE is the reported source clears it. */
		v = s->iir;
		if ((v & 0x0f) == IIR_THRI)
			s->thr_ipending = false;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		/* Reading LSR clears the error bits (datasheet, LSR). */
		v = s->lsr;
		s->lsr &= (uint8_t)~LSR_ERRORS;
		return v;
	case UART_MSR:
		/* Reading MSR clears the delta bits (datasheet, MSR). */
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTAS;
		return v;
	case UART_SCR:
		return s->scr;
	}
	return 0;
}

static void serial_write_thr(struct serial8250 *s, uint8_t v)
{
	if (s->mcr & MCR_LOOP) {
		/* Loopback connects the transmitter to the receiver (MCR bit
		 * 4); a full receiver is an overrun (LSR bit 1). */
		if (s->rx_count < SERIAL8250_RX_BUF)
			rx_push(s, v);
		else
			s->lsr |= LSR_OE;
	} else if (s->tx) {
		s->tx(s->ctx, &v, 1);
	}
	/* Writing THR clears the THRE interrupt; the byte leaves at once, THR
	 * is empty again and THRE is pending again. Linux's 8250
	 * driver refills the FIFO from exactly this interrupt. */
	s->thr_ipending = (s->ier & IER_ETBEI) != 0;
}

static void serial_write_fcr(struct serial8250 *s, uint8_t v)
{
	/* Changing FCR0 clears both FIFOs, and the other bits are only
	 * programmed while FCR0 is 1 (datasheet, FCR). */
	if (!(v & FCR_ENABLE)) {
		if (s->fcr & FCR_ENABLE)
			s->rx_count = 0;
		s->fcr = 0;
		return;
	}
	if (!(s->fcr & FCR_ENABLE) || (v & FCR_CLEAR_RX))
		s->rx_count = 0;
	s->fcr = v & FCR_STORED;
}

static void serial_write_reg(struct serial8250 *s, uint64_t offset, uint8_t v)
{
	switch (offset) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_write_thr(s, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		/* Setting ETBEI while THR is empty raises THRE; Linux's
		 * start_tx and its UART_BUG_THRE/TXEN probes depend on it. */
		if ((v & IER_ETBEI) && !(s->ier & IER_ETBEI))
			s->thr_ipending = true;
		else if (!(v & IER_ETBEI))
			s->thr_ipending = false;
		s->ier = v & IER_MASK;
		break;
	case UART_IIR:
		serial_write_fcr(s, v);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & MCR_MASK;
		msr_set_lines(s);
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		/* LSR and MSR are read-only here; writing them is a factory
		 * test mode (datasheet, LSR note) that nothing relies on. */
		break;
	}
}

/* Only byte accesses are meaningful on an 8-bit part; a wider access acts
 * on the low byte and reads return zero in the other bytes. */
static void serial_bus_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct serial8250 *s = opaque;

	if (!len)
		return;
	memset(data, 0, len);
	pthread_mutex_lock(&s->lock);
	data[0] = serial_read_reg(s, offset);
	serial_update(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_bus_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct serial8250 *s = opaque;

	if (!len)
		return;
	pthread_mutex_lock(&s->lock);
	serial_write_reg(s, offset, data[0]);
	serial_update(s);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_ops serial8250_bus_ops = {
	.read = serial_bus_read,
	.write = serial_bus_write,
};

/* The serial input pin is disconnected in loopback (MCR bit 4), so host input
 * waits until the guest leaves it. */
static size_t rx_room_locked(const struct serial8250 *s)
{
	if (s->mcr & MCR_LOOP)
		return 0;
	return SERIAL8250_RX_BUF - s->rx_count;
}

size_t serial8250_rx(struct serial8250 *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = rx_room_locked(s);
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		rx_push(s, buf[i]);
	serial_update(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial8250_rx_room(struct serial8250 *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = rx_room_locked(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void serial_dev_reset(void *dev)
{
	struct serial8250 *s = dev;

	pthread_mutex_lock(&s->lock);
	serial_reset_locked(s);
	pthread_mutex_unlock(&s->lock);
}

/* State format, version 1, all little-endian:
 *   u32 version
 *   u8 ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr, thr_ipending
 *   u32 rx_head, u32 rx_count, u8 rx[SERIAL8250_RX_BUF]
 * IIR and the IRQ level are derived and recomputed on load. */
static int serial_dev_save(void *dev, struct state_buf *out)
{
	struct serial8250 *s = dev;

	pthread_mutex_lock(&s->lock);
	state_put_u32(out, SERIAL8250_STATE_VERSION);
	state_put_u8(out, s->ier);
	state_put_u8(out, s->lcr);
	state_put_u8(out, s->mcr);
	state_put_u8(out, s->lsr);
	state_put_u8(out, s->msr);
	state_put_u8(out, s->scr);
	state_put_u8(out, s->dll);
	state_put_u8(out, s->dlm);
	state_put_u8(out, s->fcr);
	state_put_u8(out, s->thr_ipending);
	state_put_u32(out, s->rx_head);
	state_put_u32(out, s->rx_count);
	state_put_bytes(out, s->rx, sizeof(s->rx));
	pthread_mutex_unlock(&s->lock);
	return out->err;
}

/* Accept only states this model can reach, so that every invariant the
 * register code relies on (ring bounds above all) holds after a load. */
static int serial_state_valid(const struct serial8250 *t, uint8_t thr_ipending)
{
	if (t->ier & ~IER_MASK || t->mcr & ~MCR_MASK)
		return 0;
	if (t->rx_head >= SERIAL8250_RX_BUF || t->rx_count > SERIAL8250_RX_BUF)
		return 0;
	if ((t->lsr & ~(LSR_DR | LSR_OE)) != (LSR_THRE | LSR_TEMT) ||
	    !(t->lsr & LSR_DR) != !t->rx_count)
		return 0;
	if ((t->msr & ~MSR_DELTAS) != msr_lines(t->mcr))
		return 0;
	if (t->fcr & ~FCR_STORED || (!(t->fcr & FCR_ENABLE) && t->fcr))
		return 0;
	if (thr_ipending > 1 || (thr_ipending && !(t->ier & IER_ETBEI)))
		return 0;
	return 1;
}

static int serial_dev_load(void *dev, struct state_rd *in)
{
	struct serial8250 *s = dev;
	struct serial8250 t;
	uint8_t thr_ipending;

	if (state_get_u32(in) != SERIAL8250_STATE_VERSION)
		return -EINVAL;
	t.ier = state_get_u8(in);
	t.lcr = state_get_u8(in);
	t.mcr = state_get_u8(in);
	t.lsr = state_get_u8(in);
	t.msr = state_get_u8(in);
	t.scr = state_get_u8(in);
	t.dll = state_get_u8(in);
	t.dlm = state_get_u8(in);
	t.fcr = state_get_u8(in);
	thr_ipending = state_get_u8(in);
	t.rx_head = state_get_u32(in);
	t.rx_count = state_get_u32(in);
	state_get_bytes(in, t.rx, sizeof(t.rx));
	if (in->err || !serial_state_valid(&t, thr_ipending))
		return -EINVAL;

	pthread_mutex_lock(&s->lock);
	s->ier = t.ier;
	s->lcr = t.lcr;
	s->mcr = t.mcr;
	s->lsr = t.lsr;
	s->msr = t.msr;
	s->scr = t.scr;
	s->dll = t.dll;
	s->dlm = t.dlm;
	s->fcr = t.fcr;
	s->thr_ipending = thr_ipending;
	memcpy(s->rx, t.rx, sizeof(s->rx));
	s->rx_head = t.rx_head;
	s->rx_count = t.rx_count;
	serial_update(s); /* drives the line only if the loaded level differs */
	pthread_mutex_unlock(&s->lock);
	return 0;
}

const struct device_ops serial8250_device_ops = {
	.name = "serial8250",
	.reset = serial_dev_reset,
	.save = serial_dev_save,
	.load = serial_dev_load,
};
