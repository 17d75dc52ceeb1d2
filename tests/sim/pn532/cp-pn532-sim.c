/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-pn532-sim: a PN532 NFC controller on a pty, for real libnfc
 * (pn532_uart driver) with no hardware.
 *
 * Two uses:
 *  - phone mode (--target-pty only): one PN532 whose host puts it in
 *    target mode (the device's tag); a scripted phone plays the initiator
 *    over a simulated RF field;
 *  - link mode (--target-pty and --initiator-pty): two PN532s joined by the
 *    simulated field, the second one driven by its host in initiator mode
 *    (the companion's reader). A script may still run (sleep, vanish).
 *
 * The chip side speaks the PN532 host frame protocol (normal and extended
 * frames, ACK, the HSU wake-up preamble, the host's ACK as abort) and the
 * commands libnfc sends; see docs/nfc.md and the man page for the script
 * language. Everything the tests check is printed on stdout, one line per
 * event; -v traces every frame on stderr.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX 300
#define APDU_MAX 270

/* PN532 commands (host to chip). */
enum {
	CMD_DIAGNOSE = 0x00,
	CMD_GET_FIRMWARE_VERSION = 0x02,
	CMD_GET_GENERAL_STATUS = 0x04,
	CMD_READ_REGISTER = 0x06,
	CMD_WRITE_REGISTER = 0x08,
	CMD_SET_PARAMETERS = 0x12,
	CMD_SAM_CONFIGURATION = 0x14,
	CMD_POWER_DOWN = 0x16,
	CMD_RF_CONFIGURATION = 0x32,
	CMD_IN_DATA_EXCHANGE = 0x40,
	CMD_IN_COMMUNICATE_THRU = 0x42,
	CMD_IN_DESELECT = 0x44,
	CMD_IN_LIST_PASSIVE_TARGET = 0x4A,
	CMD_IN_RELEASE = 0x52,
	CMD_TG_GET_DATA = 0x86,
	CMD_TG_INIT_AS_TARGET = 0x8C,
	CMD_TG_SET_DATA = 0x8E,
};

/* Status bytes (low 6 bits; bit 7 must stay clear: libnfc aborts on NAD). */
#define ST_OK 0x00
#define ST_TIMEOUT 0x01
#define ST_RELEASED 0x29
#define ST_MI 0x40               /* More Information: the rest follows (chaining) */

/*
 * The ATS the PN532 sends for its ISO 14443-4 PICC emulation: it builds
 * it itself and takes only the historical bytes from TgInitAsTarget
 * (UM0701 7.3.14; libnfc 1.8 utils/nfc-relay-picc.c lines 359-365:
 * "ATS is always automatically replaced by PN532 ... (05) 75 33 92 03").
 * T0 75: TA TB TC follow, FSCI 5 (FSC 64 bytes); TA 33: 106/212/424
 * kbit/s both ways; TB 92: FWI 9, SFGI 2; TC 03: NAD and CID supported.
 */
static const uint8_t pn532_ats[] = { 0x75, 0x33, 0x92, 0x03 };
static const unsigned fsc_table[] = { 16, 24, 32, 40, 48, 64, 96, 128, 256 };

enum role { ROLE_TARGET, ROLE_INITIATOR };

struct chip {
	const char *name;
	enum role role;
	char *link_path;
	int master;
	int slave;               /* kept open so the master never sees a hang-up */
	int wake[2];
	pthread_t thread;
	uint8_t rx[4096];
	size_t rx_len;
	int pending;             /* command waiting for the field, -1 none */
	int64_t deadline_us;
	unsigned armed_session;
	int vanish_ms;           /* requested by the script */
	unsigned generation;     /* bumped when the pty comes back */
	uint8_t regs[65536];
	unsigned frames_in;      /* host frames of the current RF session */
	unsigned frames_out;
};

enum field_state { F_IDLE, F_ARMED, F_ACTIVE, F_RELEASED };

struct session_stats {
	unsigned apdus;
	size_t c_bytes;
	size_t r_bytes;
	unsigned rf_frames;
	size_t rf_bytes;
	double air_us;
	unsigned chained;        /* I-blocks sent with the chaining bit */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum field_state state;
	uint8_t mifare[6];       /* SENS_RES (2), NFCID1t (3), SEL_RES */
	uint8_t hist[48];
	size_t hist_len;
	bool has_cmd;
	uint8_t cmd[APDU_MAX];
	size_t cmd_len;
	size_t cmd_off;          /* handed to the target's host so far (chaining) */
	unsigned fsc;            /* the target's frame size, from its ATS */
	bool has_resp;
	uint8_t resp[APDU_MAX];
	size_t resp_len;
	unsigned session;
	struct session_stats st;
	struct chip *target;
	struct chip *initiator;
	int fwt_ms;
} field = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.fwt_ms = 5000,
	.fsc = 64,
};

static bool verbose;
static volatile sig_atomic_t quit;
static int quit_pipe[2] = { -1, -1 };
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void trace(const struct chip *c, const char *dir, const uint8_t *b, size_t n)
{
	if (!verbose)
		return;
	pthread_mutex_lock(&out_lock);
	fprintf(stderr, "pn532-sim %s %s", c->name, dir);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", b[i]);
	fputc('\n', stderr);
	pthread_mutex_unlock(&out_lock);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void abs_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void hex(char *out, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
}

static long unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
		    sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = v;
	}
	return n / 2;
}

static void wake(struct chip *c)
{
	if (c && c->wake[1] >= 0) {
		char b = 1;

		if (write(c->wake[1], &b, 1) < 0) {
			/* a full pipe already wakes the chip */
		}
	}
}

/* Under field.lock: something changed that the other side waits for. */
static void field_changed(void)
{
	pthread_cond_broadcast(&field.cond);
	wake(field.target);
	wake(field.initiator);
}

/* ---- RF accounting (ISO 14443-A at 106 kbit/s) ---- */

/*
 * One bit lasts 128/fc (9.44 us); a byte is 8 bits + parity; a frame adds
 * start and end of communication; between frames at least the frame delay
 * time of 1172/fc (86 us). The tag's own processing time is not counted.
 */
#define BIT_US (128.0 / 13.56)
#define FDT_US (1172.0 / 13.56)

static void rf_frame(size_t bytes)
{
	field.st.rf_frames++;
	field.st.rf_bytes += bytes;
	field.st.air_us += (bytes * 9 + 2) * BIT_US + FDT_US;
}

static void rf_activation(void)
{
	rf_frame(1);                             /* REQA (7 bits, counted as a byte) */
	rf_frame(2);                             /* ATQA */
	rf_frame(2);                             /* ANTICOLLISION CL1 */
	rf_frame(5);                             /* UID CL1 + BCC */
	rf_frame(9);                             /* SELECT CL1 + CRC */
	rf_frame(3);                             /* SAK + CRC */
	rf_frame(4);                             /* RATS + CRC */
	rf_frame(3 + field.hist_len + 2);        /* ATS (TL T0 TA TB TC, historical, CRC) */
}

static void session_begin(void)
{
	memset(&field.st, 0, sizeof(field.st));
	field.session++;
	field.has_cmd = false;
	field.has_resp = false;
	field.state = F_ACTIVE;
	if (field.target) {
		field.target->frames_in = 0;
		field.target->frames_out = 0;
	}
	if (field.initiator) {
		field.initiator->frames_in = 0;
		field.initiator->frames_out = 0;
	}
	rf_activation();
	say("session %u start", field.session);
}

static void session_end(const char *why)
{
	unsigned host_t = 0, host_i = 0;

	rf_frame(3);                             /* S(DESELECT) + CRC */
	rf_frame(3);                             /* its answer */
	if (field.target)
		host_t = field.target->frames_in + field.target->frames_out;
	if (field.initiator)
		host_i = field.initiator->frames_in + field.initiator->frames_out;
	say("session %u end %s apdus=%u c-apdu-bytes=%zu r-apdu-bytes=%zu rf-frames=%u rf-bytes=%zu air-us=%.0f host-frames-target=%u host-frames-initiator=%u chained-blocks=%u",
	    field.session, why, field.st.apdus, field.st.c_bytes, field.st.r_bytes,
	    field.st.rf_frames, field.st.rf_bytes, field.st.air_us, host_t, host_i,
	    field.st.chained);
}

/* Under field.lock: the initiator side (chip or phone) leaves. */
static void field_release(const char *why)
{
	if (field.state == F_ACTIVE) {
		field.state = F_RELEASED;
		session_end(why);
		field_changed();
	}
}

/* Under field.lock: the target side stops being a target. */
static void field_target_gone(const char *why)
{
	if (field.state == F_ACTIVE)
		session_end(why);
	field.state = F_IDLE;
	field_changed();
}

/* The INF bytes of one I-block to the target: its FSC less PCB and CRC
 * (ISO 14443-4 7.1.1; no CID or NAD, as phones and the PN532 send them). */
static size_t block_inf(void)
{
	return field.fsc - 3;
}

/* Under field.lock: an exchange, both directions. A C-APDU longer than
 * one block went as chained I-blocks, each but the last answered by an
 * R(ACK) (ISO 14443-4 7.5.2). */
static void count_apdu(size_t c_len, size_t r_len)
{
	size_t left = c_len;

	field.st.apdus++;
	field.st.c_bytes += c_len;
	field.st.r_bytes += r_len;
	while (left > block_inf()) {
		rf_frame(1 + block_inf() + 2);   /* PCB (chaining) + INF + CRC */
		rf_frame(3);                     /* R(ACK) + CRC */
		field.st.chained++;
		left -= block_inf();
	}
	rf_frame(1 + left + 2);                  /* PCB + INF + CRC */
	rf_frame(1 + r_len + 2);
}

/* ---- host frames ---- */

static void chip_write(struct chip *c, const uint8_t *b, size_t n)
{
	while (n > 0 && c->master >= 0) {
		ssize_t w = write(c->master, b, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = c->master, .events = POLLOUT };

				poll(&p, 1, 100);
				continue;
			}
			return;
		}
		b += w;
		n -= (size_t)w;
	}
}

