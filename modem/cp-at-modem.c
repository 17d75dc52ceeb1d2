/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT commands of a module: see cp-at-modem.h.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <stdlib.h>
#include <string.h>

#include "cp-at-modem.h"
#include "cp-buf.h"
#include "cp-glib.h"

#define INIT_TRIES 3
#define INIT_TIMEOUT_MS 1000
/* +CCHO/+CFUN take long on some modules (SIM7600: up to 9 s for +CFUN). */
#define SLOW_TIMEOUT_MS 15000

/* ---- pure parsers ------------------------------------------------------ */

static gboolean
bad(GError **error, const char *line, const char *what)
{
	cp_set_error(error, CP_ERR_MODEM, "malformed answer (%s): %zu bytes", what, strlen(line));
	return FALSE;
}

/* After "<prefix>" and the optional spaces; NULL if the prefix is not there. */
static const char *
after_prefix(const char *line, const char *prefix)
{
	if (!g_str_has_prefix(line, prefix))
		return NULL;
	line += strlen(prefix);
	while (*line == ' ')
		line++;
	return line;
}

static gboolean
all_digits(const char *s, gsize n)
{
	if (n == 0)
		return FALSE;
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isdigit(s[i]))
			return FALSE;
	return TRUE;
}

static gboolean
all_hex(const char *s, gsize n)
{
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isxdigit(s[i]))
			return FALSE;
	return TRUE;
}

/*
 * Splits the parameters of an answer at commas outside quotes (V.250
 * §5.7.2: string constants are quoted; TS 27.007 §4.1). Each field is
 * returned without its quotes; *quoted says which were. NULL on an
 * unterminated quote or a quote inside an unquoted field.
 */
static GStrv
split_fields(const char *s, GArray **quoted)
{
	g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GArray) q = g_array_new(FALSE, FALSE, sizeof(gboolean));

	for (;;) {
		gboolean isq = FALSE;
		const char *start, *end;

		if (*s == '"') {
			isq = TRUE;
			start = ++s;
			end = strchr(s, '"');
			if (!end)
				return NULL;
			s = end + 1;
		} else {
			start = s;
			end = s + strcspn(s, ",");
			if (memchr(start, '"', (gsize)(end - start)))
				return NULL;
			s = end;
		}
		g_ptr_array_add(f, g_strndup(start, (gsize)(end - start)));
		g_array_append_val(q, isq);
		if (*s == '\0')
			break;
		if (*s != ',')
			return NULL;
		s++;
	}
	g_ptr_array_add(f, NULL);
	if (quoted)
		*quoted = g_steal_pointer(&q);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&f), FALSE);
}

/* A decimal field in [min, max]; an empty field is -1 when empty_ok. */
static gboolean
field_int(const char *s, int min, int max, gboolean empty_ok, int *out)
{
	guint64 v;

	if (!*s && empty_ok) {
		*out = -1;
		return TRUE;
	}
	if (!all_digits(s, strlen(s)) || strlen(s) > 6 ||
	    !g_ascii_string_to_unsigned(s, 10, (guint64)min, (guint64)max, &v, NULL))
		return FALSE;
	*out = (int)v;
	return TRUE;
}

/* A hex field of at most max digits, quoted or empty. */
static gboolean
field_hex(const char *s, gboolean quoted, gsize max, char *out)
{
	gsize n = strlen(s);

	if (n == 0) {
		out[0] = '\0';
		return TRUE;
	}
	if (!quoted || n > max || !all_hex(s, n))
		return FALSE;
	memcpy(out, s, n + 1);
	return TRUE;
}

const char *
cp_at_reg_name(CpAtRegKind kind)
{
	switch (kind) {
	case CP_AT_REG_CREG: return "+CREG";
	case CP_AT_REG_CEREG: return "+CEREG";
	case CP_AT_REG_C5GREG: return "+C5GREG";
	case CP_AT_REG_N: break;
	}
	return "?";
}

gboolean
cp_at_stat_registered(int stat)
{
	return stat == 1 || stat == 5 || stat == 9 || stat == 10;
}

gboolean
cp_at_parse_registration(const char *line, CpAtReg *reg, GError **error)
{
	g_auto(GStrv) f = NULL;
	g_autoptr(GArray) q = NULL;
	const char *rest = NULL;
	guint i = 0, n;
	/* after <AcT>, +C5GREG has <Allowed_NSSAI_length>,<Allowed_NSSAI> */
	guint skip;

	memset(reg, 0, sizeof(*reg));
	reg->n = reg->act = reg->cause_type = reg->reject_cause = -1;
	for (int k = 0; k < CP_AT_REG_N && !rest; k++) {
		g_autofree char *prefix = g_strconcat(cp_at_reg_name(k), ":", NULL);

		if ((rest = after_prefix(line, prefix)))
			reg->kind = k;
	}
	if (!rest || !(f = split_fields(rest, &q)))
		return bad(error, line, "registration");
	n = g_strv_length(f);
	if (!cp_at_registration_is_urc(line)) {
		if (!field_int(f[i++], 0, 5, FALSE, &reg->n))
			return bad(error, line, "registration <n>");
	}
	if (i >= n || !field_int(f[i++], 0, 11, FALSE, &reg->stat))
		return bad(error, line, "registration <stat>");
	if (i < n && !field_hex(f[i], g_array_index(q, gboolean, i), 6, reg->area))
		return bad(error, line, "registration <lac>/<tac>");
	i++;
	if (i < n && !field_hex(f[i], g_array_index(q, gboolean, i), 9, reg->ci))
		return bad(error, line, "registration <ci>");
	i++;
	if (i < n && !field_int(f[i], 0, 20, TRUE, &reg->act))
		return bad(error, line, "registration <AcT>");
	i++;
	skip = reg->kind == CP_AT_REG_C5GREG ? 2 : 0;
	if (i + skip < n) {
		i += skip;
		if (!field_int(f[i], 0, 1, TRUE, &reg->cause_type) ||
		    i + 1 >= n || !field_int(f[i + 1], 0, 65535, TRUE, &reg->reject_cause))
			return bad(error, line, "registration <cause_type>,<reject_cause>");
		i += 2;
	}
	/* +CEREG n=4/5 adds <Active-Time>,<Periodic-TAU> (quoted bit strings) */
	if (i < n && (reg->kind != CP_AT_REG_CEREG || n - i > 2))
		return bad(error, line, "registration: extra fields");
	return TRUE;
}

