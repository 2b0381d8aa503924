/* apiutil.c - helpers shared by the outbound handlers (see outbound_api.h). */
#include <stdio.h>
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"
#include "dialflow/queue.h"
#include "dialflow/strnum.h"
#include "outbound_api.h"

static const db_stmt_t stmts[] = {
    {"ob_business_country", "SELECT default_country FROM businesses WHERE id = $1::bigint"},
    {"ob_notify", "SELECT pg_notify($1, $2)"},
};

void outbound_apiutil_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

int outbound_business_country(http_request_t *req, const char **out)
{
	int err;
	PGresult *r =
	    DB_EXEC(req->db, req->arena, &err, "ob_business_country", api_business_param(req));

	if (r == NULL)
		return err;
	*out = PQntuples(r) == 1 ? db_str(r, 0, 0) : NULL;
	return 0;
}

int outbound_notify(http_request_t *req, const char *payload)
{
	int err;

	if (DB_EXEC(req->db, req->arena, &err, "ob_notify", QUEUE_CHANNEL, payload) == NULL)
		return err;
	return 0;
}

/* Append s to an array literal under construction: quoted, with " and \ escaped. */
static char *put_elem(char *p, const char *s)
{
	if (s == NULL) {
		memcpy(p, "NULL", 4);
		return p + 4;
	}
	*p++ = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p++ = '"';
	return p;
}

const char *outbound_text_array(arena_t *a, const char *const *v, size_t n)
{
	size_t need = 3;
	char *lit, *p;

	for (size_t i = 0; i < n; i++)
		need += v[i] == NULL ? 5 : 2 * strlen(v[i]) + 3;
	lit = arena_alloc(a, need);
	p = lit;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		p = put_elem(p, v[i]);
	}
	*p++ = '}';
	*p = '\0';
	return lit;
}

const char *outbound_int_array(arena_t *a, const int64_t *v, size_t n)
{
	char *lit = arena_alloc(a, n * 21 + 3), *p = lit;

	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%lld", i > 0 ? "," : "", (long long)v[i]);
	*p++ = '}';
	*p = '\0';
	return lit;
}

json_t *outbound_jstr(const PGresult *r, int row, int col)
{
	return db_isnull(r, row, col) ? json_null() : json_string(db_str(r, row, col));
}

json_t *outbound_jint(const PGresult *r, int row, int col)
{
	return db_isnull(r, row, col) ? json_null() : json_integer(db_i64(r, row, col));
}

int64_t outbound_changed(const PGresult *r)
{
	int64_t n = 0;
	const char *s = PQcmdTuples((PGresult *)r);

	if (s == NULL || *s == '\0' || strnum_i64(s, 0, INT64_MAX, &n) < 0)
		return 0;
	return n;
}

size_t outbound_utf8_chars(const char *s)
{
	size_t n = 0;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if ((*c & 0xC0) != 0x80)
			n++;
	return n;
}

const char *outbound_enum_filter(http_request_t *req, const char *name, const char *const *allowed,
				 json_fielderr_t *fe)
{
	const char *v = http_query(req, name);

	if (v == NULL)
		return NULL;
	for (size_t i = 0; allowed[i] != NULL; i++)
		if (strcmp(v, allowed[i]) == 0)
			return allowed[i];
	{
		size_t len = 0;
		char *msg;

		for (size_t i = 0; allowed[i] != NULL; i++)
			len += strlen(allowed[i]) + 2;
		msg = arena_alloc(req->arena, len + 16);
		strcpy(msg, "must be one of ");
		for (size_t i = 0; allowed[i] != NULL; i++) {
			if (i > 0)
				strcat(msg, ", ");
			strcat(msg, allowed[i]);
		}
		json_fielderr_add(fe, name, msg);
	}
	return NULL;
}

void outbound_id_filter(http_request_t *req, const char *name, int64_t *out, json_fielderr_t *fe)
{
	const char *v = http_query(req, name);

	*out = 0;
	if (v != NULL && strnum_i64(v, 1, INT64_MAX, out) < 0) {
		*out = 0;
		json_fielderr_add(fe, name, "must be a positive integer id");
	}
}
