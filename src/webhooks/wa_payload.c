/*
 * wa_payload.c - the WhatsApp Cloud API webhook payload (API.md "Webhooks"):
 *
 *   {"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[
 *     {"field":"messages","value":{"messaging_product":"whatsapp",
 *      "metadata":{"display_phone_number":...,"phone_number_id":...},
 *      "contacts":[{"profile":{"name":...},"wa_id":...}],
 *      "messages":[{"from","id","timestamp","type", <type>:{...}}],
 *      "statuses":[{"id","status","timestamp","recipient_id","errors":[...]}]}}]}]}
 *
 * Pure functions over jansson values: no I/O, no globals, every count and
 * length bounded, so the whole file is a fuzz target (tests/fuzz). The
 * webhook reads only the phone_number_ids before the signature holds
 * (wa_webhook_account_ids); everything else is extracted afterwards.
 */
#include <string.h>

#include "dialflow/jsonutil.h"
#include "dialflow/strnum.h"
#include "dialflow/whatsapp.h"

#define MAX_PNID_LEN   32
#define MIN_WA_ID_LEN  5
#define MAX_WA_ID_LEN  20
#define MAX_TYPE_LEN   32
#define MAX_TS_DIGITS  12
#define MAX_STATUS_LEN 16

static bool all_digits(const char *s, size_t min, size_t max)
{
	size_t n = strspn(s, "0123456789");

	return n >= min && n <= max && s[n] == '\0';
}

/* A string member of obj, or NULL. */
static const char *str_at(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A string at a two-level path obj.k1.k2, or NULL. */
static const char *str_at2(const json_t *obj, const char *k1, const char *k2)
{
	return str_at(json_is_object(obj) ? json_object_get(obj, k1) : NULL, k2);
}

/* s cut to at most max bytes at a UTF-8 boundary (s itself when it fits). */
static const char *cut(arena_t *a, const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	if (n <= max)
		return s;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return arena_strndup(a, s, n);
}

/* "1749416383" -> seconds; 0 when absent or malformed (Meta sends a string). */
static int64_t timestamp_of(const json_t *obj)
{
	const json_t *v = json_object_get(obj, "timestamp");
	int64_t t = 0;

	if (json_is_string(v) && strlen(json_string_value(v)) <= MAX_TS_DIGITS &&
	    strnum_i64(json_string_value(v), 0, INT64_C(999999999999), &t) == 0)
		return t;
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= INT64_C(999999999999))
		return json_integer_value(v);
	return 0;
}

json_t *wa_webhook_decode(arena_t *a, const char *body, size_t len, const char **why)
{
	json_t *root = json_decode_strict(a, body, len, why);

	if (root != NULL && !json_is_object(root)) {
		*why = "the payload is not a JSON object";
		return NULL;
	}
	return root;
}

/* The value objects of every change, visited in order; fn returns <0 to stop. */
typedef int (*change_fn)(json_t *value, void *arg);

static int each_change(const json_t *root, change_fn fn, void *arg, const char **why)
{
	const json_t *entries = json_object_get(root, "entry");
	size_t i, j;
	json_t *e, *c;

	if (!json_is_array(entries)) {
		*why = "entry must be an array";
		return -1;
	}
	if (json_array_size(entries) > WA_MAX_ENTRIES) {
		*why = "too many entries";
		return -1;
	}
	json_array_foreach(entries, i, e)
	{
		const json_t *changes = json_object_get(e, "changes");

		if (!json_is_object(e) || !json_is_array(changes)) {
			*why = "entry[].changes must be an array";
			return -1;
		}
		if (json_array_size(changes) > WA_MAX_ENTRIES) {
			*why = "too many changes";
			return -1;
		}
		json_array_foreach(changes, j, c)
		{
			json_t *value = json_object_get(c, "value");

			if (!json_is_object(c)) {
				*why = "entry[].changes[] must be objects";
				return -1;
			}
			if (!json_is_object(value))
				continue; /* a change without a value: nothing of ours */
			if (fn(value, arg) < 0)
				return -1;
		}
	}
	return 0;
}

typedef struct ids_ctx {
	const char **ids;
	size_t n;
	const char *why;
} ids_ctx_t;

