/*
 * calls.c - the call log (GET /api/calls), newest first, filtered by
 * direction, provider status, run and lead. A run_id or lead_id filter that
 * names another tenant's run or lead is refused like a path id (403 and a
 * [SECURITY] line), not answered with an empty page.
 */
#include "dialflow/api.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"
#include "outbound_api.h"

/* $1 business, $2 direction, $3 status, $4 run, $5 lead. */
#define CALLS_WHERE                                                                                \
	" WHERE c.business_id = $1::bigint AND ($2::text IS NULL OR c.direction = $2)"             \
	" AND ($3::text IS NULL OR c.status = $3) AND ($4::bigint IS NULL OR c.run_id = "          \
	"$4::bigint) AND ($5::bigint IS NULL OR c.lead_id = $5::bigint)"

static const db_stmt_t stmts[] = {
    {"ob_calls_list",
     "SELECT c.id, c.call_sid, c.direction, c.from_number, c.to_number, c.status, c.duration, "
     "c.lead_id, c.error_code, c.error_message, to_char(c.created_at" OB_UTC ", "
     "to_char(c.updated_at" OB_UTC ", c.run_id, c.job_id, count(*) OVER () "
     "FROM call_log c" CALLS_WHERE " ORDER BY c.created_at DESC, c.id DESC "
     "LIMIT $6::bigint OFFSET $7::bigint"},
    {"ob_calls_count", "SELECT count(*) FROM call_log c" CALLS_WHERE},
};

void outbound_calls_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static json_t *call_json(const PGresult *r, int i)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(o, "call_sid", outbound_jstr(r, i, 1));
	json_object_set_new(o, "direction", json_string(db_str(r, i, 2)));
	json_object_set_new(o, "from_number", outbound_jstr(r, i, 3));
	json_object_set_new(o, "to_number", outbound_jstr(r, i, 4));
	json_object_set_new(o, "status", json_string(db_str(r, i, 5)));
	json_object_set_new(o, "duration", outbound_jint(r, i, 6));
	json_object_set_new(o, "lead_id", outbound_jint(r, i, 7));
	json_object_set_new(o, "error_code", outbound_jstr(r, i, 8));
	json_object_set_new(o, "error_message", outbound_jstr(r, i, 9));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, 10)));
	json_object_set_new(o, "updated_at", json_string(db_str(r, i, 11)));
	json_object_set_new(o, "run_id", outbound_jint(r, i, 12));
	json_object_set_new(o, "job_id", outbound_jint(r, i, 13));
	return o;
}

int outbound_calls_list(http_request_t *req)
{
	static const char *const directions[] = {"outbound", "inbound", NULL};
	static const char *const statuses[] = {"initiated", "queued", "ringing",   "in-progress",
					       "completed", "busy",   "no-answer", "failed",
					       "canceled",  NULL};
	arena_t *a = req->arena;
	json_fielderr_t fe;
	int64_t page, size, run_id, lead_id, total = 0;
	const char *p[7];
	PGresult *r;
	json_t *items;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	json_fielderr_init(&fe, a);
	p[1] = outbound_enum_filter(req, "direction", directions, &fe);
	p[2] = outbound_enum_filter(req, "status", statuses, &fe);
	outbound_id_filter(req, "run_id", &run_id, &fe);
	outbound_id_filter(req, "lead_id", &lead_id, &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (run_id > 0 || lead_id > 0) {
		int rc = run_id > 0 ? api_tenant_guard(req, "run", run_id) : 0;

		if (rc == 0 && lead_id > 0)
			rc = api_tenant_guard(req, "lead", lead_id);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	p[0] = api_business_param(req);
	p[3] = run_id > 0 ? db_i64s(a, run_id) : NULL;
	p[4] = lead_id > 0 ? db_i64s(a, lead_id) : NULL;
	p[5] = db_i64s(a, size);
	p[6] = db_i64s(a, (page - 1) * size);
	r = db_exec(req->db, a, "ob_calls_list", 7, p, &err);
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, call_json(r, i));
		total = db_i64(r, i, 14);
	}
	if (PQntuples(r) == 0 && page > 1) {
		PGresult *c = db_exec(req->db, a, "ob_calls_count", 5, p, &err);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}
