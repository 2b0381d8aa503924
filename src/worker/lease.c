/*
 * lease.c - run leases (DESIGN §7 "Lease and heartbeat", "Stale runs").
 *
 * A worker drives a run only while it holds the run's lease: locked_by_worker
 * (host:pid), a random lease_token and lock_ts, kept alive by heartbeating
 * last_heartbeat_at. Every write on a run is guarded by `lease_token = mine`,
 * so a worker that lost its lease (it stalled, another took over) changes
 * nothing and drops the run at its next heartbeat.
 *
 * Claimable: pending runs, running runs whose lease was released (a clean
 * shutdown), and running runs whose heartbeat is older than run_stale_s (the
 * holder died). A takeover first fails the jobs caught in `dialing` without a
 * provider call id (worker_lost): their call may or may not exist, so they
 * are never dialled again.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "worker_internal.h"

/*
 * One run per claim round; a worker that holds k runs waits k/4 of a poll
 * interval (at most one) before its next round, so that idle workers, woken
 * by the same 'run:' NOTIFY, take new runs first and the load spreads.
 */
#define CLAIM_PER_ROUND 1

static const db_stmt_t stmts[] = {
    /* $1 owner, $2 stale seconds, $3 limit */
    {"lease_claim",
     "WITH c AS (SELECT id, status AS old_status, locked_by_worker AS old_owner, "
     "last_heartbeat_at AS old_beat FROM outbound_call_runs "
     "WHERE status = 'pending' OR (status = 'running' AND (lease_token IS NULL "
     "OR last_heartbeat_at IS NULL "
     "OR last_heartbeat_at < now() - make_interval(secs => $2::integer))) "
     "ORDER BY id LIMIT $3::integer FOR UPDATE SKIP LOCKED) "
     "UPDATE outbound_call_runs r SET status = 'running', locked_by_worker = $1, "
     "lease_token = gen_random_uuid(), lock_ts = now(), last_heartbeat_at = now(), "
     "started_at = coalesce(r.started_at, now()), updated_at = now() FROM c WHERE r.id = c.id "
     "RETURNING r.id, r.business_id, r.lease_token::text, c.old_status, c.old_owner, "
     "coalesce(extract(epoch FROM now() - c.old_beat)::bigint, -1)"},
    /* $1 run, $2 token: the takeover's recovery of calls caught mid-dial */
    {"lease_takeover_jobs",
     "WITH j AS (UPDATE outbound_call_jobs SET status = 'failed', error_code = 'worker_lost', "
     "error_message = 'The worker stopped while dialling; not redialled so the lead is never "
     "called twice', completed_at = now(), updated_at = now() "
     "WHERE run_id = $1::bigint AND status = 'dialing' AND call_sid IS NULL "
     "AND EXISTS (SELECT 1 FROM outbound_call_runs WHERE id = $1::bigint "
     "AND lease_token = $2::uuid) RETURNING id), "
     "lg AS (UPDATE call_log SET status = 'failed', error_code = 'worker_lost', "
     "error_message = 'The worker stopped before the provider confirmed the call', "
     "updated_at = now() WHERE job_id IN (SELECT id FROM j) AND call_sid IS NULL "
     "AND status = 'initiated' RETURNING id) "
     "SELECT (SELECT count(*) FROM j), (SELECT count(*) FROM lg)"},
    /* $1 business, $2 run, $3 details */
    /* the takeover, and the worker it shows lost (one row each, one statement) */
    {"lease_takeover_audit",
     "INSERT INTO audit_events (business_id, tag, action, resource_type, resource_id, "
     "details) VALUES ($1::bigint, 'STALE_DETECTION', 'run.takeover', 'run', $2::bigint, "
     "$3::jsonb), ($1::bigint, 'STALE_DETECTION', 'worker.lost', 'run', $2::bigint, "
     "jsonb_build_object('worker', $3::jsonb->'previous_worker', 'heartbeat_age_s', "
     "$3::jsonb->'heartbeat_age_s', 'detected_by', $3::jsonb->'worker'))"},
    /* $1 ids, $2 tokens */
    {"lease_heartbeat", "UPDATE outbound_call_runs r SET last_heartbeat_at = now() "
			"FROM unnest($1::bigint[], $2::uuid[]) AS l(id, token) "
			"WHERE r.id = l.id AND r.lease_token = l.token "
			"RETURNING r.id, r.status, r.cancel_requested"},
    {"lease_release",
     "UPDATE outbound_call_runs SET locked_by_worker = NULL, lease_token = NULL, lock_ts = NULL, "
     "updated_at = now() WHERE id = $1::bigint AND lease_token = $2::uuid"},
    {"lease_cancel_queued",
     "UPDATE outbound_call_jobs SET status = 'cancelled', error_code = 'cancelled', "
     "error_message = 'Cancelled by user', completed_at = now(), updated_at = now() "
     "WHERE run_id = $1::bigint AND status = 'queued' "
     "AND EXISTS (SELECT 1 FROM outbound_call_runs WHERE id = $1::bigint "
     "AND lease_token = $2::uuid AND cancel_requested)"},
    /* finishes a run with no queued or live job; derived counts for the log */
    {"lease_finish",
     "UPDATE outbound_call_runs r SET "
     "status = CASE WHEN r.cancel_requested THEN 'cancelled' ELSE 'completed' END, "
     "ended_at = now(), updated_at = now(), locked_by_worker = NULL, lease_token = NULL, "
     "lock_ts = NULL "
     "WHERE r.id = $1::bigint AND r.lease_token = $2::uuid AND r.status = 'running' "
     "AND NOT EXISTS (SELECT 1 FROM outbound_call_jobs j WHERE j.run_id = r.id "
     "AND j.status IN ('queued', 'dialing', 'calling')) "
     "RETURNING r.status, "
     "(SELECT count(*) FILTER (WHERE status = 'completed') FROM outbound_call_jobs "
     "WHERE run_id = r.id), "
     "(SELECT count(*) FILTER (WHERE status = 'failed') FROM outbound_call_jobs "
     "WHERE run_id = r.id), "
     "(SELECT count(*) FILTER (WHERE status = 'cancelled') FROM outbound_call_jobs "
     "WHERE run_id = r.id)"},
};