static void send_ack(struct chip *c)
{
	static const uint8_t ack[] = { 0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00 };

	trace(c, "<- ack", NULL, 0);
	chip_write(c, ack, sizeof(ack));
}

static void send_syntax_error(struct chip *c)
{
	static const uint8_t err[] = { 0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00 };

	chip_write(c, err, sizeof(err));
}

/* Response to command cmd: D5 (cmd+1) data. */
static void reply(struct chip *c, uint8_t cmd, const uint8_t *data, size_t n)
{
	uint8_t f[FRAME_MAX + 16];
	size_t len = n + 2, p = 0;
	uint8_t dcs = 0;

	f[p++] = 0x00;
	f[p++] = 0x00;
	f[p++] = 0xFF;
	if (len <= 255) {
		f[p++] = len;
		f[p++] = (uint8_t)(0x100 - len);
	} else {
		f[p++] = 0xFF;
		f[p++] = 0xFF;
		f[p++] = len >> 8;
		f[p++] = len & 0xFF;
		f[p++] = (uint8_t)(0x100 - ((len >> 8) + (len & 0xFF)));
	}
	f[p++] = 0xD5;
	f[p++] = cmd + 1;
	if (n)
		memcpy(f + p, data, n);
	p += n;
	dcs = 0xD5 + cmd + 1;
	for (size_t i = 0; i < n; i++)
		dcs += data[i];
	f[p++] = (uint8_t)(0x100 - dcs);
	f[p++] = 0x00;
	trace(c, "<-", f + 5 + (len > 255 ? 3 : 0), len);
	c->frames_out++;
	chip_write(c, f, p);
}

static void reply_status(struct chip *c, uint8_t cmd, uint8_t status)
{
	reply(c, cmd, &status, 1);
}

static void reply_status_data(struct chip *c, uint8_t cmd, uint8_t status,
			      const uint8_t *data, size_t n)
{
	uint8_t b[FRAME_MAX];

	b[0] = status;
	memcpy(b + 1, data, n);
	reply(c, cmd, b, n + 1);
}

/* ---- commands ---- */