GBytes *
cp_at_parse_apdu_answer(const char *line, const char *prefix, GError **error)
{
	g_auto(GStrv) f = NULL;
	g_autoptr(GArray) q = NULL;
	const char *rest = after_prefix(line, prefix);
	g_autofree guint8 *data = NULL;
	int len;
	gsize hl;

	if (!rest || !(f = split_fields(rest, &q)) || g_strv_length(f) != 2)
		return bad(error, line, prefix), NULL;
	hl = strlen(f[1]);
	/* <length>: the number of characters of <response> (§8.17) */
	if (!field_int(f[0], 4, 2 * 65538, FALSE, &len) || (gsize)len != hl || hl % 2 ||
	    !all_hex(f[1], hl))
		return bad(error, line, prefix), NULL;
	data = g_malloc(hl / 2);
	if (cp_hex_decode(f[1], data, hl / 2) != (long)(hl / 2))
		return bad(error, line, prefix), NULL;
	return g_bytes_new_take(g_steal_pointer(&data), hl / 2);
}

gboolean
cp_at_parse_channel(const char *line, guint *channel, GError **error)
{
	const char *rest = after_prefix(line, "+CCHO:");
	int v;

	/* §8.45 answers "<sessionid>" bare (Quectel BG96/EC25); SIMCom and
	 * u-blox prefix it with "+CCHO: " */
	if (!rest)
		rest = line;
	if (!field_int(rest, 1, 19, FALSE, &v))
		return bad(error, line, "+CCHO");
	*channel = (guint)v;
	return TRUE;
}

static char *
iccid_digits(const char *s, gsize n, GError **error)
{
	/* EF.ICCID pads an odd length with F (ETSI TS 102 221 §13.2) */
	if (n > 0 && (s[n - 1] == 'F' || s[n - 1] == 'f'))
		n--;
	if (n < 18 || n > 20 || !all_digits(s, n)) {
		cp_set_error(error, CP_ERR_MODEM, "malformed ICCID (%zu characters)", n);
		return NULL;
	}
	return g_strndup(s, n);
}

char *
cp_at_parse_iccid(const char *line, const char *prefix, GError **error)
{
	const char *rest = prefix ? after_prefix(line, prefix) : line;
	gsize n;

	if (!rest)
		return bad(error, line, "ICCID"), NULL;
	/* some firmware quotes it */
	n = strlen(rest);
	if (n >= 2 && rest[0] == '"' && rest[n - 1] == '"') {
		rest++;
		n -= 2;
	}
	return iccid_digits(rest, n, error);
}

char *
cp_at_iccid_from_ef(const char *hex, GError **error)
{
	char swapped[21];
	gsize n = strlen(hex);

	if (n != 20 || !all_hex(hex, n)) {
		cp_set_error(error, CP_ERR_MODEM, "EF.ICCID: %zu hex digits, want 20", n);
		return NULL;
	}
	for (gsize i = 0; i < n; i += 2) {
		swapped[i] = hex[i + 1];
		swapped[i + 1] = hex[i];
	}
	swapped[n] = '\0';
	return iccid_digits(swapped, n, error);
}

char *
cp_at_parse_imsi(const char *line, GError **error)
{
	gsize n = strlen(line);

	if (n < 6 || n > 15 || !all_digits(line, n))
		return bad(error, line, "+CIMI"), NULL;
	return g_strdup(line);
}

gboolean
cp_at_parse_cgdcont(const char *line, guint *cid, char **pdp_type, char **apn, GError **error)
{
	const char *rest = after_prefix(line, "+CGDCONT:");
	g_auto(GStrv) f = NULL;
	g_autoptr(GArray) q = NULL;
	int v;

	if (!rest || !(f = split_fields(rest, &q)) || g_strv_length(f) < 3 ||
	    !field_int(f[0], 0, 255, FALSE, &v) ||
	    !g_array_index(q, gboolean, 1) || !g_array_index(q, gboolean, 2))
		return bad(error, line, "+CGDCONT");
	*cid = (guint)v;
	*pdp_type = g_strdup(f[1]);
	*apn = g_strdup(f[2]);
	return TRUE;
}

gboolean
cp_at_apn_valid(const char *apn)
{
	gsize n = strlen(apn);
	gboolean label_start = TRUE;

	if (n == 0 || n > 100)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		char c = apn[i];

		if (c == '.') {
			if (label_start)
				return FALSE;   /* empty label */
			label_start = TRUE;
			continue;
		}
		if (!g_ascii_isalnum(c) && c != '-')
			return FALSE;
		label_start = FALSE;
	}
	return !label_start;
}

/* ---- the module -------------------------------------------------------- */

