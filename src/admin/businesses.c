/*
 * businesses.c - platform administration of tenants (system_admin only):
 * list, create, and the set of enabled pages.
 */
#include <ctype.h>
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"

#define BUSINESS_COLS                                                                              \
	"b.id, b.name, b.timezone, b.default_country, b.max_concurrent_calls, b.is_active, "       \
	"to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "             \
	"coalesce((SELECT json_agg(p.page_key ORDER BY p.page_key) FROM business_pages p "         \
	"WHERE p.business_id = b.id), '[]'::json)::text"

static const db_stmt_t stmts[] = {
    {"biz_list", "SELECT " BUSINESS_COLS ", count(*) OVER () FROM businesses b "
		 "ORDER BY b.id LIMIT $1::bigint OFFSET $2::bigint"},
    {"biz_count", "SELECT count(*) FROM businesses"},
    {"biz_get", "SELECT " BUSINESS_COLS " FROM businesses b WHERE b.id = $1::bigint"},
    {"biz_tz_valid", "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)"},
    {"biz_insert", "INSERT INTO businesses (name, timezone, default_country, "
		   "max_concurrent_calls) VALUES ($1, $2, $3, $4::integer) RETURNING id"},
    {"biz_pages_prune", "DELETE FROM business_pages WHERE business_id = $1::bigint "
			"AND page_key <> ALL ($2::text[])"},
    {"biz_pages_add", "INSERT INTO business_pages (business_id, page_key) "
		      "SELECT $1::bigint, k FROM unnest($2::text[]) k ON CONFLICT DO NOTHING"},
};

void admin_businesses_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static json_t *business_json(const PGresult *r, int i)
{
	json_t *pages = json_loads(db_str(r, i, 7), 0, NULL);

	return json_pack("{s:I,s:s,s:s,s:s,s:I,s:b,s:s,s:o}", "id", (json_int_t)db_i64(r, i, 0),
			 "name", db_str(r, i, 1), "timezone", db_str(r, i, 2), "default_country",
			 db_str(r, i, 3), "max_concurrent_calls", (json_int_t)db_i64(r, i, 4),
			 "is_active", db_bool(r, i, 5), "created_at", db_str(r, i, 6),
			 "enabled_pages", pages ? pages : json_array());
}

/* Answer {business} for id with status; 404 when it does not exist. */
static int reply_business(http_request_t *req, int64_t id, int status)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "biz_get", db_i64s(req->arena, id));

	if (r == NULL)
		return err;
	if (PQntuples(r) != 1) {
		http_reply_error(req, 404, "not_found", "no such business", NULL);
		return 0;
	}
	http_reply_json(req, status, json_pack("{s:o}", "business", business_json(r, 0)));
	return 0;
}

int admin_businesses_list(http_request_t *req)
{
	int64_t page, size, total = 0;
	PGresult *r;
	json_t *items;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	r = DB_EXEC(req->db, req->arena, &err, "biz_list", db_i64s(req->arena, size),
		    db_i64s(req->arena, (page - 1) * size));
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, business_json(r, i));
		total = db_i64(r, i, 8);
	}
	if (PQntuples(r) == 0) {
		PGresult *c = db_exec(req->db, req->arena, "biz_count", 0, NULL, &err);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

static bool valid_country(const char *c)
{
	return strlen(c) == 2 && isupper((unsigned char)c[0]) && isupper((unsigned char)c[1]);
}

int admin_businesses_create(http_request_t *req)
{
	json_fielderr_t fe;
	const char *name = NULL, *tz = "UTC", *country = "US";
	int64_t maxcalls = 3, id;
	PGresult *r;
	int err;

	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
		http_reply_invalid(req, &fe);
		return 0;
	}
	json_get_str(req->json, "name", true, 1, 200, &name, &fe);
	json_get_str(req->json, "timezone", false, 1, 64, &tz, &fe);
	if (json_get_str(req->json, "default_country", false, 2, 2, &country, &fe) > 0 &&
	    !valid_country(country))
		json_fielderr_add(&fe, "default_country", "must be an ISO 3166 alpha-2 code");
	json_get_int(req->json, "max_concurrent_calls", false, 1, 1000, &maxcalls, &fe);
	if (!json_fielderr_any(&fe)) {
		r = DB_EXEC(req->db, req->arena, &err, "biz_tz_valid", tz);
		if (r == NULL)
			return err;
		if (!db_bool(r, 0, 0))
			json_fielderr_add(&fe, "timezone", "is not a known IANA time zone");
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	r = DB_EXEC(req->db, req->arena, &err, "biz_insert", name, tz, country,
		    db_i64s(req->arena, maxcalls));
	if (r == NULL)
		return err;
	id = db_i64(r, 0, 0);
	{
		audit_event_t ev = {.tag = "AUDIT",
				    .action = "business.create",
				    .resource_type = "business",
				    .resource_id = id,
				    .business_id = id,
				    .outcome = "ok"};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	return reply_business(req, id, 201);
}

int admin_businesses_set_pages(http_request_t *req)
{
	int64_t id = req->params[0];
	json_fielderr_t fe;
	json_t *arr, *v;
	size_t i;
	char *lit;
	size_t len = 0, cap = 2;
	PGresult *r;
	int err;

	json_fielderr_init(&fe, req->arena);
	arr = json_is_object(req->json) ? json_object_get(req->json, "enabled_pages") : NULL;
	if (!json_is_array(arr)) {
		json_fielderr_add(&fe, "enabled_pages", "must be an array of page keys");
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (json_array_size(arr) > 64) {
		json_fielderr_add(&fe, "enabled_pages", "has too many entries");
		http_reply_invalid(req, &fe);
		return 0;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || auth_page_find(json_string_value(v)) == NULL) {
			json_fielderr_add(&fe, arena_sprintf(req->arena, "enabled_pages[%zu]", i),
					  "is not a known page key");
			continue;
		}
		cap += json_string_length(v) + 1;
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	/* keys come from the registry ([a-z_]), so the array literal needs no quoting */
	lit = arena_alloc(req->arena, cap + 1);
	lit[len++] = '{';
	json_array_foreach(arr, i, v)
	{
		size_t n = json_string_length(v);

		if (len > 1)
			lit[len++] = ',';
		memcpy(lit + len, json_string_value(v), n);
		len += n;
	}
	lit[len++] = '}';
	lit[len] = '\0';
	r = DB_EXEC(req->db, req->arena, &err, "biz_get", db_i64s(req->arena, id));
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1) {
		http_reply_error(req, 404, "not_found", "no such business", NULL);
		return 0;
	}
	if (DB_EXEC(req->db, req->arena, &err, "biz_pages_prune", db_i64s(req->arena, id), lit) ==
		NULL ||
	    DB_EXEC(req->db, req->arena, &err, "biz_pages_add", db_i64s(req->arena, id), lit) ==
		NULL)
		return err;
	{
		audit_event_t ev = {
		    .tag = "AUDIT",
		    .action = "business.pages",
		    .resource_type = "business",
		    .resource_id = id,
		    .business_id = id,
		    .outcome = "ok",
		    .details = json_arena(req->arena, json_pack("{s:O}", "enabled_pages", arr))};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	return reply_business(req, id, 200);
}
