/*
 * ratelimits.c - a business's own rate limits (system_admin only):
 *
 *   GET /api/admin/businesses/{id}/rate_limits   every rule, its default and
 *                                                the limit in force
 *   PUT /api/admin/businesses/{id}/rate_limits   {"rate_limits": {"run_create":
 *                                                {"max_hits":5,"window_s":60},
 *                                                "lead_import": null}}; null
 *                                                goes back to the default
 */
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"
#include "dialflow/ratelimit.h"

static const db_stmt_t stmts[] = {
    {"rl_business", "SELECT 1 FROM businesses WHERE id = $1::bigint"},
    {"rl_list", "SELECT name, max_hits, window_s FROM business_rate_limits "
		"WHERE business_id = $1::bigint"},
    {"rl_set", "INSERT INTO business_rate_limits (business_id, name, max_hits, window_s) "
	       "VALUES ($1::bigint, $2, $3::integer, $4::integer) ON CONFLICT (business_id, name) "
	       "DO UPDATE SET max_hits = EXCLUDED.max_hits, window_s = EXCLUDED.window_s, "
	       "updated_at = now()"},
    {"rl_reset", "DELETE FROM business_rate_limits WHERE business_id = $1::bigint AND name = $2"},
};

void admin_ratelimits_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* 404 unless business id exists. Returns 0, 1 after answering, or ERR_*. */
static int business_exists(http_request_t *req, int64_t id)
{
	PGresult *r;
	int err;

	r = DB_EXEC(req->db, req->arena, &err, "rl_business", db_i64s(req->arena, id));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 1)
		return 0;
	http_reply_error(req, 404, "not_found", "no such business", NULL);
	return 1;
}

static int reply_limits(http_request_t *req, int64_t id)
{
	json_t *items = json_array();
	PGresult *r;
	int err;

	r = DB_EXEC(req->db, req->arena, &err, "rl_list", db_i64s(req->arena, id));
	if (r == NULL) {
		json_decref(items);
		return err;
	}
	for (size_t i = 0; ratelimit_rules[i] != NULL; i++) {
		const ratelimit_rule_t *rule = ratelimit_rules[i];
		int row = -1;

		for (int k = 0; k < PQntuples(r); k++)
			if (strcmp(db_str(r, k, 0), rule->name) == 0)
				row = k;
		json_array_append_new(
		    items,
		    json_pack("{s:s, s:I, s:I, s:i, s:i, s:b}", "name", rule->name, "max_hits",
			      (json_int_t)(row >= 0 ? db_i64(r, row, 1) : rule->max_hits),
			      "window_s",
			      (json_int_t)(row >= 0 ? db_i64(r, row, 2) : rule->window_s),
			      "default_max_hits", rule->max_hits, "default_window_s",
			      rule->window_s, "overridden", row >= 0));
	}
	http_reply_json(
	    req, 200, json_pack("{s:I, s:o}", "business_id", (json_int_t)id, "rate_limits", items));
	return 0;
}

int admin_ratelimits_get(http_request_t *req)
{
	int rc = business_exists(req, req->params[0]);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	return reply_limits(req, req->params[0]);
}

/* One entry of the PUT body: null, or {max_hits, window_s} within the table's CHECKs. */
static void check_entry(http_request_t *req, const char *name, json_t *v, json_fielderr_t *fe)
{
	const char *field = arena_sprintf(req->arena, "rate_limits.%s", name);
	json_int_t hits, win;

	if (ratelimit_rule_find(name) == NULL) {
		json_fielderr_add(fe, field, "is not a known rate limit");
		return;
	}
	if (json_is_null(v))
		return;
	if (!json_is_object(v) || json_object_size(v) != 2 ||
	    !json_is_integer(json_object_get(v, "max_hits")) ||
	    !json_is_integer(json_object_get(v, "window_s"))) {
		json_fielderr_add(fe, field, "must be null or {\"max_hits\": N, \"window_s\": S}");
		return;
	}
	hits = json_integer_value(json_object_get(v, "max_hits"));
	win = json_integer_value(json_object_get(v, "window_s"));
	if (hits < 1 || hits > 100000)
		json_fielderr_add(fe, arena_sprintf(req->arena, "%s.max_hits", field),
				  "must be between 1 and 100000");
	if (win < 1 || win > 86400)
		json_fielderr_add(fe, arena_sprintf(req->arena, "%s.window_s", field),
				  "must be between 1 and 86400 seconds");
}

int admin_ratelimits_put(http_request_t *req)
{
	int64_t id = req->params[0];
	json_fielderr_t fe;
	json_t *limits, *v;
	const char *name;
	int rc, err;

	json_fielderr_init(&fe, req->arena);
	limits = json_is_object(req->json) ? json_object_get(req->json, "rate_limits") : NULL;
	if (!json_is_object(limits)) {
		json_fielderr_add(&fe, "rate_limits", "must be an object of rule name to limit");
	} else {
		json_object_foreach(limits, name, v)
		{
			check_entry(req, name, v, &fe);
		}
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	rc = business_exists(req, id);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	json_object_foreach(limits, name, v)
	{
		PGresult *r;

		if (json_is_null(v))
			r = DB_EXEC(req->db, req->arena, &err, "rl_reset", db_i64s(req->arena, id),
				    name);
		else
			r = DB_EXEC(
			    req->db, req->arena, &err, "rl_set", db_i64s(req->arena, id), name,
			    db_i64s(req->arena, json_integer_value(json_object_get(v, "max_hits"))),
			    db_i64s(req->arena,
				    json_integer_value(json_object_get(v, "window_s"))));
		if (r == NULL)
			return err;
	}
	{
		audit_event_t ev = {
		    .tag = "AUDIT",
		    .action = "business.rate_limits",
		    .resource_type = "business",
		    .resource_id = id,
		    .business_id = id,
		    .outcome = "ok",
		    .details = json_arena(req->arena, json_pack("{s:O}", "rate_limits", limits))};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	return reply_limits(req, id);
}