struct _CpAtModem {
	GObject parent;
	CpAtPort *port;
	CpAtReg reg[CP_AT_REG_N];
	gboolean have_reg[CP_AT_REG_N];
	GList *waiters;    /* GTask of cp_at_modem_wait_registered, waiting for URCs */
};

G_DEFINE_TYPE(CpAtModem, cp_at_modem, G_TYPE_OBJECT)

static void waiters_check(CpAtModem *m);

static void
record_registration(CpAtModem *m, const CpAtReg *r)
{
	m->reg[r->kind] = *r;
	m->have_reg[r->kind] = TRUE;
	if (r->reject_cause >= 0)
		g_debug("%s: stat %d, reject cause %d", cp_at_reg_name(r->kind), r->stat, r->reject_cause);
	else
		g_debug("%s: stat %d", cp_at_reg_name(r->kind), r->stat);
	waiters_check(m);
}

static void
urc_cb(CpAtPort *port, const char *line, gpointer data)
{
	CpAtModem *m = data;
	g_autoptr(GError) error = NULL;
	CpAtReg r;

	if (!g_str_has_prefix(line, "+CREG:") && !g_str_has_prefix(line, "+CEREG:") &&
	    !g_str_has_prefix(line, "+C5GREG:")) {
		g_debug("URC ignored: %.*s", (int)strcspn(line, ":"), line);
		return;
	}
	if (!cp_at_parse_registration(line, &r, &error)) {
		g_debug("URC: %s", error->message);
		return;
	}
	record_registration(m, &r);
}

CpAtModem *
cp_at_modem_new(CpAtPort *port)
{
	CpAtModem *m = g_object_new(CP_TYPE_AT_MODEM, NULL);

	m->port = g_object_ref(port);
	/* the port outlives no modem: a weak pointer back is enough */
	cp_at_port_set_urc_func(port, urc_cb, m, NULL);
	return m;
}

CpAtPort *
cp_at_modem_get_port(CpAtModem *m)
{
	return m->port;
}

const CpAtReg *
cp_at_modem_get_registration(CpAtModem *m, CpAtRegKind kind)
{
	return m->have_reg[kind] ? &m->reg[kind] : NULL;
}

/* One command whose answer a parse function turns into the task's result. */
typedef gboolean (*ParseFunc)(GTask *task, const char *command, CpAtResponse *r);

typedef struct {
	char *command;
	ParseFunc parse;
	guint arg;
} Op;

static void
op_free(Op *op)
{
	g_free(op->command);
	g_free(op);
}

static void
op_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	Op *op = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);
	g_autofree char *name = g_strndup(op->command, strcspn(op->command, "=?"));

	if (!r) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	op->parse(task, name, r);
}

static GTask *
op_start(CpAtModem *m, const char *command, const char *prefix, CpAtBare bare, guint timeout_ms,
	 ParseFunc parse, guint arg, gpointer tag, GCancellable *cancellable,
	 GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(m, cancellable, callback, user_data);
	Op *op = g_new0(Op, 1);

	g_task_set_source_tag(task, tag);
	op->command = g_strdup(command);
	op->parse = parse;
	op->arg = arg;
	g_task_set_task_data(task, op, (GDestroyNotify)op_free);
	cp_at_port_command(m->port, command, prefix, bare, timeout_ms, cancellable, op_cb, g_object_ref(task));
	return task;
}

/* The error of a final result code, with the card's absence told apart. */
static gboolean
check(GTask *task, const char *name, CpAtResponse *r)
{
	GError *error = NULL;

	if (cp_at_response_check(r, name, &error))
		return TRUE;
	/* +CME ERROR 10 SIM not inserted, 13 SIM failure (TS 27.007 §9.2.1) */
	if (r->final == CP_AT_FINAL_CME_ERROR && (r->error_code == 10 || r->error_code == 13))
		error->code = CP_ERR_CARD_ABSENT;
	g_task_return_error(task, error);
	return FALSE;
}

static gboolean
parse_ok(GTask *task, const char *name, CpAtResponse *r)
{
	if (check(task, name, r))
		g_task_return_boolean(task, TRUE);
	return TRUE;
}

/* ---- IMSI -------------------------------------------------------------- */

static gboolean
parse_imsi(GTask *task, const char *name, CpAtResponse *r)
{
	GError *error = NULL;
	const char *line;
	char *imsi;

	if (!check(task, name, r))
		return FALSE;
	if (!(line = cp_at_response_line(r, name, &error)) || !(imsi = cp_at_parse_imsi(line, &error))) {
		g_task_return_error(task, error);
		return FALSE;
	}
	g_task_return_pointer(task, imsi, g_free);
	return TRUE;
}

void
cp_at_modem_get_imsi(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	/* §7.1: the answer is the IMSI alone; some firmware prefixes "+CIMI: " */
	g_object_unref(op_start(m, "+CIMI", "+CIMI:", CP_AT_BARE_DIGITS, 0, parse_imsi, 0,
				cp_at_modem_get_imsi, cancellable, callback, user_data));
}

char *
cp_at_modem_get_imsi_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- firmware revision ------------------------------------------------- */

/* §5.3 answers the revision alone; SIMCom prefixes "+CGMR: ", which
 * ModemManager strips too (src/mm-broadband-modem.c). */
char *
cp_at_parse_revision(const char *line, GError **error)
{
	const char *rest = after_prefix(line, "+CGMR:");
	g_autofree char *s = g_strstrip(g_strdup(rest ? rest : line));
	gsize n = strlen(s);

	if (n < 1 || n > 128)
		return bad(error, line, "+CGMR"), NULL;
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isprint(s[i]))
			return bad(error, line, "+CGMR"), NULL;
	return g_steal_pointer(&s);
}