/* Under field.lock: complete c->pending if the field allows it. */
static void try_complete(struct chip *c)
{
	if (c->pending < 0)
		return;

	switch (c->pending) {
	case CMD_TG_INIT_AS_TARGET:
		if (field.state == F_ACTIVE && field.session != c->armed_session) {
			/* Mode: 106 kbit/s, ISO 14443-4 PICC; then the RATS the
			 * chip answered itself (libnfc wants at least a byte). */
			static const uint8_t act[] = { 0x08, 0xE0, 0x80 };

			c->armed_session = field.session;
			c->pending = -1;
			reply(c, CMD_TG_INIT_AS_TARGET, act, sizeof(act));
		}
		break;
	case CMD_TG_GET_DATA:
		if (field.state == F_RELEASED || field.state != F_ACTIVE ||
		    c->armed_session != field.session) {
			if (field.state == F_RELEASED) {
				field.state = F_IDLE;
				pthread_cond_broadcast(&field.cond);
			}
			c->pending = -1;
			reply_status(c, CMD_TG_GET_DATA, ST_RELEASED);
		} else if (field.has_cmd && field.cmd_off < field.cmd_len) {
			/* One I-block per TgGetData: a chained one (more
			 * follow) with MI in the status byte, as the chip
			 * hands them over (UM0701 7.1, 7.3.16); the host asks
			 * for the next with another TgGetData. */
			size_t k = field.cmd_len - field.cmd_off;
			uint8_t st = ST_OK;

			if (k > block_inf()) {
				k = block_inf();
				st |= ST_MI;
			}
			c->pending = -1;
			reply_status_data(c, CMD_TG_GET_DATA, st, field.cmd + field.cmd_off, k);
			field.cmd_off += k;
		}
		break;
	case CMD_IN_LIST_PASSIVE_TARGET:
		if (field.state == F_ARMED) {
			uint8_t b[64];
			size_t n = 0;

			session_begin();
			field_changed();
			b[n++] = 1;                      /* NbTg */
			b[n++] = 1;                      /* Tg */
			b[n++] = field.mifare[1];        /* SENS_RES as libnfc decodes it */
			b[n++] = field.mifare[0];
			b[n++] = field.mifare[5];        /* SEL_RES */
			b[n++] = 4;
			b[n++] = 0x08;                   /* NFCID1 byte 0 is hard-wired */
			memcpy(b + n, field.mifare + 2, 3);
			n += 3;
			b[n++] = 1 + sizeof(pn532_ats) + field.hist_len;  /* ATS: TL, T0 TA TB TC, Tk */
			memcpy(b + n, pn532_ats, sizeof(pn532_ats));
			n += sizeof(pn532_ats);
			memcpy(b + n, field.hist, field.hist_len);
			n += field.hist_len;
			c->pending = -1;
			reply(c, CMD_IN_LIST_PASSIVE_TARGET, b, n);
		} else if (now_us() >= c->deadline_us) {
			static const uint8_t none[] = { 0x00 };

			c->pending = -1;
			reply(c, CMD_IN_LIST_PASSIVE_TARGET, none, 1);
		}
		break;
	case CMD_IN_DATA_EXCHANGE:
		if (field.state == F_ACTIVE && field.has_resp) {
			field.has_resp = false;
			count_apdu(field.cmd_len, field.resp_len);
			c->pending = -1;
			reply_status_data(c, CMD_IN_DATA_EXCHANGE, ST_OK, field.resp, field.resp_len);
		} else if (field.state != F_ACTIVE || now_us() >= c->deadline_us) {
			c->pending = -1;
			field.has_cmd = false;
			reply_status(c, CMD_IN_DATA_EXCHANGE, ST_TIMEOUT);
		}
		break;
	default:
		c->pending = -1;
		break;
	}
}

static void handle_tg_init(struct chip *c, const uint8_t *d, size_t n)
{
	size_t p;

	if (n < 37) {
		send_syntax_error(c);
		return;
	}
	memcpy(field.mifare, d + 1, 6);
	field.fsc = fsc_table[pn532_ats[0] & 0x0F];
	/* mode (1), MIFARE (6), FeliCa (18), NFCID3t (10), then GB and Tk. */
	p = 35;
	p += 1 + d[p];
	field.hist_len = 0;
	if (p < n) {
		size_t tk = d[p];

		if (tk > sizeof(field.hist) || p + 1 + tk > n)
			tk = 0;
		memcpy(field.hist, d + p + 1, tk);
		field.hist_len = tk;
	}
	if (field.state == F_ACTIVE)
		session_end("target-restarted");
	field.state = F_ARMED;
	c->pending = CMD_TG_INIT_AS_TARGET;
	field_changed();
}

static void handle_command(struct chip *c, const uint8_t *d, size_t n)
{
	uint8_t cmd = d[0];
	uint8_t b[FRAME_MAX];

	d++;
	n--;
	c->frames_in++;
	send_ack(c);

	pthread_mutex_lock(&field.lock);
	if (c->pending >= 0) {
		/* A new command replaces a pending one, as on the chip. */
		if (c->pending == CMD_TG_INIT_AS_TARGET && field.state == F_ARMED)
			field.state = F_IDLE;
		c->pending = -1;
	}

	switch (cmd) {
	case CMD_DIAGNOSE:
		if (n >= 1 && d[0] == 0x06) {
			reply_status(c, cmd, field.state == F_ACTIVE ? ST_OK : ST_TIMEOUT);
		} else {
			reply(c, cmd, d, n);
		}
		break;
	case CMD_GET_FIRMWARE_VERSION: {
		static const uint8_t fw[] = { 0x32, 0x01, 0x06, 0x07 };

		reply(c, cmd, fw, sizeof(fw));
		break;
	}
	case CMD_GET_GENERAL_STATUS: {
		static const uint8_t gs[] = { 0x00, 0x00, 0x00, 0x00 };

		reply(c, cmd, gs, sizeof(gs));
		break;
	}
	case CMD_READ_REGISTER:
		for (size_t i = 0; i + 1 < n && i / 2 < sizeof(b); i += 2)
			b[i / 2] = c->regs[(d[i] << 8) | d[i + 1]];
		reply(c, cmd, b, n / 2);
		break;
	case CMD_WRITE_REGISTER:
		for (size_t i = 0; i + 3 <= n; i += 3)
			c->regs[(d[i] << 8) | d[i + 1]] = d[i + 2];
		reply(c, cmd, NULL, 0);
		break;
	case CMD_SET_PARAMETERS:
	case CMD_SAM_CONFIGURATION:
		reply(c, cmd, NULL, 0);
		break;
	case CMD_POWER_DOWN:
		reply_status(c, cmd, ST_OK);
		break;
	case CMD_RF_CONFIGURATION:
		/* Item 1, RF field: an initiator that drops its field
		 * releases the target it powered. */
		if (c->role == ROLE_INITIATOR && n >= 2 && d[0] == 0x01 && !(d[1] & 0x01))
			field_release("field-off");
		reply(c, cmd, NULL, 0);
		break;
	case CMD_IN_RELEASE:
	case CMD_IN_DESELECT:
		if (c->role == ROLE_INITIATOR)
			field_release("released");
		else if (field.state != F_IDLE)
			field_target_gone("target-idle");
		reply_status(c, cmd, ST_OK);
		break;
	case CMD_IN_LIST_PASSIVE_TARGET:
		if (c->role != ROLE_INITIATOR || n < 2 || d[1] != 0x00) {
			/* Only 106 kbit/s type A targets exist in this field. */
			static const uint8_t none[] = { 0x00 };

			reply(c, cmd, none, 1);
			break;
		}
		if (field.state == F_ACTIVE)
			field_release("reselected");
		c->pending = cmd;
		c->deadline_us = now_us() + 100000;
		try_complete(c);
		break;
	case CMD_IN_DATA_EXCHANGE:
		if (c->role != ROLE_INITIATOR || n < 1 || n - 1 > APDU_MAX) {
			reply_status(c, cmd, 0x27);
			break;
		}
		if (field.state != F_ACTIVE) {
			reply_status(c, cmd, ST_TIMEOUT);
			break;
		}
		memcpy(field.cmd, d + 1, n - 1);
		field.cmd_len = n - 1;
		field.cmd_off = 0;
		field.has_cmd = true;
		field.has_resp = false;
		field_changed();
		c->pending = cmd;
		c->deadline_us = now_us() + (int64_t)field.fwt_ms * 1000;
		break;
	case CMD_IN_COMMUNICATE_THRU:
		/* Raw frames probe for other tag types: none here. */
		reply_status(c, cmd, ST_TIMEOUT);
		break;
	case CMD_TG_INIT_AS_TARGET:
		if (c->role != ROLE_TARGET) {
			send_syntax_error(c);
			break;
		}
		handle_tg_init(c, d, n);
		break;
	case CMD_TG_GET_DATA:
		c->pending = cmd;
		try_complete(c);
		break;
	case CMD_TG_SET_DATA:
		if (field.state == F_ACTIVE && c->armed_session == field.session &&
		    n <= APDU_MAX) {
			memcpy(field.resp, d, n);
			field.resp_len = n;
			field.has_resp = true;
			field_changed();
			reply_status(c, cmd, ST_OK);
		} else {
			if (field.state == F_RELEASED) {
				field.state = F_IDLE;
				pthread_cond_broadcast(&field.cond);
			}
			reply_status(c, cmd, ST_RELEASED);
		}
		break;
	default:
		if (verbose)
			fprintf(stderr, "pn532-sim %s: unsupported command %02x\n", c->name, cmd);
		send_syntax_error(c);
		break;
	}
	pthread_mutex_unlock(&field.lock);
}

