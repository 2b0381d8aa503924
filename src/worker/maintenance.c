/*
 * maintenance.c - the worker's hourly housekeeping:
 *
 *   - the audit trail's monthly partitions are created three months ahead
 *     (audit_ensure_partitions, 0004), so that events never land in the
 *     DEFAULT partition and retention stays a matter of dropping months;
 *   - rate-limit buckets idle for a day are deleted (rate_limit_gc).
 *
 * Every worker runs it; the functions serialise themselves, and doing it twice
 * is harmless. A failure is logged and retried at the next pass.
 */
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "worker_internal.h"

#define MAINTENANCE_EVERY_MS (3600 * 1000)
#define AUDIT_MONTHS_AHEAD   "3"

static const db_stmt_t stmts[] = {
    {"maint_audit_partitions", "SELECT audit_ensure_partitions(now(), $1::integer)"},
    {"maint_ratelimit_gc", "SELECT rate_limit_gc()"},
};

void maintenance_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

void maintenance_run(worker_t *w)
{
	int64_t now = worker_now_ms();
	PGresult *r;
	int err;

	if (now < w->next_maintenance)
		return;
	w->next_maintenance = now + MAINTENANCE_EVERY_MS;
	r = DB_EXEC(w->db, w->arena, &err, "maint_audit_partitions", AUDIT_MONTHS_AHEAD);
	if (r == NULL)
		log_warn(WORKER_COMPONENT, "audit partitions not ensured err=%d", err);
	else if (db_i64(r, 0, 0) > 0)
		log_info(WORKER_COMPONENT, "audit partitions created=%lld",
			 (long long)db_i64(r, 0, 0));
	r = DB_EXEC(w->db, w->arena, &err, "maint_ratelimit_gc");
	if (r == NULL)
		log_warn(WORKER_COMPONENT, "rate-limit buckets not collected err=%d", err);
	else if (db_i64(r, 0, 0) > 0)
		log_info(WORKER_COMPONENT, "rate-limit buckets forgotten=%lld",
			 (long long)db_i64(r, 0, 0));
}
