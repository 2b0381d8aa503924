/* jsonutil.c - strict JSON decoding and typed field access with error lists. */
#include <string.h>

#include "dialflow/jsonutil.h"

static void decref_cb(void *p)
{
	json_decref(p);
}

json_t *json_arena(arena_t *a, json_t *v)
{
	if (v != NULL)
		arena_on_reset(a, decref_cb, v);
	return v;
}

json_t *json_decode_strict(arena_t *a, const char *buf, size_t len, const char **why)
{
	json_error_t e;
	json_t *v;

	if (len == 0) {
		*why = "empty body";
		return NULL;
	}
	/* Rejects duplicate keys; jansson itself rejects invalid UTF-8, \u0000
	 * (no JSON_ALLOW_NUL) and integers that overflow json_int_t. */
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (v == NULL) {
		*why = strstr(e.text, "duplicate") ? "duplicate object key" : "malformed JSON";
		return NULL;
	}
	return json_arena(a, v);
}

void json_fielderr_init(json_fielderr_t *fe, arena_t *a)
{
	fe->list = NULL;
	fe->arena = a;
}

void json_fielderr_add(json_fielderr_t *fe, const char *field, const char *msg)
{
	if (fe->list == NULL)
		fe->list = json_arena(fe->arena, json_array());
	json_array_append_new(fe->list, json_pack("{s:s,s:s}", "field", field, "message", msg));
}

bool json_fielderr_any(const json_fielderr_t *fe)
{
	return fe->list != NULL && json_array_size(fe->list) > 0;
}

/* The value of key; a missing key is an error only when required, and an
 * explicit null is always one (null never silently means "not sent"). */
static json_t *field(json_t *obj, const char *key, bool required, json_fielderr_t *fe, int *rc)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	*rc = 0;
	if (v == NULL) {
		if (required) {
			json_fielderr_add(fe, key, "is required");
			*rc = -1;
		}
		return NULL;
	}
	if (json_is_null(v)) {
		json_fielderr_add(fe, key, "must not be null");
		*rc = -1;
		return NULL;
	}
	return v;
}

int json_get_str(json_t *obj, const char *key, bool required, size_t minlen, size_t maxlen,
		 const char **out, json_fielderr_t *fe)
{
	int rc;
	json_t *v = field(obj, key, required, fe, &rc);
	size_t len;

	if (v == NULL)
		return rc;
	if (!json_is_string(v)) {
		json_fielderr_add(fe, key, "must be a string");
		return -1;
	}
	len = json_string_length(v);
	if (len < minlen) {
		json_fielderr_add(fe, key, minlen == 1 ? "must not be empty" : "is too short");
		return -1;
	}
	if (len > maxlen) {
		json_fielderr_add(fe, key, "is too long");
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

int json_get_int(json_t *obj, const char *key, bool required, int64_t min, int64_t max,
		 int64_t *out, json_fielderr_t *fe)
{
	int rc;
	json_t *v = field(obj, key, required, fe, &rc);
	json_int_t i;

	if (v == NULL)
		return rc;
	if (!json_is_integer(v)) {
		json_fielderr_add(fe, key, "must be an integer");
		return -1;
	}
	i = json_integer_value(v);
	if (i < min || i > max) {
		json_fielderr_add(fe, key, "is out of range");
		return -1;
	}
	*out = (int64_t)i;
	return 1;
}

int json_get_bool(json_t *obj, const char *key, bool required, bool *out, json_fielderr_t *fe)
{
	int rc;
	json_t *v = field(obj, key, required, fe, &rc);

	if (v == NULL)
		return rc;
	if (!json_is_boolean(v)) {
		json_fielderr_add(fe, key, "must be a boolean");
		return -1;
	}
	*out = json_is_true(v);
	return 1;
}

struct dump_buf {
	arena_t *a;
	char *p;
	size_t len, cap;
};

static int dump_cb(const char *buf, size_t size, void *data)
{
	struct dump_buf *d = data;

	if (d->len + size + 1 > d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		char *np;

		while (cap < d->len + size + 1)
			cap *= 2;
		np = arena_alloc(d->a, cap);
		if (d->len)
			memcpy(np, d->p, d->len);
		d->p = np;
		d->cap = cap;
	}
	memcpy(d->p + d->len, buf, size);
	d->len += size;
	d->p[d->len] = '\0';
	return 0;
}

char *json_dump_arena(arena_t *a, const json_t *v, size_t *len)
{
	struct dump_buf d = {a, NULL, 0, 0};

	json_dump_callback(v, dump_cb, &d,
			   JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	if (d.p == NULL)
		dump_cb("", 0, &d);
	*len = d.len;
	return d.p;
}