/* The host's ACK while a command runs aborts it (nfc_abort_command). */
static void handle_host_ack(struct chip *c)
{
	trace(c, "-> ack (abort)", NULL, 0);
	pthread_mutex_lock(&field.lock);
	if (c->pending == CMD_TG_INIT_AS_TARGET && field.state == F_ARMED) {
		field.state = F_IDLE;
		field_changed();
	}
	c->pending = -1;
	pthread_mutex_unlock(&field.lock);
}

/* Consume every complete frame in c->rx; skip the wake-up preamble and
 * any junk between frames. */
static void parse_frames(struct chip *c)
{
	size_t i = 0;

	for (;;) {
		size_t s, len, hdr;
		uint8_t sum;

		while (i + 1 < c->rx_len && !(c->rx[i] == 0x00 && c->rx[i + 1] == 0xFF))
			i++;
		if (i + 4 > c->rx_len)
			break;
		s = i + 2;
		if (c->rx[s] == 0x00 && c->rx[s + 1] == 0xFF) {
			handle_host_ack(c);
			i = s + 2;
			continue;
		}
		if (c->rx[s] == 0xFF && c->rx[s + 1] == 0xFF) {
			if (s + 5 > c->rx_len)
				break;
			len = (c->rx[s + 2] << 8) | c->rx[s + 3];
			if (((c->rx[s + 2] + c->rx[s + 3] + c->rx[s + 4]) & 0xFF) != 0) {
				i = s;
				continue;
			}
			hdr = s + 5;
		} else {
			len = c->rx[s];
			if (((c->rx[s] + c->rx[s + 1]) & 0xFF) != 0) {
				i = s;
				continue;
			}
			hdr = s + 2;
		}
		if (len < 2 || len > FRAME_MAX) {
			i = s;
			continue;
		}
		if (hdr + len + 2 > c->rx_len)
			break;
		sum = 0;
		for (size_t k = 0; k < len + 1; k++)
			sum += c->rx[hdr + k];
		if (c->rx[hdr] != 0xD4 || sum != 0) {
			if (verbose)
				fprintf(stderr, "pn532-sim %s: bad frame dropped\n", c->name);
			i = hdr + len + 2;
			continue;
		}
		trace(c, "->", c->rx + hdr, len);
		handle_command(c, c->rx + hdr + 1, len - 1);
		i = hdr + len + 2;
	}
	if (i > 0) {
		if (i > c->rx_len)
			i = c->rx_len;
		memmove(c->rx, c->rx + i, c->rx_len - i);
		c->rx_len -= i;
	}
}

/* ---- ptys ---- */

static int chip_open_pty(struct chip *c)
{
	struct termios t;
	char *name;
	int m;

	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || !(name = ptsname(m))) {
		perror("cp-pn532-sim: pty");
		if (m >= 0)
			close(m);
		return -1;
	}
	c->slave = open(name, O_RDWR | O_NOCTTY);
	if (c->slave < 0) {
		perror("cp-pn532-sim: open slave");
		close(m);
		return -1;
	}
	if (tcgetattr(c->slave, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(c->slave, TCSANOW, &t);
	}
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	c->master = m;
	c->rx_len = 0;
	c->pending = -1;
	unlink(c->link_path);
	if (symlink(name, c->link_path) < 0) {
		fprintf(stderr, "cp-pn532-sim: symlink %s: %s\n", c->link_path, strerror(errno));
		close(c->slave);
		close(m);
		c->master = c->slave = -1;
		return -1;
	}
	return 0;
}

static void chip_close_pty(struct chip *c)
{
	unlink(c->link_path);
	if (c->master >= 0)
		close(c->master);
	if (c->slave >= 0)
		close(c->slave);
	c->master = c->slave = -1;
}

static void *chip_thread(void *data)
{
	struct chip *c = data;

	while (!quit) {
		struct pollfd p[3];
		int timeout = -1, vanish;

		pthread_mutex_lock(&field.lock);
		vanish = c->vanish_ms;
		c->vanish_ms = 0;
		if (vanish > 0) {
			if (c->role == ROLE_TARGET)
				field_target_gone("target-vanished");
			else
				field_release("initiator-vanished");
			c->pending = -1;
		}
		try_complete(c);
		if (c->pending >= 0 && c->pending != CMD_TG_INIT_AS_TARGET &&
		    c->pending != CMD_TG_GET_DATA) {
			int64_t left = c->deadline_us - now_us();

			timeout = left > 0 ? (int)(left / 1000) + 1 : 0;
		}
		pthread_mutex_unlock(&field.lock);

		if (vanish > 0) {
			struct timespec ts = { vanish / 1000, (long)(vanish % 1000) * 1000000 };

			chip_close_pty(c);
			say("vanished %s %s", c->name, c->link_path);
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !quit)
				;
			if (quit)
				break;
			if (chip_open_pty(c) < 0) {
				quit = 1;
				break;
			}
			pthread_mutex_lock(&field.lock);
			c->generation++;
			pthread_cond_broadcast(&field.cond);
			pthread_mutex_unlock(&field.lock);
			say("reappeared %s %s", c->name, c->link_path);
			continue;
		}

		p[0].fd = c->master;
		p[0].events = POLLIN;
		p[1].fd = c->wake[0];
		p[1].events = POLLIN;
		p[2].fd = quit_pipe[0];
		p[2].events = POLLIN;
		if (poll(p, 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents & POLLIN) {
			char junk[64];

			if (read(c->wake[0], junk, sizeof(junk)) < 0) {
				/* nothing to drain */
			}
		}
		if (p[0].revents & POLLIN) {
			ssize_t r = read(c->master, c->rx + c->rx_len, sizeof(c->rx) - c->rx_len);

			if (r > 0) {
				c->rx_len += (size_t)r;
				parse_frames(c);
				if (c->rx_len == sizeof(c->rx))
					c->rx_len = 0;
			}
		}
	}
	return NULL;
}

/* ---- the scripted phone ---- */