void lease_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

worker_lease_t *lease_find(worker_t *w, int64_t run_id)
{
	for (int i = 0; i < w->nleases; i++)
		if (w->leases[i].run_id == run_id)
			return &w->leases[i];
	return NULL;
}

void lease_drop(worker_t *w, int idx)
{
	if (idx < 0 || idx >= w->nleases)
		return;
	w->leases[idx] = w->leases[w->nleases - 1];
	w->nleases--;
}

/* Fail the jobs a dead holder left mid-dial, with the audit row, in one transaction. */
/*
 * Resume a run another worker drove: fail the jobs it left mid-dial. When
 * the holder died (old_owner set: its heartbeat went stale) that is a
 * [STALE_DETECTION] event with its audit row, in the same transaction; a
 * lease released by a clean shutdown (old_owner NULL) is a plain resume.
 */
static int takeover(worker_t *w, const worker_lease_t *l, const char *old_owner, int64_t age_s)
{
	arena_t *a = w->arena;
	PGresult *r;
	json_t *details;
	size_t dlen;
	int err, rc;
	int64_t jobs = 0, calls = 0;

	rc = db_begin(w->db);
	if (rc < 0)
		return rc;
	r = DB_EXEC(w->db, a, &err, "lease_takeover_jobs", db_i64s(a, l->run_id), l->token);
	if (r == NULL) {
		rc = err;
		goto out;
	}
	jobs = db_i64(r, 0, 0);
	calls = db_i64(r, 0, 1);
	if (old_owner != NULL) {
		details = json_pack("{s:s, s:s, s:I, s:I}", "previous_worker", old_owner, "worker",
				    w->owner, "heartbeat_age_s", (json_int_t)age_s,
				    "dialing_failed", (json_int_t)jobs);
		if (details == NULL) {
			rc = ERR_INTERNAL;
			goto out;
		}
		r = DB_EXEC(w->db, a, &err, "lease_takeover_audit", db_i64s(a, l->business_id),
			    db_i64s(a, l->run_id), json_dump_arena(a, details, &dlen));
		json_decref(details);
		if (r == NULL) {
			rc = err;
			goto out;
		}
	}
	rc = db_commit(w->db);
out:
	if (rc < 0) {
		db_rollback(w->db);
		log_warn(WORKER_COMPONENT, "run=%lld takeover recovery failed err=%d",
			 (long long)l->run_id, rc);
		return rc;
	}
	if (old_owner != NULL)
		log_warn(WORKER_COMPONENT,
			 LOG_TAG_STALE
			 " run=%lld business=%lld taken over from=%s "
			 "heartbeat_age_s=%lld dialing_failed=%lld call_log_failed=%lld",
			 (long long)l->run_id, (long long)l->business_id, old_owner,
			 (long long)age_s, (long long)jobs, (long long)calls);
	else
		log_info(WORKER_COMPONENT,
			 "run=%lld resumed (lease released by its last worker) dialing_failed=%lld",
			 (long long)l->run_id, (long long)jobs);
	return 0;
}

int64_t lease_claim_due(const worker_t *w)
{
	int64_t poll = w->cfg->dispatch_poll_ms;
	int64_t defer = poll * w->nleases / 4;

	return w->last_claim + (defer < poll ? defer : poll);
}

