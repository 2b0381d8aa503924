/*
 * cancel.c - force-cancel hang-ups (DESIGN §7 "Cancel and force-cancel").
 *
 * The API cancels the run and its queued jobs and stamps hangup_requested_at
 * on the live ones, in its own transaction, then NOTIFYs
 * 'force_cancel:<run>'. Any worker (the run's lease is not needed: the run is
 * already over) then hangs those calls up through the provider. Each call is
 * first stamped (hangup_attempt_at, a short lease) so workers do not pile on
 * the same call, and the job becomes cancelled only once the provider took
 * the hang-up; a worker that dies in between leaves the call to be retried
 * when the stamp expires. The scan is cheap (a partial index) and runs on
 * every loop, so a lost NOTIFY costs one poll interval at most.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "dialflow/queue.h"
#include "worker_internal.h"

#define HANGUP_BATCH 200

static const db_stmt_t stmts[] = {
    /* $1 lease seconds, $2 limit */
    {"cancel_claim_hangups",
     "WITH c AS (SELECT id FROM outbound_call_jobs WHERE hangup_requested_at IS NOT NULL "
     "AND status IN ('dialing', 'calling') AND call_sid IS NOT NULL "
     "AND (hangup_attempt_at IS NULL "
     "OR hangup_attempt_at < now() - make_interval(secs => $1::integer)) "
     "ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED) "
     "UPDATE outbound_call_jobs j SET hangup_attempt_at = now() FROM c WHERE j.id = c.id "
     "RETURNING j.id, j.run_id, j.business_id, j.call_sid"},
    {"cancel_hung_up",
     "WITH j AS (UPDATE outbound_call_jobs SET status = 'cancelled', "
     "error_code = 'force_cancelled', error_message = 'Hung up by force-cancel', "
     "completed_at = now(), updated_at = now() "
     "WHERE id = $1::bigint AND status IN ('dialing', 'calling') RETURNING business_id) "
     "SELECT pg_notify('" QUEUE_CHANNEL "', 'slot:' || business_id) FROM j"},
    /* $1 business, $2 run, $3 details */
    {"cancel_audit",
     "INSERT INTO audit_events (business_id, tag, action, resource_type, resource_id, "
     "details) VALUES ($1::bigint, 'FORCE_CANCEL', 'run.force_cancel.hangup', 'run', "
     "$2::bigint, $3::jsonb)"},
};

void cancel_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

typedef struct run_tally {
	int64_t run_id;
	int64_t business_id;
	int hung_up; /* the provider took the hang-up (or the call was already over) */
	int failed;  /* to be retried once the stamp expires                         */
} run_tally_t;

static run_tally_t *tally_for(run_tally_t *t, int *nt, int64_t run_id, int64_t business_id)
{
	for (int i = 0; i < *nt; i++)
		if (t[i].run_id == run_id)
			return &t[i];
	t[*nt].run_id = run_id;
	t[*nt].business_id = business_id;
	return &t[(*nt)++];
}

/*
 * Close one run's hung-up jobs (cancelled, slot NOTIFY) and write its
 * [FORCE_CANCEL] audit row, in one transaction. done[i] marks row i of r.
 */
static int close_run(worker_t *w, const PGresult *r, const bool *done, const run_tally_t *t)
{
	arena_t *a = w->arena;
	json_t *details = NULL;
	size_t dlen;
	int err = 0, rc;

	rc = db_begin(w->db);
	if (rc < 0)
		return rc;
	for (int i = 0; i < PQntuples(r); i++) {
		if (!done[i] || db_i64(r, i, 1) != t->run_id)
			continue;
		if (DB_EXEC(w->db, a, &err, "cancel_hung_up", db_str(r, i, 0)) == NULL)
			goto fail;
	}
	details = json_pack("{s:i, s:i, s:s}", "calls_hung_up", t->hung_up, "hangup_failed",
			    t->failed, "worker", w->owner);
	if (details == NULL) {
		err = ERR_INTERNAL;
		goto fail;
	}
	if (DB_EXEC(w->db, a, &err, "cancel_audit", db_i64s(a, t->business_id),
		    db_i64s(a, t->run_id), json_dump_arena(a, details, &dlen)) == NULL)
		goto fail;
	json_decref(details);
	rc = db_commit(w->db);
	if (rc == 0)
		log_warn(WORKER_COMPONENT,
			 LOG_TAG_FORCE_CANCEL " run=%lld business=%lld calls_hung_up=%d "
					      "hangup_failed=%d",
			 (long long)t->run_id, (long long)t->business_id, t->hung_up, t->failed);
	return rc;
fail:
	json_decref(details);
	db_rollback(w->db);
	return err;
}

int cancel_hangups(worker_t *w)
{
	arena_t *a = w->arena;
	run_tally_t *tally;
	PGresult *r;
	bool *done;
	int err, n, nt = 0;

	w->want_hangup = false;
	if (w->provider == NULL)
		return 0;
	r = DB_EXEC(w->db, a, &err, "cancel_claim_hangups", db_i64s(a, WORKER_HANGUP_LEASE_S),
		    db_i64s(a, HANGUP_BATCH));
	if (r == NULL)
		return err;
	n = PQntuples(r);
	if (n == 0)
		return 0;
	tally = arena_calloc(a, (size_t)n, sizeof(*tally));
	done = arena_calloc(a, (size_t)n, sizeof(*done));
	/* the provider first, with no transaction open */
	for (int i = 0; i < n; i++) {
		run_tally_t *t = tally_for(tally, &nt, db_i64(r, i, 1), db_i64(r, i, 2));
		provider_call_res_t res;
		int rc;

		memset(&res, 0, sizeof(res));
		rc = w->provider->ops->hangup(w->provider, db_str(r, i, 3), &res);
		/* REJECTED: the provider will not hang it up (the call already ended, or is
		 * unknown): asking again changes nothing */
		done[i] = rc == PROVIDER_OK || rc == PROVIDER_ERR_REJECTED;
		if (done[i])
			t->hung_up++;
		else
			t->failed++;
		if (rc == PROVIDER_ERR_REJECTED)
			log_warn(WORKER_COMPONENT, "job=%lld hang-up refused http=%d code=%s",
				 (long long)db_i64(r, i, 0), res.http_status, res.error_code);
	}
	for (int i = 0; i < nt; i++)
		if (close_run(w, r, done, &tally[i]) < 0)
			log_warn(WORKER_COMPONENT, "run=%lld closing hung-up calls failed; retried",
				 (long long)tally[i].run_id);
	/* a full batch may have left more */
	w->want_hangup = n == HANGUP_BATCH;
	return 0;
}