struct phone {
	unsigned mle;
	unsigned mlc;
	unsigned file_max;
	int line;
	const char *cmd;
	bool failed;
	/* Options of the current command (p2=, le=, chunk=). */
	int p2;                  /* SELECT's P2; -1: the command's default */
	bool sel_le;             /* SELECT with Le 00 */
	bool le00;               /* READ with Le 00 instead of the exact count */
	unsigned chunk;          /* UPDATE size; 0: the tag's MLc */
};

static void fail(struct phone *ph, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct phone *ph, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("FAIL %d %s: %s", ph->line, ph->cmd, msg);
	ph->failed = true;
}

static bool phone_tap(struct phone *ph, int timeout_ms)
{
	struct timespec ts;
	bool ok = true;

	abs_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&field.lock);
	while (field.state != F_ARMED && !quit) {
		if (pthread_cond_timedwait(&field.cond, &field.lock, &ts) == ETIMEDOUT) {
			ok = false;
			break;
		}
	}
	if (ok && field.state == F_ARMED) {
		session_begin();
		field_changed();
	} else {
		ok = false;
	}
	pthread_mutex_unlock(&field.lock);
	if (!ok)
		fail(ph, "the device did not arm its target within %d ms", timeout_ms);
	return ok;
}

static bool phone_wait_armed(struct phone *ph, int timeout_ms)
{
	struct timespec ts;
	bool ok = true;

	abs_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&field.lock);
	while (field.state != F_ARMED && !quit) {
		if (pthread_cond_timedwait(&field.cond, &field.lock, &ts) == ETIMEDOUT) {
			ok = false;
			break;
		}
	}
	pthread_mutex_unlock(&field.lock);
	if (!ok)
		fail(ph, "the device did not arm its target within %d ms", timeout_ms);
	return ok;
}

static void phone_release(void)
{
	pthread_mutex_lock(&field.lock);
	field_release("released");
	pthread_mutex_unlock(&field.lock);
}

/* One APDU over the field; *sw = 0 when the tag did not answer. */
static bool phone_exchange(struct phone *ph, const uint8_t *capdu, size_t len,
			   uint8_t *rapdu, size_t *rlen)
{
	struct timespec ts;
	bool ok = false;

	abs_deadline(&ts, field.fwt_ms);
	pthread_mutex_lock(&field.lock);
	if (field.state != F_ACTIVE) {
		pthread_mutex_unlock(&field.lock);
		fail(ph, "no target selected");
		return false;
	}
	memcpy(field.cmd, capdu, len);
	field.cmd_len = len;
	field.cmd_off = 0;
	field.has_cmd = true;
	field.has_resp = false;
	field_changed();
	while (!quit) {
		if (field.has_resp) {
			field.has_resp = false;
			count_apdu(len, field.resp_len);
			memcpy(rapdu, field.resp, field.resp_len);
			*rlen = field.resp_len;
			ok = true;
			break;
		}
		if (field.state != F_ACTIVE)
			break;
		if (pthread_cond_timedwait(&field.cond, &field.lock, &ts) == ETIMEDOUT)
			break;
	}
	field.has_cmd = false;
	pthread_mutex_unlock(&field.lock);
	if (!ok)
		fail(ph, "the tag did not answer");
	else if (*rlen < 2) {
		fail(ph, "R-APDU of %zu bytes", *rlen);
		ok = false;
	}
	return ok;
}

/* Exchange and check the SW (want 0: any); prints the R-APDU. */
static bool phone_apdu(struct phone *ph, const uint8_t *capdu, size_t len, unsigned want,
		       uint8_t *rapdu, size_t *rlen, bool quiet)
{
	char h[2 * APDU_MAX + 1];
	unsigned sw;

	if (!phone_exchange(ph, capdu, len, rapdu, rlen))
		return false;
	sw = (rapdu[*rlen - 2] << 8) | rapdu[*rlen - 1];
	if (!quiet) {
		hex(h, rapdu, *rlen);
		say("rapdu %s", h);
	}
	if (want && sw != want) {
		fail(ph, "status word %04X, want %04X", sw, want);
		return false;
	}
	return true;
}

/* SELECT by file id: P2 0C unless p2= says otherwise, Le 00 with sel-le. */
static bool phone_select_file(struct phone *ph, uint16_t fid, unsigned want)
{
	uint8_t c[] = { 0x00, 0xA4, 0x00, ph->p2 >= 0 ? ph->p2 : 0x0C, 0x02, fid >> 8, fid & 0xFF, 0x00 };
	uint8_t r[APDU_MAX];
	size_t rl;

	return phone_apdu(ph, c, ph->sel_le ? 8 : 7, want, r, &rl, true);
}

/* READ BINARY with Le 00 (up to 256): whatever the tag gives, 9000 or,
 * at the end of the file, 6282. */
static bool phone_read_le00(struct phone *ph, unsigned off, uint8_t *out, size_t cap, size_t *got)
{
	uint8_t c[] = { 0x00, 0xB0, off >> 8, off & 0xFF, 0x00 };
	uint8_t r[APDU_MAX];
	size_t rl;
	unsigned sw;

	if (!phone_apdu(ph, c, sizeof(c), 0, r, &rl, true))
		return false;
	sw = (r[rl - 2] << 8) | r[rl - 1];
	if ((sw != 0x9000 && sw != 0x6282) || rl == 2) {
		fail(ph, "READ BINARY Le 00 at %u: %zu bytes, status word %04X", off, rl - 2, sw);
		return false;
	}
	*got = rl - 2 < cap ? rl - 2 : cap;
	memcpy(out, r, *got);
	return true;
}

static bool phone_read(struct phone *ph, unsigned off, unsigned n, uint8_t *out)
{
	uint8_t c[] = { 0x00, 0xB0, off >> 8, off & 0xFF, n };
	uint8_t r[APDU_MAX];
	size_t rl;

	if (!phone_apdu(ph, c, sizeof(c), 0x9000, r, &rl, true))
		return false;
	if (rl - 2 != n) {
		fail(ph, "READ BINARY gave %zu bytes, asked %u", rl - 2, n);
		return false;
	}
	memcpy(out, r, n);
	return true;
}

static bool phone_update(struct phone *ph, unsigned off, const uint8_t *d, size_t n,
			 unsigned want)
{
	uint8_t c[5 + 255];
	uint8_t r[APDU_MAX];
	size_t rl;

	c[0] = 0x00;
	c[1] = 0xD6;
	c[2] = off >> 8;
	c[3] = off & 0xFF;
	c[4] = n;
	memcpy(c + 5, d, n);
	return phone_apdu(ph, c, 5 + n, want, r, &rl, true);
}