static int collect_id(json_t *value, void *arg)
{
	ids_ctx_t *x = arg;
	const json_t *md = json_object_get(value, "metadata");
	const char *id;

	if (md == NULL)
		return 0;
	id = str_at(md, "phone_number_id");
	if (id == NULL || !all_digits(id, 1, MAX_PNID_LEN)) {
		x->why = "metadata.phone_number_id must be 1 to 32 digits";
		return -1;
	}
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->ids[i], id) == 0)
			return 0;
	if (x->n == WA_MAX_ACCOUNTS) {
		x->why = "too many phone numbers in one payload";
		return -1;
	}
	x->ids[x->n++] = id;
	return 0;
}

int wa_webhook_account_ids(const json_t *root, const char **ids, size_t *n, const char **why)
{
	ids_ctx_t x = {ids, 0, NULL};
	int rc;

	*n = 0;
	if (!json_is_object(root)) {
		*why = "the payload is not a JSON object";
		return -1;
	}
	rc = each_change(root, collect_id, &x, why);
	if (rc < 0 && x.why != NULL)
		*why = x.why;
	*n = x.n;
	return rc;
}

/* --- extraction --------------------------------------------------------- */

typedef struct extract_ctx {
	arena_t *a;
	wa_webhook_t *out;
	size_t cap_m, cap_s;
	const char *why;
} extract_ctx_t;

/* The readable text and the reply id of a message, by type. */
static void message_text(arena_t *a, wa_message_t *m)
{
	const json_t *raw = m->raw;
	const char *t = m->type;

	m->text = NULL;
	m->reply_id = NULL;
	if (strcmp(t, "text") == 0) {
		m->text = str_at2(raw, "text", "body");
	} else if (strcmp(t, "button") == 0) {
		m->text = str_at2(raw, "button", "text");
		m->reply_id = str_at2(raw, "button", "payload");
	} else if (strcmp(t, "interactive") == 0) {
		const json_t *in = json_object_get(raw, "interactive");
		const char *it = str_at(in, "type");

		if (it != NULL &&
		    (strcmp(it, "button_reply") == 0 || strcmp(it, "list_reply") == 0)) {
			m->text = str_at2(in, it, "title");
			m->reply_id = str_at2(in, it, "id");
		} else if (it != NULL && strcmp(it, "nfm_reply") == 0) {
			m->text = str_at2(in, "nfm_reply", "body");
		}
	} else if (strcmp(t, "image") == 0 || strcmp(t, "video") == 0 ||
		   strcmp(t, "document") == 0) {
		m->text = str_at2(raw, t, "caption");
	}
	m->text = cut(a, m->text, WA_MAX_TEXT_LEN);
	m->reply_id = cut(a, m->reply_id, WA_MAX_ID_LEN);
}

/* contacts[].profile.name of wa_id, or NULL. */
static const char *profile_name(arena_t *a, const json_t *value, const char *wa_id)
{
	const json_t *contacts = json_object_get(value, "contacts");
	const json_t *c;
	size_t i;

	if (!json_is_array(contacts))
		return NULL;
	json_array_foreach(contacts, i, c)
	{
		const char *id = str_at(c, "wa_id");
		const char *name = str_at2(c, "profile", "name");

		if (i >= WA_MAX_EVENTS)
			break;
		if (id != NULL && name != NULL && strcmp(id, wa_id) == 0 && name[0] != '\0')
			return cut(a, name, WA_MAX_NAME_LEN);
	}
	return NULL;
}

static bool type_ok(const char *t)
{
	size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyz_");

	return n > 0 && n <= MAX_TYPE_LEN && t[n] == '\0';
}

static bool id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > WA_MAX_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false; /* printable ASCII, no spaces: safe in logs and SQL text */
	return true;
}

/* Make room for element n of an arena array of capacity *cap. */
static void grow(arena_t *a, void **arr, size_t *cap, size_t n, size_t elsz)
{
	void *p;

	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 8;
	p = arena_calloc(a, *cap, elsz);
	if (n > 0)
		memcpy(p, *arr, n * elsz);
	*arr = p;
}

