/*
 * pace.c - the per-account calls-per-second pace (Twilio's default CPS is 1).
 *
 * The limit belongs to the provider account, not to a worker, so it is kept
 * in the database and shared by every worker: outbound_pace_take() (0003)
 * is a GCRA token bucket of cfg->calls_per_second calls per second (burst
 * of one second's worth) whose state is one row per account, locked for the
 * rest of the dispatch transaction. N workers therefore still place at most
 * calls_per_second calls per second in total, not N times that.
 *
 * A slot is reserved when the job is claimed, a few milliseconds before the
 * request leaves; a dial that then fails still spent its slot, which errs on
 * the side of calling more slowly.
 */
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "worker_internal.h"

static const db_stmt_t stmts[] = {
    {"pace_take", "SELECT granted, wait_ms FROM outbound_pace_take($1, $2::integer, $3::integer)"},
};

void pace_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

int pace_take(worker_t *w, int want, int *granted, int *wait_ms)
{
	arena_t *a = w->arena;
	PGresult *r;
	int err;

	*granted = 0;
	*wait_ms = 0;
	if (want <= 0)
		return 0;
	r = DB_EXEC(w->db, a, &err, "pace_take", w->account, db_i64s(a, want),
		    db_i64s(a, w->cfg->calls_per_second));
	if (r == NULL)
		return err;
	*granted = (int)db_i64(r, 0, 0);
	*wait_ms = (int)db_i64(r, 0, 1);
	return 0;
}