static bool phone_read_cc(struct phone *ph)
{
	uint8_t cc[15];
	char h[31];

	if (!phone_select_file(ph, 0xE103, 0x9000))
		return false;
	if (ph->le00) {
		size_t got;

		if (!phone_read_le00(ph, 0, cc, sizeof(cc), &got))
			return false;
		if (got != sizeof(cc)) {
			fail(ph, "CC of %zu bytes", got);
			return false;
		}
	} else if (!phone_read(ph, 0, 15, cc)) {
		return false;
	}
	hex(h, cc, 15);
	say("cc %s", h);
	/* Decoded here, independently of the project's codec. */
	if (((cc[0] << 8) | cc[1]) < 15 || (cc[2] >> 4) != 2 || cc[7] != 0x04 || cc[8] != 0x06) {
		fail(ph, "not a T4T 2.0 CC with an NDEF file TLV");
		return false;
	}
	ph->mle = (cc[3] << 8) | cc[4];
	ph->mlc = (cc[5] << 8) | cc[6];
	ph->file_max = (cc[11] << 8) | cc[12];
	if (ph->mle < 15 || ph->mle > 255 || ph->mlc < 1 || ph->mlc > 255 || ph->file_max < 5) {
		fail(ph, "CC values out of range");
		return false;
	}
	return true;
}

static bool phone_read_ndef(struct phone *ph, const char *path)
{
	uint8_t nlen_b[2], *msg;
	unsigned nlen, off = 0;
	char *h;
	bool ok = true;

	if (!phone_select_file(ph, 0xE104, 0x9000))
		return false;
	if (ph->le00) {
		/* A greedy reader: Le 00 from offset 0, NLEN and the message
		 * in whatever pieces the tag gives. */
		uint8_t *file = malloc(ph->file_max);
		size_t have = 0, got;

		ok = phone_read_le00(ph, 0, file, ph->file_max, &got);
		have = got;
		if (ok && have < 2) {
			fail(ph, "no NLEN");
			ok = false;
		}
		nlen = ok ? (file[0] << 8) | file[1] : 0;
		if (ok && nlen + 2 > ph->file_max) {
			fail(ph, "NLEN %u beyond the file (%u)", nlen, ph->file_max);
			ok = false;
		}
		while (ok && have < nlen + 2) {
			ok = phone_read_le00(ph, have, file + have, ph->file_max - have, &got);
			have += got;
		}
		msg = malloc(nlen + 1);
		if (ok)
			memcpy(msg, file + 2, nlen);
		free(file);
		off = nlen;
	} else {
		if (!phone_read(ph, 0, 2, nlen_b))
			return false;
		nlen = (nlen_b[0] << 8) | nlen_b[1];
		if (nlen + 2 > ph->file_max) {
			fail(ph, "NLEN %u beyond the file (%u)", nlen, ph->file_max);
			return false;
		}
		msg = malloc(nlen + 1);
	}
	while (ok && off < nlen) {
		unsigned n = nlen - off < ph->mle ? nlen - off : ph->mle;

		ok = phone_read(ph, 2 + off, n, msg + off);
		off += n;
	}
	if (ok) {
		h = malloc(2 * nlen + 1);
		hex(h, msg, nlen);
		say("ndef %s", h);
		free(h);
		if (path) {
			FILE *f = fopen(path, "wb");

			if (!f || fwrite(msg, 1, nlen, f) != nlen) {
				fail(ph, "cannot write %s", path);
				ok = false;
			}
			if (f)
				fclose(f);
		}
	}
	free(msg);
	return ok;
}

static long load_data(struct phone *ph, const char *spec, uint8_t **out)
{
	long n;

	if (strncmp(spec, "hex:", 4) == 0) {
		*out = malloc(strlen(spec) / 2 + 1);
		n = unhex(spec + 4, *out, strlen(spec) / 2);
	} else {
		FILE *f = fopen(spec, "rb");

		if (!f) {
			fail(ph, "cannot read %s", spec);
			return -1;
		}
		*out = malloc(65536);
		n = (long)fread(*out, 1, 65536, f);
		fclose(f);
	}
	if (n < 0)
		fail(ph, "bad data %s", spec);
	return n;
}

/*
 * write-ndef DATA [stop=N] [sw=XXXX]: NLEN 0, chunks of MLc, final NLEN
 * (whose status word must be sw, default 9000). stop=N: leave after N
 * chunks, before the final NLEN.
 */
static bool phone_write_ndef(struct phone *ph, char **argv, int argc)
{
	static const uint8_t zero[2] = { 0, 0 };
	uint8_t *msg = NULL, nlen[2];
	long n;
	int stop = -1, chunks = 0;
	unsigned want = 0x9000, off = 0, mlc;
	bool ok;

	if (argc < 2) {
		fail(ph, "usage: write-ndef FILE|hex:HEX [stop=N] [sw=XXXX]");
		return false;
	}
	for (int i = 2; i < argc; i++) {
		if (strncmp(argv[i], "stop=", 5) == 0)
			stop = atoi(argv[i] + 5);
		else if (strncmp(argv[i], "sw=", 3) == 0)
			want = strtoul(argv[i] + 3, NULL, 16);
	}
	n = load_data(ph, argv[1], &msg);
	if (n < 0) {
		free(msg);
		return false;
	}
	mlc = ph->chunk ? ph->chunk : ph->mlc;
	if (mlc > 255) {
		fail(ph, "chunk %u above a short APDU's 255", mlc);
		free(msg);
		return false;
	}
	ok = phone_select_file(ph, 0xE104, 0x9000) && phone_update(ph, 0, zero, 2, 0x9000);
	while (ok && off < (unsigned long)n) {
		unsigned k = n - off < mlc ? n - off : mlc;

		if (stop >= 0 && chunks == stop)
			break;
		/* A chunk that runs past the file is the tag's to refuse:
		 * the expected status word then applies to it. */
		if (2 + off + k > ph->file_max) {
			ok = phone_update(ph, 2 + off, msg + off, k, want);
			free(msg);
			if (ok)
				say("ok %d write-ndef refused with %04X", ph->line, want);
			return ok;
		}
		ok = phone_update(ph, 2 + off, msg + off, k, 0x9000);
		off += k;
		chunks++;
	}
	if (ok && stop < 0) {
		nlen[0] = n >> 8;
		nlen[1] = n & 0xFF;
		ok = phone_update(ph, 0, nlen, 2, want);
	}
	if (ok)
		say("ok %d write-ndef %ld bytes %d chunks%s", ph->line, n, chunks,
		    stop >= 0 ? " (left before the final NLEN)" : "");
	free(msg);
	return ok;
}

static struct chip *chip_by_name(const char *name)
{
	if (!name || strcmp(name, "target") == 0)
		return field.target;
	if (strcmp(name, "initiator") == 0)
		return field.initiator;
	return NULL;
}

static void settle(void);

static bool phone_vanish(struct phone *ph, struct chip *c, int ms)
{
	unsigned gen;
	struct timespec ts;
	bool ok = true;

	if (!c) {
		fail(ph, "no such chip");
		return false;
	}
	/* A phone that just left: let the device see it first. */
	pthread_mutex_lock(&field.lock);
	if (field.state == F_RELEASED) {
		pthread_mutex_unlock(&field.lock);
		settle();
	} else {
		pthread_mutex_unlock(&field.lock);
	}
	abs_deadline(&ts, ms + 5000);
	pthread_mutex_lock(&field.lock);
	gen = c->generation;
	c->vanish_ms = ms > 0 ? ms : 1;
	wake(c);
	while (c->generation == gen && !quit) {
		if (pthread_cond_timedwait(&field.cond, &field.lock, &ts) == ETIMEDOUT) {
			ok = false;
			break;
		}
	}
	pthread_mutex_unlock(&field.lock);
	if (!ok)
		fail(ph, "the pty did not come back");
	return ok;
}