static gboolean
parse_revision(GTask *task, const char *name, CpAtResponse *r)
{
	GError *error = NULL;
	const char *line;
	char *revision;

	if (!check(task, name, r))
		return FALSE;
	if (!(line = cp_at_response_line(r, name, &error)) || !(revision = cp_at_parse_revision(line, &error))) {
		g_task_return_error(task, error);
		return FALSE;
	}
	g_task_return_pointer(task, revision, g_free);
	return TRUE;
}

void
cp_at_modem_get_revision(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_object_unref(op_start(m, "+CGMR", "+CGMR:", CP_AT_BARE_TEXT, 0, parse_revision, 0,
				cp_at_modem_get_revision, cancellable, callback, user_data));
}

char *
cp_at_modem_get_revision_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- card status ------------------------------------------------------ */

char *
cp_at_parse_pin_state(const char *line, GError **error)
{
	const char *rest = after_prefix(line, "+CPIN:");
	gsize n;

	if (!rest || !(n = strlen(rest)) || n > 16)
		return bad(error, line, "+CPIN"), NULL;
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isupper(rest[i]) && !g_ascii_isdigit(rest[i]) && rest[i] != ' ' && rest[i] != '-')
			return bad(error, line, "+CPIN"), NULL;
	return g_strdup(rest);
}

static gboolean
parse_pin(GTask *task, const char *name, CpAtResponse *r)
{
	GError *error = NULL;
	const char *line;
	char *code;

	if (!check(task, name, r))
		return FALSE;
	if (!(line = cp_at_response_line(r, name, &error)) || !(code = cp_at_parse_pin_state(line, &error))) {
		g_task_return_error(task, error);
		return FALSE;
	}
	g_task_return_pointer(task, code, g_free);
	return TRUE;
}

void
cp_at_modem_get_pin_state(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_object_unref(op_start(m, "+CPIN?", "+CPIN:", CP_AT_BARE_NONE, 0, parse_pin, 0,
				cp_at_modem_get_pin_state, cancellable, callback, user_data));
}

char *
cp_at_modem_get_pin_state_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- APDUs and channels ------------------------------------------------ */

/*
 * An APDU over +CSIM/+CGLA, with the T=0 procedure the module may leave
 * to the TE (ETSI TS 102 221 §7.3.1.1.4; QMI modems do it themselves):
 * SW 61xx, more data: GET RESPONSE (INS C0, Le xx) until the card is
 * done, the data gathered; SW 6Cxx, wrong Le: the command again with
 * Le xx. At most APDU_ROUNDS commands for one APDU.
 */
#define APDU_ROUNDS 16

typedef struct {
	guint channel;
	GByteArray *cmd;     /* the APDU being sent (the caller's, or GET RESPONSE) */
	GByteArray *data;    /* response data gathered */
	guint8 cla;
	guint rounds;
	gboolean retried;    /* a 6Cxx resend was made */
} ApduData;

static void
apdu_data_free(ApduData *d)
{
	cp_cleanse(d->cmd->data, d->cmd->len);
	cp_cleanse(d->data->data, d->data->len);
	g_byte_array_unref(d->cmd);
	g_byte_array_unref(d->data);
	g_free(d);
}

static void apdu_send(GTask *task);

static void
apdu_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	ApduData *d = g_task_get_task_data(task);
	const char *name = d->channel ? "+CGLA" : "+CSIM";
	g_autofree char *prefix = g_strconcat(name, ":", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);
	g_autoptr(GBytes) resp = NULL;
	const guint8 *rd;
	const char *line;
	gsize n;
	guint8 sw1, sw2;

	if (!r) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!check(task, name, r))
		return;
	if (!(line = cp_at_response_line(r, name, &error)) ||
	    !(resp = cp_at_parse_apdu_answer(line, prefix, &error))) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	rd = g_bytes_get_data(resp, &n);
	sw1 = rd[n - 2];
	sw2 = rd[n - 1];
	g_byte_array_append(d->data, rd, (guint)(n - 2));
	if (sw1 == 0x61 && d->rounds < APDU_ROUNDS) {
		const guint8 get[] = { d->cla, 0xC0, 0x00, 0x00, sw2 };

		g_byte_array_set_size(d->cmd, 0);
		g_byte_array_append(d->cmd, get, sizeof(get));
		apdu_send(g_steal_pointer(&task));
		return;
	}
	if (sw1 == 0x6C && !d->retried && d->cmd->len == 5 && d->rounds < APDU_ROUNDS) {
		/* case 2 with the wrong Le: again with the card's */
		d->retried = TRUE;
		d->cmd->data[4] = sw2;
		apdu_send(g_steal_pointer(&task));
		return;
	}
	g_byte_array_append(d->data, rd + n - 2, 2);
	g_task_return_pointer(task, g_bytes_new(d->data->data, d->data->len), (GDestroyNotify)g_bytes_unref);
}

static void
apdu_send(GTask *task)
{
	CpAtModem *m = g_task_get_source_object(task);
	ApduData *d = g_task_get_task_data(task);
	g_autofree char *hex = cp_hex_strdup(d->cmd->data, d->cmd->len);
	g_autofree char *cmd = NULL;

	d->rounds++;
	/* §8.17 +CSIM=<length>,<command>; §8.43 +CGLA=<sessionid>,<length>,<command>:
	 * <length> counts the characters of the hex string */
	if (d->channel == 0)
		cmd = g_strdup_printf("+CSIM=%u,\"%s\"", 2 * d->cmd->len, hex);
	else
		cmd = g_strdup_printf("+CGLA=%u,%u,\"%s\"", d->channel, 2 * d->cmd->len, hex);
	cp_cleanse(hex, strlen(hex));
	cp_at_port_command(m->port, cmd, d->channel ? "+CGLA:" : "+CSIM:", CP_AT_BARE_NONE, 0,
			   g_task_get_cancellable(task), apdu_cb, task);
	cp_cleanse(cmd, strlen(cmd));
}

