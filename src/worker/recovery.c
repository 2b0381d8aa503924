/*
 * recovery.c - the periodic sweeps that make every failure end somewhere
 * visible (DESIGN §7 "No double dial", "Lead creation").
 *
 *   - call_log rows still without a provider call id after call_log_sweep_s
 *     are failed (no_call_sid), and their job, if still dialing, is failed
 *     worker_lost: the provider may hold the call, so it is never redialled;
 *   - calls with an id but no final status for call_reconcile_s since their
 *     last event (and calling jobs whose call_log row is no longer open) are
 *     asked of the provider (fetch_status) and the answer is applied through
 *     outbound_call_event(), exactly as a late callback;
 *   - background jobs whose lease expired are rescued (queue_rescue()).
 *
 * Every worker runs them; FOR UPDATE SKIP LOCKED keeps them from colliding.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/queue.h"
#include "worker_internal.h"

/* Provider look-ups per sweep: each is a network round trip on the loop's thread. */
#define RECONCILE_BATCH 20

static const db_stmt_t stmts[] = {
    /* $1 seconds */
    {"recovery_call_log",
     "WITH s AS (UPDATE call_log SET status = 'failed', error_code = 'no_call_sid', "
     "error_message = 'No provider call id within ' || $1::integer || "
     "' s: the call was never confirmed', updated_at = now() "
     "WHERE id IN (SELECT id FROM call_log WHERE call_sid IS NULL AND status = 'initiated' "
     "AND created_at < now() - make_interval(secs => $1::integer) "
     "ORDER BY created_at LIMIT 200 FOR UPDATE SKIP LOCKED) RETURNING id, job_id), "
     "j AS (UPDATE outbound_call_jobs SET status = 'failed', error_code = 'worker_lost', "
     "error_message = 'No provider call id was recorded for this dial; not redialled so the "
     "lead is never called twice', completed_at = now(), updated_at = now() "
     "WHERE id IN (SELECT job_id FROM s) AND status = 'dialing' AND call_sid IS NULL "
     "RETURNING business_id), "
     "n AS (SELECT pg_notify('" QUEUE_CHANNEL "', 'slot:' || business_id) "
     "FROM (SELECT DISTINCT business_id FROM j) d) "
     "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM j), (SELECT count(*) FROM n)"},
    /* $1 seconds, $2 limit: claim by moving updated_at, so the next look is $1 away */
    {"recovery_reconcile_claim",
     "WITH c AS (SELECT id FROM call_log WHERE call_sid IS NOT NULL "
     "AND status IN ('initiated', 'queued', 'ringing', 'in-progress') "
     "AND direction = 'outbound' AND updated_at < now() - make_interval(secs => $1::integer) "
     "ORDER BY updated_at LIMIT $2::integer FOR UPDATE SKIP LOCKED) "
     "UPDATE call_log l SET updated_at = now() FROM c WHERE l.id = c.id RETURNING l.call_sid"},
    /* the same for calling jobs whose call_log row is not open (or gone): never stuck */
    {"recovery_reconcile_jobs",
     "WITH c AS (SELECT j.id FROM outbound_call_jobs j WHERE j.status = 'calling' "
     "AND j.call_sid IS NOT NULL AND j.updated_at < now() - make_interval(secs => $1::integer) "
     "AND NOT EXISTS (SELECT 1 FROM call_log l WHERE l.call_sid = j.call_sid "
     "AND l.status IN ('initiated', 'queued', 'ringing', 'in-progress')) "
     "ORDER BY j.updated_at LIMIT $2::integer FOR UPDATE OF j SKIP LOCKED) "
     "UPDATE outbound_call_jobs j SET updated_at = now() FROM c WHERE j.id = c.id "
     "RETURNING j.call_sid"},
};

void recovery_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static void sweep_call_log(worker_t *w)
{
	PGresult *r;
	int err;

	r = DB_EXEC(w->db, w->arena, &err, "recovery_call_log",
		    db_i64s(w->arena, w->cfg->call_log_sweep_s));
	if (r == NULL || db_i64(r, 0, 0) == 0)
		return;
	log_warn(WORKER_COMPONENT,
		 "call_log sweep: calls_without_sid_failed=%lld dialing_jobs_failed=%lld",
		 (long long)db_i64(r, 0, 0), (long long)db_i64(r, 0, 1));
}

/* Apply the provider's view of one call in its own transaction. */
static void apply_status(worker_t *w, const char *sid, const provider_call_res_t *res,
			 const char *status, const char *code, const char *msg)
{
	bool changed = false;
	int rc = db_begin(w->db);

	if (rc == 0)
		rc = outbound_call_event(w->db, w->arena, sid, status, res ? res->duration : -1,
					 code, msg, &changed);
	if (rc == 0)
		rc = db_commit(w->db);
	if (rc < 0) {
		db_rollback(w->db);
		log_warn(WORKER_COMPONENT, "reconcile call_sid=%s failed err=%d", sid, rc);
		return;
	}
	if (changed)
		log_info(WORKER_COMPONENT, "reconciled call_sid=%s status=%s", sid, status);
}

/* Ask the provider about the calls of claim statement `stmt` and apply its answers. */
static void reconcile(worker_t *w, const char *stmt)
{
	arena_t *a = w->arena;
	PGresult *r;
	int err;

	if (w->provider == NULL)
		return;
	r = DB_EXEC(w->db, a, &err, stmt, db_i64s(a, w->cfg->call_reconcile_s),
		    db_i64s(a, RECONCILE_BATCH));
	if (r == NULL)
		return;
	for (int i = 0; i < PQntuples(r) && !worker_stopping; i++) {
		const char *sid = db_str(r, i, 0);
		provider_call_res_t res;
		int rc;

		memset(&res, 0, sizeof(res));
		res.duration = -1;
		rc = w->provider->ops->fetch_status(w->provider, sid, &res);
		if (rc == PROVIDER_OK && res.status[0] != '\0')
			apply_status(w, sid, &res, res.status,
				     res.error_code[0] ? res.error_code : NULL,
				     res.error_message[0] ? res.error_message : NULL);
		else if (rc == PROVIDER_ERR_REJECTED && res.http_status == 404)
			apply_status(w, sid, NULL, "failed", "not_found",
				     "The provider has no record of this call");
		else
			log_warn(WORKER_COMPONENT,
				 "reconcile call_sid=%s: provider answered rc=%d http=%d, retrying "
				 "later",
				 sid, rc, res.http_status);
	}
}

void recovery_sweep(worker_t *w)
{
	sweep_call_log(w);
	reconcile(w, "recovery_reconcile_claim");
	reconcile(w, "recovery_reconcile_jobs");
	(void)queue_rescue(w->db, w->arena, NULL);
	maintenance_run(w);
}
