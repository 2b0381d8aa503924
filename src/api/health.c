/* health.c - GET /api/health: the process answers, and so does the database. */
#include <stdio.h>

#include "dialflow/api.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"

static const db_stmt_t stmts[] = {
    {"health_ping", "SELECT 1"},
};

void api_health_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static bool ping(http_request_t *req)
{
	int err = 0;

	return db_ensure(req->db) == 0 &&
	       db_exec(req->db, req->arena, "health_ping", 0, NULL, &err) != NULL;
}

int api_health(http_request_t *req)
{
	char ra[16];

	/* A connection that died since the last request (a database restart)
	 * is only noticed by using it: then try once on a fresh one. */
	if (ping(req) || (!db_is_up(req->db) && ping(req))) {
		http_reply_json(req, 200, json_pack("{s:s,s:s}", "status", "ok", "db", "ok"));
		return 0;
	}
	snprintf(ra, sizeof(ra), "%d", req->cfg->db_retry_after);
	http_reply_json(req, 503,
			json_pack("{s:s,s:s}", "status", "degraded", "db", "unavailable"));
	http_add_header(req, "Retry-After", ra);
	return 0;
}