void
cp_at_modem_apdu(CpAtModem *m, guint channel, GBytes *apdu, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	gsize len;
	const guint8 *a = g_bytes_get_data(apdu, &len);
	GTask *task;
	ApduData *d;

	if (len < 4 || len > 261 || channel > 19) {
		g_task_report_new_error(m, callback, user_data, cp_at_modem_apdu, CP_ERROR, CP_ERR_APDU,
					"APDU of %zu bytes on channel %u", len, channel);
		return;
	}
	task = g_task_new(m, cancellable, callback, user_data);
	g_task_set_source_tag(task, cp_at_modem_apdu);
	d = g_new0(ApduData, 1);
	d->channel = channel;
	d->cla = a[0];
	d->cmd = g_byte_array_new();
	g_byte_array_append(d->cmd, a, (guint)len);
	d->data = g_byte_array_new();
	g_task_set_task_data(task, d, (GDestroyNotify)apdu_data_free);
	apdu_send(task);
}

GBytes *
cp_at_modem_apdu_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}

static gboolean
parse_channel(GTask *task, const char *name, CpAtResponse *r)
{
	GError *error = NULL;
	const char *line;
	guint ch;

	if (!check(task, name, r))
		return FALSE;
	if (!(line = cp_at_response_line(r, name, &error)) || !cp_at_parse_channel(line, &ch, &error)) {
		g_task_return_error(task, error);
		return FALSE;
	}
	g_task_return_int(task, ch);
	return TRUE;
}

void
cp_at_modem_open_channel(CpAtModem *m, GBytes *aid, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	gsize len;
	const guint8 *d = g_bytes_get_data(aid, &len);
	g_autofree char *hex = NULL, *cmd = NULL;

	if (len < 5 || len > 16) {
		g_task_report_new_error(m, callback, user_data, cp_at_modem_open_channel, CP_ERROR, CP_ERR_APDU,
					"AID of %zu bytes (5-16)", len);
		return;
	}
	hex = cp_hex_strdup(d, len);
	cmd = g_strdup_printf("+CCHO=\"%s\"", hex);
	g_object_unref(op_start(m, cmd, "+CCHO:", CP_AT_BARE_DIGITS, SLOW_TIMEOUT_MS, parse_channel, 0,
				cp_at_modem_open_channel, cancellable, callback, user_data));
}

guint
cp_at_modem_open_channel_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	gssize ch = g_task_propagate_int(G_TASK(result), error);

	return ch < 0 ? 0 : (guint)ch;
}

void
cp_at_modem_close_channel(CpAtModem *m, guint channel, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	g_autofree char *cmd = g_strdup_printf("+CCHC=%u", channel);

	/* §8.46 answers OK alone; SIMCom sends "+CCHC: <sessionid>" first */
	g_object_unref(op_start(m, cmd, "+CCHC:", CP_AT_BARE_NONE, 0, parse_ok, 0,
				cp_at_modem_close_channel, cancellable, callback, user_data));
}

gboolean
cp_at_modem_close_channel_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- APN --------------------------------------------------------------- */

static gboolean
parse_apn(GTask *task, const char *name, CpAtResponse *r)
{
	Op *op = g_task_get_task_data(task);

	if (!check(task, name, r))
		return FALSE;
	for (guint i = 0; i < r->lines->len; i++) {
		GError *error = NULL;
		g_autofree char *type = NULL;
		char *apn = NULL;
		guint cid;

		if (!cp_at_parse_cgdcont(g_ptr_array_index(r->lines, i), &cid, &type, &apn, &error)) {
			g_task_return_error(task, error);
			return FALSE;
		}
		if (cid == op->arg) {
			g_task_return_pointer(task, apn, g_free);
			return TRUE;
		}
		g_free(apn);
	}
	g_task_return_new_error(task, CP_ERROR, CP_ERR_APN, "no PDP context %u defined", op->arg);
	return FALSE;
}

void
cp_at_modem_get_apn(CpAtModem *m, guint cid, GCancellable *cancellable,
		    GAsyncReadyCallback callback, gpointer user_data)
{
	g_object_unref(op_start(m, "+CGDCONT?", "+CGDCONT:", CP_AT_BARE_NONE, 0, parse_apn, cid,
				cp_at_modem_get_apn, cancellable, callback, user_data));
}

char *
cp_at_modem_get_apn_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}

static gboolean
parse_set_apn(GTask *task, const char *name, CpAtResponse *r)
{
	g_autoptr(GError) error = NULL;

	if (cp_at_response_check(r, name, &error)) {
		g_task_return_boolean(task, TRUE);
		return TRUE;
	}
	g_task_return_new_error(task, CP_ERROR, CP_ERR_APN, "%s", error->message);
	return FALSE;
}

