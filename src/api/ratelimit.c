/*
 * ratelimit.c - app-level rate limits (see ratelimit.h): the rules, the one
 * statement that takes a hit, and the API's 429 answer.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/audit.h"
#include "dialflow/auth.h"
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/ratelimit.h"

const ratelimit_rule_t RATELIMIT_RUN_CREATE = {"run_create", 2, 60};
const ratelimit_rule_t RATELIMIT_LEAD_IMPORT = {"lead_import", 5, 60};
const ratelimit_rule_t RATELIMIT_FLOW_START = {"flow_start", 1, 10};
const ratelimit_rule_t RATELIMIT_FLOW_INBOUND = {"flow_inbound", 30, 60};

const ratelimit_rule_t *const ratelimit_rules[] = {
    &RATELIMIT_RUN_CREATE,
    &RATELIMIT_LEAD_IMPORT,
    &RATELIMIT_FLOW_START,
    &RATELIMIT_FLOW_INBOUND,
    NULL,
};

static const db_stmt_t stmts[] = {
    {"ratelimit_take", "SELECT allowed, retry_after_s, max_hits, window_s "
		       "FROM rate_limit_take($1::bigint, $2, $3, $4::integer, $5::integer)"},
};

void ratelimit_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

const ratelimit_rule_t *ratelimit_rule_find(const char *name)
{
	for (size_t i = 0; ratelimit_rules[i] != NULL; i++)
		if (strcmp(ratelimit_rules[i]->name, name) == 0)
			return ratelimit_rules[i];
	return NULL;
}

int ratelimit_take(db_t *db, arena_t *a, const ratelimit_rule_t *rule, int64_t business_id,
		   const char *subject, ratelimit_result_t *out)
{
	PGresult *r;
	int err;

	memset(out, 0, sizeof(*out));
	r = DB_EXEC(db, a, &err, "ratelimit_take", business_id > 0 ? db_i64s(a, business_id) : NULL,
		    rule->name, subject, db_i64s(a, rule->max_hits), db_i64s(a, rule->window_s));
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1)
		return ERR_INTERNAL;
	out->allowed = db_bool(r, 0, 0);
	out->retry_after_s = (int)db_i64(r, 0, 1);
	out->max_hits = (int)db_i64(r, 0, 2);
	out->window_s = (int)db_i64(r, 0, 3);
	return 0;
}

int ratelimit_guard(http_request_t *req, const ratelimit_rule_t *rule, const char *subject)
{
	const auth_principal_t *p = req->principal;
	ratelimit_result_t res;
	char retry[16];
	int err;

	err = ratelimit_take(req->db, req->arena, rule, p ? p->business_id : 0, subject, &res);
	if (err < 0)
		return err;
	if (res.allowed)
		return 0;
	{
		json_t *d = json_arena(req->arena,
				       json_pack("{s:s, s:i, s:i, s:i}", "rule", rule->name,
						 "max_hits", res.max_hits, "window_s", res.window_s,
						 "retry_after_s", res.retry_after_s));
		audit_event_t ev = {.tag = "RATE_LIMIT",
				    .action = arena_sprintf(req->arena, "ratelimit.%s", rule->name),
				    .business_id = p ? p->business_id : 0,
				    .outcome = "denied",
				    .details = d};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	snprintf(retry, sizeof(retry), "%d", res.retry_after_s);
	http_reply_error(req, 429, "rate_limited",
			 arena_sprintf(req->arena, "at most %d of these every %d s; retry in %d s",
				       res.max_hits, res.window_s, res.retry_after_s),
			 json_pack("{s:i}", "retry_after", res.retry_after_s));
	http_add_header(req, "Retry-After", retry);
	return 1;
}