static int split(char *line, char **argv, int max)
{
	int argc = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t", &save); t && argc < max;
	     t = strtok_r(NULL, " \t", &save))
		argv[argc++] = t;
	return argc;
}

static unsigned want_sw(char **argv, int argc, int i, unsigned def)
{
	return i < argc ? strtoul(argv[i], NULL, 16) : def;
}

/* Take the key=value options out of argv (anywhere after the command). */
static bool take_options(struct phone *ph, char **argv, int *argc)
{
	int out = 1;

	ph->p2 = -1;
	ph->sel_le = false;
	ph->le00 = false;
	ph->chunk = 0;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];

		if (strncmp(a, "p2=", 3) == 0) {
			ph->p2 = (int)strtoul(a + 3, NULL, 16) & 0xFF;
		} else if (strcmp(a, "sel-le") == 0) {
			ph->sel_le = true;
		} else if (strcmp(a, "le=00") == 0) {
			ph->le00 = true;
		} else if (strcmp(a, "le=exact") == 0) {
			ph->le00 = false;
		} else if (strncmp(a, "chunk=", 6) == 0) {
			ph->chunk = (unsigned)atoi(a + 6);
			if (ph->chunk == 0) {
				fail(ph, "bad %s", a);
				return false;
			}
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	return true;
}