void
cp_at_modem_set_apn(CpAtModem *m, guint cid, const char *pdp_type, const char *apn,
		    GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autofree char *cmd = NULL;

	if (!cp_at_apn_valid(apn) || cid < 1 || cid > 255 ||
	    (strcmp(pdp_type, "IP") != 0 && strcmp(pdp_type, "IPV6") != 0 && strcmp(pdp_type, "IPV4V6") != 0)) {
		g_task_report_new_error(m, callback, user_data, cp_at_modem_set_apn, CP_ERROR, CP_ERR_APN,
					"APN or PDP type not valid for +CGDCONT");
		return;
	}
	cmd = g_strdup_printf("+CGDCONT=%u,\"%s\",\"%s\"", cid, pdp_type, apn);
	g_object_unref(op_start(m, cmd, NULL, CP_AT_BARE_NONE, 0, parse_set_apn, 0,
				cp_at_modem_set_apn, cancellable, callback, user_data));
}

gboolean
cp_at_modem_set_apn_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- functionality ----------------------------------------------------- */

static gboolean
parse_fun(GTask *task, const char *name, CpAtResponse *r)
{
	GError *error = NULL;
	const char *line, *rest;
	g_auto(GStrv) f = NULL;
	int fun;

	if (!check(task, name, r))
		return FALSE;
	if (!(line = cp_at_response_line(r, name, &error))) {
		g_task_return_error(task, error);
		return FALSE;
	}
	/* §8.2 "+CFUN: <fun>"; Quectel adds nothing, SIMCom nothing, u-blox
	 * ",<STK_mode>" on some firmware */
	rest = after_prefix(line, "+CFUN:");
	if (!rest || !(f = split_fields(rest, NULL)) || g_strv_length(f) > 2 ||
	    !field_int(f[0], 0, 255, FALSE, &fun)) {
		bad(&error, line, "+CFUN");
		g_task_return_error(task, error);
		return FALSE;
	}
	g_task_return_int(task, fun);
	return TRUE;
}

void
cp_at_modem_get_functionality(CpAtModem *m, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data)
{
	g_object_unref(op_start(m, "+CFUN?", "+CFUN:", CP_AT_BARE_NONE, 0, parse_fun, 0,
				cp_at_modem_get_functionality, cancellable, callback, user_data));
}

int
cp_at_modem_get_functionality_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return (int)g_task_propagate_int(G_TASK(result), error);
}

static void
set_fun_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	Op *op = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);

	if (!r) {
		/* a module resetting may drop off the bus before its OK */
		if (op->arg && g_error_matches(error, CP_ERROR, CP_ERR_MODEM_GONE)) {
			g_debug("+CFUN reset: the port went before the answer");
			g_task_return_boolean(task, TRUE);
		} else {
			g_task_return_error(task, g_steal_pointer(&error));
		}
		return;
	}
	parse_ok(task, "+CFUN", r);
}

void
cp_at_modem_set_functionality(CpAtModem *m, guint fun, gboolean reset, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(m, cancellable, callback, user_data);
	Op *op = g_new0(Op, 1);

	g_task_set_source_tag(task, cp_at_modem_set_functionality);
	op->command = reset ? g_strdup_printf("+CFUN=%u,1", fun) : g_strdup_printf("+CFUN=%u", fun);
	op->arg = reset;
	g_task_set_task_data(task, op, (GDestroyNotify)op_free);
	cp_at_port_command(m->port, op->command, NULL, CP_AT_BARE_NONE, SLOW_TIMEOUT_MS, cancellable,
			   set_fun_cb, task);
}

gboolean
cp_at_modem_set_functionality_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- init -------------------------------------------------------------- */

typedef struct {
	guint step;
	guint tries;
} InitData;

static void init_next(GTask *task);

static void
init_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	InitData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);

	if (!r && d->step == 0 && g_error_matches(error, CP_ERROR, CP_ERR_MODEM_TIMEOUT) &&
	    ++d->tries < INIT_TRIES) {
		init_next(g_steal_pointer(&task));
		return;
	}
	if (!r) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!cp_at_response_check(r, d->step == 0 ? "" : d->step == 1 ? "V1" : "+CMEE=1", &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	d->step++;
	init_next(g_steal_pointer(&task));
}

static void
init_next(GTask *task)
{
	static const char *const cmds[] = { "", "V1", "+CMEE=1" };
	CpAtModem *m = g_task_get_source_object(task);
	InitData *d = g_task_get_task_data(task);

	if (d->step == G_N_ELEMENTS(cmds)) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	cp_at_port_command(m->port, cmds[d->step], NULL, CP_AT_BARE_NONE,
			   d->step == 0 ? INIT_TIMEOUT_MS : 0, g_task_get_cancellable(task), init_cb, task);
}

void
cp_at_modem_setup(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(m, cancellable, callback, user_data);

	g_task_set_source_tag(task, cp_at_modem_setup);
	g_task_set_task_data(task, g_new0(InitData, 1), g_free);
	init_next(task);
}

gboolean
cp_at_modem_setup_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- ICCID ------------------------------------------------------------- */

/* Tried in order until one answers OK: the vendors' commands, then the
 * standard restricted SIM access (READ BINARY 176 of EF.ICCID 12258 =
 * 0x2FE2, 10 bytes), whose answer is "+CRSM: <sw1>,<sw2>,"<hex>"". */
static const struct {
	const char *command;
	const char *prefix;
} iccid_cmds[] = {
	{ "+CCID", "+CCID:" },       /* u-blox SARA-R4/R5, Telit */
	{ "+QCCID", "+QCCID:" },     /* Quectel BG96, EC25 */
	{ "+CICCID", "+ICCID:" },    /* SIMCom SIM7600 */
	{ "+CRSM=176,12258,0,0,10", "+CRSM:" },
};

static void iccid_next(GTask *task);