static int take_messages(extract_ctx_t *x, json_t *value, const char *pnid)
{
	const json_t *msgs = json_object_get(value, "messages");
	json_t *m;
	size_t i;

	if (msgs == NULL)
		return 0;
	if (!json_is_array(msgs)) {
		x->why = "value.messages must be an array";
		return -1;
	}
	json_array_foreach(msgs, i, m)
	{
		wa_message_t *w;
		const char *id = str_at(m, "id"), *from = str_at(m, "from"),
			   *type = str_at(m, "type");

		if (x->out->nmessages + x->out->nstatuses >= WA_MAX_EVENTS) {
			x->why = "too many messages and statuses in one payload";
			return -1;
		}
		if (!json_is_object(m) || !id_ok(id) || from == NULL ||
		    !all_digits(from, MIN_WA_ID_LEN, MAX_WA_ID_LEN) || type == NULL ||
		    !type_ok(type)) {
			x->why = "a message needs id, from (5 to 20 digits) and type";
			return -1;
		}
		grow(x->a, (void **)&x->out->messages, &x->cap_m, x->out->nmessages,
		     sizeof(wa_message_t));
		w = &x->out->messages[x->out->nmessages++];
		w->phone_number_id = pnid;
		w->wamid = id;
		w->from = from;
		w->type = type;
		w->raw = m;
		w->timestamp = timestamp_of(m);
		w->profile_name = profile_name(x->a, value, from);
		message_text(x->a, w);
	}
	return 0;
}

static bool status_known(const char *s)
{
	return strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0 || strcmp(s, "read") == 0 ||
	       strcmp(s, "failed") == 0;
}

static int take_statuses(extract_ctx_t *x, json_t *value, const char *pnid)
{
	const json_t *sts = json_object_get(value, "statuses");
	json_t *s;
	size_t i;

	if (sts == NULL)
		return 0;
	if (!json_is_array(sts)) {
		x->why = "value.statuses must be an array";
		return -1;
	}
	json_array_foreach(sts, i, s)
	{
		wa_status_t *w;
		const char *id = str_at(s, "id"), *st = str_at(s, "status");
		const char *rcpt = str_at(s, "recipient_id");
		json_t *errors = json_object_get(s, "errors");

		if (x->out->nmessages + x->out->nstatuses >= WA_MAX_EVENTS) {
			x->why = "too many messages and statuses in one payload";
			return -1;
		}
		if (!json_is_object(s) || !id_ok(id) || st == NULL || strlen(st) > MAX_STATUS_LEN) {
			x->why = "a status needs id and status";
			return -1;
		}
		if (!status_known(st))
			continue; /* deleted, warning, ...: nothing to move */
		grow(x->a, (void **)&x->out->statuses, &x->cap_s, x->out->nstatuses,
		     sizeof(wa_status_t));
		w = &x->out->statuses[x->out->nstatuses++];
		w->phone_number_id = pnid;
		w->wamid = id;
		w->status = st;
		w->recipient_id = rcpt != NULL && all_digits(rcpt, 1, MAX_WA_ID_LEN) ? rcpt : NULL;
		w->timestamp = timestamp_of(s);
		w->errors = json_is_array(errors) ? errors : NULL;
	}
	return 0;
}

static int extract_change(json_t *value, void *arg)
{
	extract_ctx_t *x = arg;
	const char *pnid = str_at2(value, "metadata", "phone_number_id");

	if (json_object_get(value, "messages") == NULL &&
	    json_object_get(value, "statuses") == NULL)
		return 0; /* errors, account and template updates: not ours to act on */
	if (pnid == NULL || !all_digits(pnid, 1, MAX_PNID_LEN)) {
		x->why = "messages and statuses need metadata.phone_number_id";
		return -1;
	}
	if (take_messages(x, value, pnid) < 0 || take_statuses(x, value, pnid) < 0)
		return -1;
	return 0;
}

int wa_webhook_extract(arena_t *a, json_t *root, wa_webhook_t *out, const char **why)
{
	extract_ctx_t x = {a, out, 0, 0, NULL};
	const char *obj = str_at(root, "object");
	int rc = -1;

	out->root = root;
	out->messages = NULL;
	out->statuses = NULL;
	out->nmessages = out->nstatuses = 0;
	if (!json_is_object(root)) {
		*why = "the payload is not a JSON object";
		goto out;
	}
	if (obj == NULL || strcmp(obj, "whatsapp_business_account") != 0) {
		*why = "object must be whatsapp_business_account";
		goto out;
	}
	if (each_change(root, extract_change, &x, why) < 0) {
		if (x.why != NULL)
			*why = x.why;
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		out->nmessages = out->nstatuses = 0;
	return rc;
}

int wa_webhook_parse(arena_t *a, const char *body, size_t len, wa_webhook_t *out, const char **why)
{
	json_t *root;

	memset(out, 0, sizeof(*out));
	root = wa_webhook_decode(a, body, len, why);
	if (root == NULL)
		return -1;
	if (wa_webhook_account_ids(root, out->accounts, &out->naccounts, why) < 0)
		return -1;
	return wa_webhook_extract(a, root, out, why);
}