static bool run_command(struct phone *ph, char *line)
{
	char *argv[16];
	int argc;
	uint8_t c[APDU_MAX], r[APDU_MAX];
	size_t rl;
	long n;

	argc = split(line, argv, 16);
	if (argc == 0 || argv[0][0] == '#')
		return true;
	ph->cmd = argv[0];
	if (!take_options(ph, argv, &argc))
		return false;

	if (strcmp(argv[0], "tap") == 0)
		return phone_tap(ph, argc > 1 ? atoi(argv[1]) : 5000);
	if (strcmp(argv[0], "wait-armed") == 0)
		return phone_wait_armed(ph, argc > 1 ? atoi(argv[1]) : 5000);
	if (strcmp(argv[0], "release") == 0) {
		phone_release();
		return true;
	}
	if (strcmp(argv[0], "sleep") == 0) {
		int ms = argc > 1 ? atoi(argv[1]) : 0;
		struct timespec ts;

		/* On the condition variable, so that SIGTERM cuts it short. */
		abs_deadline(&ts, ms);
		pthread_mutex_lock(&field.lock);
		while (!quit && pthread_cond_timedwait(&field.cond, &field.lock, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&field.lock);
		return true;
	}
	if (strcmp(argv[0], "vanish") == 0) {
		if (argc > 2)
			return phone_vanish(ph, chip_by_name(argv[1]), atoi(argv[2]));
		return phone_vanish(ph, field.target, argc > 1 ? atoi(argv[1]) : 500);
	}
	if (strcmp(argv[0], "apdu") == 0) {
		if (argc < 2 || (n = unhex(argv[1], c, sizeof(c))) < 4) {
			fail(ph, "usage: apdu HEX [SW]");
			return false;
		}
		return phone_apdu(ph, c, (size_t)n, want_sw(argv, argc, 2, 0), r, &rl, false);
	}
	if (strcmp(argv[0], "select-app") == 0) {
		/* P2 00 with Le 00 unless p2= says otherwise; P2 0C without Le. */
		uint8_t sel[] = { 0x00, 0xA4, 0x04, ph->p2 >= 0 ? ph->p2 : 0x00, 0x07, 0xD2, 0x76, 0x00,
				  0x00, 0x85, 0x01, 0x01, 0x00 };

		return phone_apdu(ph, sel, sel[3] == 0x0C && !ph->sel_le ? 12 : 13,
				  want_sw(argv, argc, 1, 0x9000), r, &rl, true);
	}
	if (strcmp(argv[0], "select-file") == 0) {
		if (argc < 2) {
			fail(ph, "usage: select-file FID [SW]");
			return false;
		}
		return phone_select_file(ph, strtoul(argv[1], NULL, 16), want_sw(argv, argc, 2, 0x9000));
	}
	if (strcmp(argv[0], "read-cc") == 0)
		return phone_read_cc(ph);
	if (strcmp(argv[0], "read-ndef") == 0)
		return phone_read_ndef(ph, argc > 1 ? argv[1] : NULL);
	if (strcmp(argv[0], "write-ndef") == 0)
		return phone_write_ndef(ph, argv, argc);
	fail(ph, "unknown command");
	return false;
}

/* Built-in scenarios; DATA is replaced by --data. */
static const struct {
	const char *name;
	const char *script;
} scenarios[] = {
	{ "read", "tap; select-app; read-cc; read-ndef; release" },
	{ "write", "tap; select-app; read-cc; read-ndef; write-ndef DATA; read-ndef; release" },
	{ "receipt", "tap; select-app; read-cc; read-ndef; release" },
	{ "leave-mid-write", "tap; select-app; read-cc; write-ndef DATA stop=2; release" },
	{ "wrong-aid", "tap; apdu 00A4040007D276000085010200 6A82; apdu 00A4000C02E104 6A82; "
		       "select-app; read-cc; read-ndef; release" },
	{ "read-past-end", "tap; select-app; read-cc; select-file E104; apdu 00B0100210 6B00; "
			   "apdu 00B0100000 6282; apdu 00B01000F7 6700; apdu 00B01000F6 6282; release" },
	{ "update-bad-offset", "tap; select-app; read-cc; select-file E104; "
			       "apdu 00D6100201AA 6B00; apdu 00D6800001AA 6B00; apdu 00D60002 6700; "
			       "apdu 00D600020300 6700; select-file E103; apdu 00D6000001AA 6982; "
			       "release" },
	{ "write-too-large", "tap; select-app; read-cc; write-ndef DATA sw=6A84; release" },
	{ "malformed", "tap; select-app; read-cc; write-ndef DATA sw=6A80; release" },
	/* the controller goes once the first session is over: the phone's
	 * release is handled before the port drops */
	{ "vanish", "tap; select-app; read-cc; read-ndef; release; sleep 300; vanish 500; "
		    "tap 10000; select-app; read-cc; read-ndef; release" },
	/* Phone-like sequences (see the man page): one reads and writes in
	 * the T4T 2.0 form with exact Le, the other with the P2 00 SELECTs of
	 * T4T 1.0 and ISO 7816-4 and greedy Le 00 reads. */
	{ "android", "tap; select-app; read-cc p2=0C; read-ndef p2=0C; write-ndef DATA; "
		     "read-ndef p2=0C; release" },
	{ "iphone", "tap; select-app p2=0C; read-cc p2=00 sel-le le=00; read-ndef p2=00 le=00; "
		    "write-ndef DATA p2=00; read-ndef p2=00 sel-le le=00; release" },
};

static char *expand(const char *script, const char *data)
{
	size_t n = strlen(script) + 1, dl = data ? strlen(data) : 4;
	char *out, *o;

	for (const char *p = strstr(script, "DATA"); p; p = strstr(p + 4, "DATA"))
		n += dl;
	out = o = malloc(n);
	for (const char *p = script; *p;) {
		if (strncmp(p, "DATA", 4) == 0) {
			strcpy(o, data ? data : "DATA");
			o += dl;
			p += 4;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* Before exiting, let the target's host see the phone leave: the pty
 * closing under it would look like a lost controller (and a hang-up
 * discards what it has not read yet). Its next TgInitAsTarget shows it
 * has. */
static void settle(void)
{
	struct timespec ts;

	abs_deadline(&ts, 2000);
	pthread_mutex_lock(&field.lock);
	while (field.state != F_ARMED && !quit)
		if (pthread_cond_timedwait(&field.cond, &field.lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&field.lock);
}

static int run_script(char *script)
{
	struct phone ph = { .mle = 246, .mlc = 246, .file_max = 2 + 4096 };
	char *save = NULL;
	int line = 0;

	for (char *l = strtok_r(script, ";\n", &save); l && !quit; l = strtok_r(NULL, ";\n", &save)) {
		line++;
		ph.line = line;
		if (!run_command(&ph, l))
			break;
	}
	if (ph.failed)
		phone_release();
	settle();
	say("done %s", ph.failed ? "fail" : "ok");
	return ph.failed ? 1 : 0;
}

/* ---- main ---- */

static void on_signal(int sig)
{
	char b = 1;

	quit = 1;
	if (write(quit_pipe[1], &b, 1) < 0) {
		/* the flag alone still stops the loops */
	}
}

static char *script_text;
static int script_status;
static int done_pipe[2] = { -1, -1 };

static void *script_thread(void *data)
{
	char b = 1;

	script_status = run_script(script_text);
	if (write(done_pipe[1], &b, 1) < 0) {
		/* main also wakes on quit */
	}
	return NULL;
}

/* Until a signal (or the script's end, unless lingering); the condition
 * variable is woken here, not in the signal handler. */
static void wait_for_end(bool script_running, bool linger)
{
	bool script_done = !script_running;

	while (!quit) {
		struct pollfd p[2] = {
			{ .fd = quit_pipe[0], .events = POLLIN },
			{ .fd = done_pipe[0], .events = POLLIN },
		};

		if (poll(p, 2, 200) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			char b;

			if (read(done_pipe[0], &b, 1) == 1)
				script_done = true;
		}
		if (script_done && !linger)
			return;
	}
	pthread_mutex_lock(&field.lock);
	pthread_cond_broadcast(&field.cond);
	pthread_mutex_unlock(&field.lock);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cp-pn532-sim --target-pty PATH [--initiator-pty PATH]\n"
		"                    [--script FILE | --run 'CMD; CMD' | --scenario NAME [--data FILE]]\n"
		"                    [--fwt-ms MS] [--linger] [-v]\n"
		"Creates PATH (and the initiator's) as symlinks to fresh ptys speaking the PN532\n"
		"frame protocol, prints \"ready\", runs the phone script, exits with its result.\n"
		"Without a script (link mode) it runs until SIGTERM.\n"
		"Scenarios:");
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(f, " %s", scenarios[i].name);
	fputc('\n', f);
}

static struct chip *chip_new(const char *name, enum role role, const char *path)
{
	struct chip *c = calloc(1, sizeof(*c));

	c->name = name;
	c->role = role;
	c->link_path = strdup(path);
	c->master = c->slave = -1;
	c->pending = -1;
	if (pipe(c->wake) < 0) {
		perror("pipe");
		exit(2);
	}
	fcntl(c->wake[0], F_SETFL, O_NONBLOCK);
	fcntl(c->wake[1], F_SETFL, O_NONBLOCK);
	if (chip_open_pty(c) < 0)
		exit(2);
	return c;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(1 << 20);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	const char *tpath = NULL, *ipath = NULL, *script_file = NULL, *run = NULL;
	const char *scenario = NULL, *data = NULL;
	bool linger = false;
	char *script = NULL;
	struct sigaction sa;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			verbose = true;
		} else if (strcmp(a, "--linger") == 0) {
			linger = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (v && strcmp(a, "--target-pty") == 0) {
			tpath = v;
			i++;
		} else if (v && strcmp(a, "--initiator-pty") == 0) {
			ipath = v;
			i++;
		} else if (v && strcmp(a, "--script") == 0) {
			script_file = v;
			i++;
		} else if (v && strcmp(a, "--run") == 0) {
			run = v;
			i++;
		} else if (v && strcmp(a, "--scenario") == 0) {
			scenario = v;
			i++;
		} else if (v && strcmp(a, "--data") == 0) {
			data = v;
			i++;
		} else if (v && strcmp(a, "--fwt-ms") == 0) {
			field.fwt_ms = atoi(v);
			i++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!tpath) {
		usage(stderr);
		return 2;
	}
	if (script_file) {
		script = read_file(script_file);
		if (!script) {
			fprintf(stderr, "cp-pn532-sim: cannot read %s\n", script_file);
			return 2;
		}
	} else if (run) {
		script = expand(run, data);
	} else if (scenario) {
		for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
			if (strcmp(scenarios[i].name, scenario) == 0)
				script = expand(scenarios[i].script, data);
		if (!script) {
			fprintf(stderr, "cp-pn532-sim: unknown scenario %s\n", scenario);
			return 2;
		}
	}

	/* A test that crashes must not leave its simulator behind. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (pipe(quit_pipe) < 0)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	field.target = chip_new("target", ROLE_TARGET, tpath);
	if (ipath)
		field.initiator = chip_new("initiator", ROLE_INITIATOR, ipath);
	pthread_create(&field.target->thread, NULL, chip_thread, field.target);
	if (field.initiator)
		pthread_create(&field.initiator->thread, NULL, chip_thread, field.initiator);
	say("ready");

	if (pipe(done_pipe) < 0)
		return 2;
	if (script) {
		pthread_t st;

		script_text = script;
		pthread_create(&st, NULL, script_thread, NULL);
		wait_for_end(true, linger);
		quit = 1;
		pthread_mutex_lock(&field.lock);
		pthread_cond_broadcast(&field.cond);
		pthread_mutex_unlock(&field.lock);
		pthread_join(st, NULL);
		status = script_status;
		free(script);
	} else {
		wait_for_end(false, true);
	}

	quit = 1;
	on_signal(0);
	pthread_join(field.target->thread, NULL);
	chip_close_pty(field.target);
	if (field.initiator) {
		pthread_join(field.initiator->thread, NULL);
		chip_close_pty(field.initiator);
	}
	return status;
}