static char *
iccid_from_crsm(const char *line, GError **error)
{
	g_auto(GStrv) f = NULL;
	const char *rest = after_prefix(line, "+CRSM:");
	int sw1, sw2;

	if (!rest || !(f = split_fields(rest, NULL)) || g_strv_length(f) != 3 ||
	    !field_int(f[0], 0, 255, FALSE, &sw1) || !field_int(f[1], 0, 255, FALSE, &sw2))
		return bad(error, line, "+CRSM"), NULL;
	if (sw1 != 0x90 || sw2 != 0) {
		cp_set_error(error, CP_ERR_CARD_ABSENT, "EF.ICCID: SW %02X%02X", sw1, sw2);
		return NULL;
	}
	return cp_at_iccid_from_ef(f[2], error);
}

static void
iccid_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	guint *i = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);
	const char *line;
	char *iccid;

	if (!r) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (r->final == CP_AT_FINAL_CME_ERROR && (r->error_code == 10 || r->error_code == 13)) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_CARD_ABSENT, "AT%s: +CME ERROR: %d",
					iccid_cmds[*i].command, r->error_code);
		return;
	}
	if (r->final != CP_AT_FINAL_OK) {
		/* this module has not that command: the next one */
		if (++*i < G_N_ELEMENTS(iccid_cmds)) {
			iccid_next(g_steal_pointer(&task));
			return;
		}
		cp_at_response_check(r, iccid_cmds[*i - 1].command, &error);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!(line = cp_at_response_line(r, iccid_cmds[*i].command, &error)) ||
	    !(iccid = *i == G_N_ELEMENTS(iccid_cmds) - 1 ? iccid_from_crsm(line, &error) :
		      cp_at_parse_iccid(line, iccid_cmds[*i].prefix, &error))) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_pointer(task, iccid, g_free);
}

static void
iccid_next(GTask *task)
{
	CpAtModem *m = g_task_get_source_object(task);
	guint *i = g_task_get_task_data(task);

	cp_at_port_command(m->port, iccid_cmds[*i].command, iccid_cmds[*i].prefix, CP_AT_BARE_NONE, 0,
			   g_task_get_cancellable(task), iccid_cb, task);
}

void
cp_at_modem_get_iccid(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(m, cancellable, callback, user_data);

	g_task_set_source_tag(task, cp_at_modem_get_iccid);
	g_task_set_task_data(task, g_new0(guint, 1), g_free);
	iccid_next(task);
}

char *
cp_at_modem_get_iccid_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- registration ------------------------------------------------------ */

/*
 * Steps: for each of +CEREG, +C5GREG, +CREG: set n=3 (the reject cause),
 * on an error n=2, on an error again the module has not that command
 * (an LTE module has no +C5GREG; a Cat-M one may lack +CREG); then read
 * it. Then wait for URCs.
 */
typedef struct {
	guint kind;          /* index in wait_order of the step */
	guint phase;         /* 0: set 3, 1: set 2, 2: read */
	gboolean any;        /* some registration command answered */
	gboolean done;       /* the task has its result */
	gboolean waiting;    /* in the modem's waiters list (holds a reference) */
	guint timer;
	GCancellable *cancellable;
	gulong cancel_id;
} WaitData;

static const CpAtRegKind wait_order[] = { CP_AT_REG_CEREG, CP_AT_REG_C5GREG, CP_AT_REG_CREG };

static void wait_next(GTask *task);

static void
wait_data_free(WaitData *d)
{
	if (d->timer)
		g_source_remove(d->timer);
	if (d->cancel_id)
		g_cancellable_disconnect(d->cancellable, d->cancel_id);
	g_clear_object(&d->cancellable);
	g_free(d);
}

/* Gives the task its result (error NULL: registered) once. */
static void
wait_return(GTask *task, GError *error)
{
	CpAtModem *m = g_task_get_source_object(task);
	WaitData *d = g_task_get_task_data(task);

	if (d->done) {
		if (error)
			g_error_free(error);
		return;
	}
	d->done = TRUE;
	if (d->timer) {
		g_source_remove(d->timer);
		d->timer = 0;
	}
	if (error)
		g_task_return_error(task, error);
	else
		g_task_return_boolean(task, TRUE);
	if (d->waiting) {
		d->waiting = FALSE;
		m->waiters = g_list_remove(m->waiters, task);
		g_object_unref(task);
	}
}

/* Over when one kind is registered, or one is denied and none registered:
 * then returns TRUE (the task has its result). */
static gboolean
wait_evaluate(CpAtModem *m, GTask *task)
{
	const CpAtReg *denied = NULL;

	/* the packet domains first: their reject cause is the one that matters */
	for (guint i = 0; i < G_N_ELEMENTS(wait_order); i++) {
		guint k = wait_order[i];

		if (!m->have_reg[k])
			continue;
		if (cp_at_stat_registered(m->reg[k].stat)) {
			wait_return(task, NULL);
			return TRUE;
		}
		/* the first denied one, or the first that gives a cause */
		if (m->reg[k].stat == CP_AT_STAT_DENIED &&
		    (!denied || (denied->reject_cause < 0 && m->reg[k].reject_cause >= 0)))
			denied = &m->reg[k];
	}
	if (!denied)
		return FALSE;
	if (denied->reject_cause >= 0)
		wait_return(task, g_error_new(CP_ERROR, CP_ERR_REG_DENIED,
					      "%s: registration denied, %s cause #%d", cp_at_reg_name(denied->kind),
					      denied->cause_type == 1 ? "vendor" :
					      denied->kind == CP_AT_REG_CEREG ? "EMM" :
					      denied->kind == CP_AT_REG_C5GREG ? "5GMM" : "MM",
					      denied->reject_cause));
	else
		wait_return(task, g_error_new(CP_ERROR, CP_ERR_REG_DENIED, "%s: registration denied",
					      cp_at_reg_name(denied->kind)));
	return TRUE;
}