int lease_claim(worker_t *w)
{
	arena_t *a = w->arena;
	PGresult *r;
	int err, room = WORKER_MAX_RUNS - w->nleases;

	if (room <= 0)
		return 0;
	if (room > CLAIM_PER_ROUND)
		room = CLAIM_PER_ROUND;
	r = DB_EXEC(w->db, a, &err, "lease_claim", w->owner, db_i64s(a, w->cfg->run_stale_s),
		    db_i64s(a, room));
	if (r == NULL)
		return err;
	for (int i = 0; i < PQntuples(r); i++) {
		worker_lease_t *l = &w->leases[w->nleases++];
		const char *old_status = db_str(r, i, 3);
		const char *old_owner = db_str(r, i, 4);

		memset(l, 0, sizeof(*l));
		l->run_id = db_i64(r, i, 0);
		l->business_id = db_i64(r, i, 1);
		snprintf(l->token, sizeof(l->token), "%s", db_str(r, i, 2));
		l->beat_ok_ms = worker_now_ms();
		l->dirty = true;
		log_info(WORKER_COMPONENT, "run=%lld business=%lld claimed (was %s)",
			 (long long)l->run_id, (long long)l->business_id, old_status);
		if (strcmp(old_status, "running") == 0)
			(void)takeover(w, l, old_owner, db_i64(r, i, 5));
	}
	/* a full round may have left more runs to claim */
	w->want_claim = PQntuples(r) == room && w->nleases < WORKER_MAX_RUNS;
	if (PQntuples(r) > 0)
		w->last_claim = worker_now_ms();
	return 0;
}

/* "{a,b}" literals of the held runs' ids and tokens. */
static void lease_arrays(worker_t *w, const char **ids, const char **tokens)
{
	size_t cap = (size_t)w->nleases * 44 + 3, li = 0, lt = 0;
	char *si = arena_alloc(w->arena, cap), *st = arena_alloc(w->arena, cap);

	si[li++] = '{';
	st[lt++] = '{';
	for (int i = 0; i < w->nleases; i++) {
		li += (size_t)snprintf(si + li, cap - li, "%s%lld", i ? "," : "",
				       (long long)w->leases[i].run_id);
		lt += (size_t)snprintf(st + lt, cap - lt, "%s%s", i ? "," : "", w->leases[i].token);
	}
	snprintf(si + li, cap - li, "}");
	snprintf(st + lt, cap - lt, "}");
	*ids = si;
	*tokens = st;
}

static void release(worker_t *w, worker_lease_t *l)
{
	int err;

	(void)DB_EXEC(w->db, w->arena, &err, "lease_release", db_i64s(w->arena, l->run_id),
		      l->token);
}

int lease_heartbeat(worker_t *w)
{
	const char *ids, *tokens;
	PGresult *r;
	int err;
	int64_t now = worker_now_ms();

	if (w->nleases == 0)
		return 0;
	lease_arrays(w, &ids, &tokens);
	r = DB_EXEC(w->db, w->arena, &err, "lease_heartbeat", ids, tokens);
	if (r == NULL)
		return err;
	for (int i = w->nleases - 1; i >= 0; i--) {
		worker_lease_t *l = &w->leases[i];
		int row = -1;

		for (int k = 0; k < PQntuples(r); k++)
			if (db_i64(r, k, 0) == l->run_id)
				row = k;
		if (row < 0) {
			/* another worker holds it now: touch nothing more */
			log_warn(WORKER_COMPONENT, "run=%lld lease lost, dropping it",
				 (long long)l->run_id);
			lease_drop(w, i);
			continue;
		}
		l->beat_ok_ms = now;
		if (strcmp(db_str(r, row, 1), "running") != 0) {
			/* cancelled, stopped or failed by the API: live calls end by themselves
			 * (force-cancel hang-ups do not need the lease) */
			log_info(WORKER_COMPONENT, "run=%lld is %s, releasing it",
				 (long long)l->run_id, db_str(r, row, 1));
			release(w, l);
			lease_drop(w, i);
			continue;
		}
		if (db_bool(r, row, 2))
			l->dirty = true;
	}
	return 0;
}

void lease_heartbeat_if_late(worker_t *w)
{
	int64_t oldest = INT64_MAX;

	for (int i = 0; i < w->nleases; i++)
		if (w->leases[i].beat_ok_ms < oldest)
			oldest = w->leases[i].beat_ok_ms;
	if (w->nleases > 0 && worker_now_ms() - oldest >= w->run_beat_ms)
		(void)lease_heartbeat(w);
}

int lease_settle(worker_t *w, worker_lease_t *l)
{
	arena_t *a = w->arena;
	const char *run = db_i64s(a, l->run_id);
	PGresult *r;
	int err;

	r = DB_EXEC(w->db, a, &err, "lease_cancel_queued", run, l->token);
	if (r == NULL)
		return err;
	if (strcmp(PQcmdTuples(r), "0") != 0) {
		log_info(WORKER_COMPONENT, "run=%lld cancel requested: queued jobs cancelled=%s",
			 (long long)l->run_id, PQcmdTuples(r));
	}
	r = DB_EXEC(w->db, a, &err, "lease_finish", run, l->token);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return 0;
	log_info(
	    WORKER_COMPONENT, "run=%lld business=%lld %s completed=%lld failed=%lld cancelled=%lld",
	    (long long)l->run_id, (long long)l->business_id, db_str(r, 0, 0),
	    (long long)db_i64(r, 0, 1), (long long)db_i64(r, 0, 2), (long long)db_i64(r, 0, 3));
	return 1;
}

void lease_release_all(worker_t *w)
{
	for (int i = w->nleases - 1; i >= 0; i--) {
		release(w, &w->leases[i]);
		log_info(WORKER_COMPONENT, "run=%lld lease released",
			 (long long)w->leases[i].run_id);
		lease_drop(w, i);
	}
}