static void
waiters_check(CpAtModem *m)
{
	GList *l = m->waiters;

	while (l) {
		GTask *task = l->data;

		l = l->next;
		g_object_ref(task);
		wait_evaluate(m, task);
		g_object_unref(task);
	}
}

static gboolean
wait_timeout_cb(gpointer data)
{
	GTask *task = g_object_ref(data);
	WaitData *d = g_task_get_task_data(task);

	d->timer = 0;
	wait_return(task, g_error_new(CP_ERROR, CP_ERR_REG_TIMEOUT, "not registered in time"));
	g_object_unref(task);
	return G_SOURCE_REMOVE;
}

static gboolean
wait_cancel_idle(gpointer data)
{
	wait_return(data, g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "registration wait cancelled"));
	return G_SOURCE_REMOVE;
}

static void
wait_cancelled_cb(GCancellable *c, gpointer data)
{
	GSource *idle = g_idle_source_new();

	/* not from inside the handler: wait_return may disconnect it */
	g_source_set_callback(idle, wait_cancel_idle, g_object_ref(data), g_object_unref);
	g_source_attach(idle, g_task_get_context(data));
	g_source_unref(idle);
}

static void
wait_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	CpAtModem *m = g_task_get_source_object(task);
	WaitData *d = g_task_get_task_data(task);
	CpAtRegKind kind = wait_order[d->kind];
	g_autoptr(GError) error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);

	if (d->done)
		return;     /* timed out or cancelled meanwhile */
	if (!r) {
		wait_return(task, g_steal_pointer(&error));
		return;
	}
	if (d->phase < 2) {
		if (r->final == CP_AT_FINAL_OK) {
			d->any = TRUE;
			d->phase = 2;
		} else if (++d->phase == 2) {
			d->kind++;      /* no such command here */
			d->phase = 0;
		}
	} else {
		CpAtReg reg;
		const char *line;

		if (!cp_at_response_check(r, cp_at_reg_name(kind), &error) ||
		    !(line = cp_at_response_line(r, cp_at_reg_name(kind), &error)) ||
		    !cp_at_parse_registration(line, &reg, &error) || reg.n < 0 || reg.kind != kind) {
			if (!error)
				cp_set_error(&error, CP_ERR_MODEM, "%s?: not a read answer", cp_at_reg_name(kind));
			wait_return(task, g_steal_pointer(&error));
			return;
		}
		record_registration(m, &reg);
		if (d->done)
			return;
		d->kind++;
		d->phase = 0;
	}
	wait_next(g_steal_pointer(&task));
}

/* Takes the reference it is given. */
static void
wait_next(GTask *task)
{
	CpAtModem *m = g_task_get_source_object(task);
	WaitData *d = g_task_get_task_data(task);
	g_autofree char *cmd = NULL;
	g_autofree char *prefix = NULL;

	if (d->kind < G_N_ELEMENTS(wait_order)) {
		const char *name = cp_at_reg_name(wait_order[d->kind]);

		cmd = d->phase == 2 ? g_strconcat(name, "?", NULL) :
		      g_strdup_printf("%s=%d", name, d->phase == 0 ? 3 : 2);
		prefix = g_strconcat(name, ":", NULL);
		cp_at_port_command(m->port, cmd, d->phase == 2 ? prefix : NULL, CP_AT_BARE_NONE, 0,
				   d->cancellable, wait_cb, task);
		return;
	}
	if (!d->any)
		wait_return(task, g_error_new(CP_ERROR, CP_ERR_MODEM,
					      "the module has none of +CEREG, +C5GREG, +CREG"));
	else if (!wait_evaluate(m, task)) {
		/* the reference goes to the waiters list */
		d->waiting = TRUE;
		m->waiters = g_list_prepend(m->waiters, task);
		return;
	}
	g_object_unref(task);
}

void
cp_at_modem_wait_registered(CpAtModem *m, guint timeout_ms, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(m, cancellable, callback, user_data);
	WaitData *d = g_new0(WaitData, 1);

	g_task_set_source_tag(task, cp_at_modem_wait_registered);
	g_task_set_task_data(task, d, (GDestroyNotify)wait_data_free);
	/* the states of a previous session are no answer */
	memset(m->have_reg, 0, sizeof(m->have_reg));
	/* the whole wait, the commands included, is bounded */
	d->timer = g_timeout_add(timeout_ms, wait_timeout_cb, task);
	if (cancellable) {
		d->cancellable = g_object_ref(cancellable);
		d->cancel_id = g_cancellable_connect(cancellable, G_CALLBACK(wait_cancelled_cb), task, NULL);
	}
	wait_next(task);
}

gboolean
cp_at_modem_wait_registered_finish(CpAtModem *m, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- object ------------------------------------------------------------ */

static void
cp_at_modem_init(CpAtModem *m)
{
}

static void
cp_at_modem_dispose(GObject *obj)
{
	CpAtModem *m = CP_AT_MODEM(obj);

	if (m->port) {
		cp_at_port_set_urc_func(m->port, NULL, NULL, NULL);
		g_clear_object(&m->port);
	}
	G_OBJECT_CLASS(cp_at_modem_parent_class)->dispose(obj);
}

static void
cp_at_modem_class_init(CpAtModemClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = cp_at_modem_dispose;
}
