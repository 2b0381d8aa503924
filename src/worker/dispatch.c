/*
 * dispatch.c - filling a run's free call slots (DESIGN §7 "Limits", "No
 * double dial").
 *
 * Two phases, so that no transaction ever waits on the network:
 *
 *   1. One transaction under the business's advisory lock: count the
 *      business's in-flight jobs (dialing + calling, any run, any worker),
 *      claim at most min(run.concurrency, business.max_concurrent_calls) minus
 *      that many ready jobs, within the calling window and the account's
 *      pace, skipping do-not-call leads; mark them dialing and write their
 *      call_log rows (no call_sid yet). Commit. Only this transaction ever
 *      raises the in-flight count, and it does so under the lock, so the limit
 *      holds at every instant across any number of workers.
 *   2. For each claimed job, outside any transaction: check the lease and the
 *      job are still live, ask the provider, then record the outcome with a
 *      conditional UPDATE. A job in `dialing` without a call_sid therefore
 *      always means "the provider may or may not have the call": recovery
 *      fails it (worker_lost) and never dials it again.
 *
 * Outcomes: OK -> calling with the sid (hung up at once if the job was
 * cancelled or taken away meanwhile: nobody would track that call);
 * REJECTED -> failed with the provider's code; TRANSIENT -> queued again
 * after a short delay, the attempt undone (nothing was placed); UNKNOWN ->
 * left dialing for the call_log sweep. When the database is away the outcome
 * is kept in memory and written once it is back.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/log.h"
#include "worker_internal.h"

/* Jobs claimed per dispatch transaction. */
#define DISPATCH_MAX_BATCH 50

/* A claimed job that must not be dialled any more: cancelled rather than re-queued. */
#define CANCELLED_COND                                                                             \
	"(j.hangup_requested_at IS NOT NULL OR r.cancel_requested "                                \
	"OR r.status NOT IN ('pending', 'running'))"

static const db_stmt_t stmts[] = {
    {"dispatch_lock",
     "SELECT pg_advisory_xact_lock($1::integer, ($2::bigint % 2147483647)::integer)"},
    /* $1 run, $2 token, $3 default caller id: free slots, window open, caller id, AMD */
    {"dispatch_context",
     "SELECT least(r.concurrency, b.max_concurrent_calls) - "
     "(SELECT count(*) FROM outbound_call_jobs j WHERE j.business_id = r.business_id "
     "AND j.status IN ('dialing', 'calling')), "
     "b.is_active AND outbound_calling_window_open(b.timezone, b.calling_window_start, "
     "b.calling_window_end), "
     "coalesce(b.caller_id, nullif($3, '')), b.amd_enabled "
     "FROM outbound_call_runs r JOIN businesses b ON b.id = r.business_id "
     "WHERE r.id = $1::bigint AND r.lease_token = $2::uuid AND r.status = 'running' "
     "AND NOT r.cancel_requested"},
    {"dispatch_dnc",
     "UPDATE outbound_call_jobs j SET status = 'cancelled', error_code = 'do_not_call', "
     "error_message = 'The lead is on the do-not-call list', completed_at = now(), "
     "updated_at = now() FROM leads l WHERE j.run_id = $1::bigint AND j.status = 'queued' "
     "AND l.id = j.lead_id AND l.do_not_call"},
    {"dispatch_candidates",
     "SELECT j.id FROM outbound_call_jobs j JOIN leads l ON l.id = j.lead_id "
     "WHERE j.run_id = $1::bigint AND j.status = 'queued' AND j.next_attempt_at <= now() "
     "AND NOT l.do_not_call ORDER BY j.next_attempt_at, j.id LIMIT $2::integer "
     "FOR UPDATE OF j SKIP LOCKED"},
    /* $1 job ids, $2 caller id */
    {"dispatch_claim",
     "WITH c AS (UPDATE outbound_call_jobs SET status = 'dialing', attempts = attempts + 1, "
     "dial_started_at = now(), call_status = NULL, error_code = NULL, error_message = NULL, "
     "hangup_attempt_at = NULL, updated_at = now() "
     "WHERE id = ANY ($1::bigint[]) AND status = 'queued' "
     "RETURNING id, run_id, business_id, lead_id, phone, attempts), "
     "lg AS (INSERT INTO call_log (business_id, direction, from_number, to_number, status, "
     "lead_id, run_id, job_id) SELECT business_id, 'outbound', $2, phone, 'initiated', lead_id, "
     "run_id, id FROM c RETURNING id, job_id) "
     "SELECT c.id, lg.id, c.phone, c.attempts FROM c JOIN lg ON lg.job_id = c.id ORDER BY c.id"},
    /* $1 run, $2 token: no caller id anywhere, nothing can be dialled */
    {"dispatch_no_caller_id",
     "WITH j AS (UPDATE outbound_call_jobs SET status = 'failed', error_code = 'no_caller_id', "
     "error_message = 'No caller id: set the business caller_id or DIALFLOW_TWILIO_FROM', "
     "completed_at = now(), updated_at = now() WHERE run_id = $1::bigint AND status = 'queued' "
     "RETURNING id) "
     "UPDATE outbound_call_runs SET last_error = 'No caller id: set the business caller_id or "
     "DIALFLOW_TWILIO_FROM', updated_at = now() "
     "WHERE id = $1::bigint AND lease_token = $2::uuid"},
    /* $1 job, $2 token: still ours to dial? */
    {"dispatch_check",
     "SELECT 1 FROM outbound_call_jobs j JOIN outbound_call_runs r ON r.id = j.run_id "
     "WHERE j.id = $1::bigint AND j.status = 'dialing' AND j.call_sid IS NULL "
     "AND j.hangup_requested_at IS NULL AND r.lease_token = $2::uuid "
     "AND r.status = 'running' AND NOT r.cancel_requested"},
    /* $1 job, $2 call_log id: claimed, never sent to the provider */
    {"dispatch_revert",
     "WITH j AS (UPDATE outbound_call_jobs j SET "
     "status = CASE WHEN " CANCELLED_COND " THEN 'cancelled' ELSE 'queued' END, "
     "attempts = greatest(j.attempts - 1, 0), dial_started_at = NULL, "
     "completed_at = CASE WHEN " CANCELLED_COND " THEN now() END, "
     "error_code = CASE WHEN " CANCELLED_COND " THEN 'cancelled' END, "
     "error_message = CASE WHEN " CANCELLED_COND " THEN 'Cancelled before it was dialled' END, "
     "updated_at = now() FROM outbound_call_runs r WHERE j.id = $1::bigint AND r.id = j.run_id "
     "AND j.status = 'dialing' AND j.call_sid IS NULL RETURNING j.id) "
     "DELETE FROM call_log WHERE id = $2::bigint AND call_sid IS NULL AND status = 'initiated' "
     "RETURNING (SELECT count(*) FROM j)"},
    /* $1 job, $2 call_log id, $3 sid */
    {"dispatch_placed",
     "WITH lg AS (UPDATE call_log SET call_sid = $3, updated_at = now() "
     "WHERE id = $2::bigint AND call_sid IS NULL RETURNING id) "
     "UPDATE outbound_call_jobs SET call_sid = $3, "
     "status = CASE WHEN status = 'dialing' THEN 'calling' ELSE status END, updated_at = now() "
     "WHERE id = $1::bigint AND call_sid IS NULL "
     "RETURNING status, hangup_requested_at IS NOT NULL"},
    /* $1 job, $2 call_log id, $3 code, $4 message */
    {"dispatch_rejected",
     "WITH lg AS (UPDATE call_log SET status = 'failed', error_code = $3, error_message = $4, "
     "updated_at = now() WHERE id = $2::bigint AND call_sid IS NULL AND status = 'initiated') "
     "UPDATE outbound_call_jobs SET status = 'failed', error_code = $3, error_message = $4, "
     "completed_at = now(), updated_at = now() "
     "WHERE id = $1::bigint AND status = 'dialing' AND call_sid IS NULL"},
    /* $1 job, $2 call_log id, $3 code, $4 message, $5 delay s */
    {"dispatch_transient",
     "WITH lg AS (UPDATE call_log SET status = 'failed', error_code = $3, error_message = $4, "
     "updated_at = now() WHERE id = $2::bigint AND call_sid IS NULL AND status = 'initiated') "
     "UPDATE outbound_call_jobs j SET "
     "status = CASE WHEN " CANCELLED_COND " THEN 'cancelled' ELSE 'queued' END, "
     "attempts = greatest(j.attempts - 1, 0), "
     "next_attempt_at = now() + make_interval(secs => $5::integer), dial_started_at = NULL, "
     "error_code = $3, error_message = $4, "
     "completed_at = CASE WHEN " CANCELLED_COND " THEN now() END, updated_at = now() "
     "FROM outbound_call_runs r WHERE j.id = $1::bigint AND r.id = j.run_id "
     "AND j.status = 'dialing' AND j.call_sid IS NULL"},
};

void dispatch_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* Hang up a call nobody tracks any more (its job left `dialing` before the sid was stored). */
static void hangup_orphan(worker_t *w, int64_t job_id, const char *sid, const char *why)
{
	provider_call_res_t res;
	int rc;

	memset(&res, 0, sizeof(res));
	rc = w->provider->ops->hangup(w->provider, sid, &res);
	log_warn(WORKER_COMPONENT, "job=%lld call placed but the job is %s: hung up rc=%d",
		 (long long)job_id, why, rc);
}

/*
 * Write one outcome. Returns 0, or ERR_UNAVAIL when it must be kept for
 * later (the database is away); other failures are logged and dropped (the
 * sweep then fails the job rather than ever dialling it again).
 */
static int record(worker_t *w, const worker_pending_t *p)
{
	arena_t *a = w->arena;
	const char *job = db_i64s(a, p->job_id), *log_id = db_i64s(a, p->log_id);
	PGresult *r = NULL;
	int err = 0;

	switch (p->kind) {
	case PENDING_PLACED:
		r = DB_EXEC(w->db, a, &err, "dispatch_placed", job, log_id, p->call_sid);
		if (r == NULL)
			break;
		if (PQntuples(r) == 0)
			hangup_orphan(w, p->job_id, p->call_sid, "gone");
		else if (strcmp(db_str(r, 0, 0), "calling") != 0)
			hangup_orphan(w, p->job_id, p->call_sid, db_str(r, 0, 0));
		else if (db_bool(r, 0, 1))
			w->want_hangup = true;
		break;
	case PENDING_REJECTED:
		r = DB_EXEC(w->db, a, &err, "dispatch_rejected", job, log_id, p->error_code,
			    p->error_message);
		break;
	case PENDING_TRANSIENT:
		r = DB_EXEC(w->db, a, &err, "dispatch_transient", job, log_id, p->error_code,
			    p->error_message, db_i64s(a, WORKER_TRANSIENT_RETRY_S));
		break;
	case PENDING_REVERT:
		r = DB_EXEC(w->db, a, &err, "dispatch_revert", job, log_id);
		break;
	}
	if (r != NULL)
		return 0;
	if (!db_is_up(w->db))
		return ERR_UNAVAIL;
	log_error(WORKER_COMPONENT, "job=%lld recording the dial outcome failed err=%d",
		  (long long)p->job_id, err);
	/* a live call we cannot track must not go on */
	if (p->kind == PENDING_PLACED)
		hangup_orphan(w, p->job_id, p->call_sid, "untracked");
	return 0;
}

static void record_or_keep(worker_t *w, const worker_pending_t *p)
{
	if (record(w, p) == 0)
		return;
	if (w->npending >= WORKER_MAX_PENDING) {
		log_error(WORKER_COMPONENT,
			  "job=%lld outcome dropped (too many pending); the sweep will settle it",
			  (long long)p->job_id);
		return;
	}
	w->pending[w->npending++] = *p;
}

void dispatch_flush_pending(worker_t *w)
{
	int i = 0;

	while (i < w->npending) {
		if (record(w, &w->pending[i]) < 0)
			return; /* still away: keep the rest in order */
		w->pending[i] = w->pending[--w->npending];
	}
}

/* The job claimed in phase 1, copied out of the arena-backed result. */
typedef struct claimed {
	int64_t job_id;
	int64_t log_id;
	int attempt;
	char phone[24];
} claimed_t;

static void dial(worker_t *w, int64_t business_id, const char *from, bool amd, const claimed_t *c)
{
	provider_call_req_t req;
	provider_call_res_t res;
	worker_pending_t p;
	char masked[32];
	int rc;

	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	memset(&p, 0, sizeof(p));
	req.to = c->phone;
	req.from = from;
	req.answer_url = w->answer_url;
	req.status_url = w->status_url;
	req.timeout_s = w->cfg->ring_timeout_s;
	req.job_id = c->job_id;
	req.amd = amd;
	req.amd_url = w->amd_url;
	p.job_id = c->job_id;
	p.log_id = c->log_id;
	p.business_id = business_id;
	rc = w->provider->ops->place_call(w->provider, &req, &res);
	log_mask_phone(c->phone, masked, sizeof(masked));
	switch (rc) {
	case PROVIDER_OK:
		if (res.call_sid[0] == '\0') {
			/* a provider bug: treat it as a lost answer, never dial again */
			log_error(WORKER_COMPONENT, "job=%lld provider returned no call id",
				  (long long)c->job_id);
			return;
		}
		p.kind = PENDING_PLACED;
		snprintf(p.call_sid, sizeof(p.call_sid), "%s", res.call_sid);
		log_info(WORKER_COMPONENT, "dial job=%lld to=%s attempt=%d call_sid=%s",
			 (long long)c->job_id, masked, c->attempt, p.call_sid);
		break;
	case PROVIDER_ERR_REJECTED:
		p.kind = PENDING_REJECTED;
		snprintf(p.error_code, sizeof(p.error_code), "%s",
			 res.error_code[0] ? res.error_code : "provider_rejected");
		if (res.error_message[0])
			snprintf(p.error_message, sizeof(p.error_message), "%s", res.error_message);
		else
			snprintf(p.error_message, sizeof(p.error_message),
				 "The provider refused the call (HTTP %d)", res.http_status);
		log_warn(WORKER_COMPONENT, "dial job=%lld to=%s rejected code=%s http=%d",
			 (long long)c->job_id, masked, p.error_code, res.http_status);
		break;
	case PROVIDER_ERR_TRANSIENT:
		p.kind = PENDING_TRANSIENT;
		snprintf(p.error_code, sizeof(p.error_code), "%s",
			 res.error_code[0] ? res.error_code : "provider_unavailable");
		snprintf(p.error_message, sizeof(p.error_message),
			 "The provider was unavailable (HTTP %d); retrying", res.http_status);
		log_warn(WORKER_COMPONENT,
			 "dial job=%lld to=%s transient failure http=%d: retry in %ds",
			 (long long)c->job_id, masked, res.http_status, WORKER_TRANSIENT_RETRY_S);
		break;
	default:
		/* the request may have reached the provider: leave it to the sweep */
		log_warn(WORKER_COMPONENT,
			 "dial job=%lld to=%s outcome unknown: left dialing, never redialled",
			 (long long)c->job_id, masked);
		return;
	}
	record_or_keep(w, &p);
}

static void revert(worker_t *w, int64_t business_id, const claimed_t *c)
{
	worker_pending_t p;

	memset(&p, 0, sizeof(p));
	p.kind = PENDING_REVERT;
	p.job_id = c->job_id;
	p.log_id = c->log_id;
	p.business_id = business_id;
	record_or_keep(w, &p);
}

/* Phase 2: dial what phase 1 claimed, re-checking lease and job before each request. */
static void dial_claimed(worker_t *w, int64_t run_id, int64_t business_id, const char *token,
			 const char *from, bool amd, const claimed_t *jobs, int n)
{
	int err;

	for (int i = 0; i < n; i++) {
		PGresult *r;

		if (worker_stopping || lease_find(w, run_id) == NULL) {
			revert(w, business_id, &jobs[i]);
			continue;
		}
		r = DB_EXEC(w->db, w->arena, &err, "dispatch_check",
			    db_i64s(w->arena, jobs[i].job_id), token);
		if (r == NULL || PQntuples(r) == 0) {
			revert(w, business_id, &jobs[i]);
			continue;
		}
		dial(w, business_id, from, amd, &jobs[i]);
		/* a long batch must not let the lease go stale */
		lease_heartbeat_if_late(w);
	}
}

/* "{1,2,3}" of the first n ids. */
static const char *ids_literal(arena_t *a, const PGresult *r, int n)
{
	size_t cap = (size_t)n * 21 + 3, len = 0;
	char *s = arena_alloc(a, cap);

	s[len++] = '{';
	for (int i = 0; i < n; i++)
		len +=
		    (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
	snprintf(s + len, cap - len, "}");
	return s;
}

int dispatch_run(worker_t *w, worker_lease_t *l)
{
	arena_t *a = w->arena;
	int64_t run_id = l->run_id, business_id = l->business_id;
	char token[sizeof(l->token)], from[32] = "";
	const char *run = db_i64s(a, run_id);
	claimed_t *jobs = NULL;
	PGresult *r;
	int err, rc, free_slots, want, ncand, granted = 0, wait_ms = 0, n = 0;
	bool open, amd = false;

	l->dirty = false;
	if (w->provider == NULL || worker_stopping || worker_now_ms() < l->not_before)
		return 0;
	snprintf(token, sizeof(token), "%s", l->token);
	rc = db_begin(w->db);
	if (rc < 0)
		return rc;
	if (DB_EXEC(w->db, a, &err, "dispatch_lock", db_i64s(a, WORKER_DISPATCH_LOCK_NS),
		    db_i64s(a, business_id)) == NULL)
		goto fail;
	r = DB_EXEC(w->db, a, &err, "dispatch_context", run, token, w->cfg->twilio_from);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 0)
		goto done; /* cancelled, ended or not ours: lease_settle / the heartbeat decide */
	free_slots = (int)db_i64(r, 0, 0);
	open = db_bool(r, 0, 1);
	if (!db_isnull(r, 0, 2))
		snprintf(from, sizeof(from), "%s", db_str(r, 0, 2));
	amd = db_bool(r, 0, 3);
	/*
	 * Do-not-call jobs are never candidates; they are closed (cancelled) when the
	 * run starts here and whenever the ready queue runs short, not on every
	 * dispatch: that statement walks the whole queue of the run.
	 */
	if (!l->dnc_checked) {
		if (DB_EXEC(w->db, a, &err, "dispatch_dnc", run) == NULL)
			goto fail;
		l->dnc_checked = true;
	}
	if (!open || free_slots <= 0)
		goto done;
	if (from[0] == '\0') {
		if (DB_EXEC(w->db, a, &err, "dispatch_no_caller_id", run, token) == NULL)
			goto fail;
		log_error(WORKER_COMPONENT, "run=%lld business=%lld has no caller id: jobs failed",
			  (long long)run_id, (long long)business_id);
		goto done;
	}
	want = free_slots < DISPATCH_MAX_BATCH ? free_slots : DISPATCH_MAX_BATCH;
	r = DB_EXEC(w->db, a, &err, "dispatch_candidates", run, db_i64s(a, want));
	if (r == NULL)
		goto fail;
	ncand = PQntuples(r);
	if (ncand < want && DB_EXEC(w->db, a, &err, "dispatch_dnc", run) == NULL)
		goto fail;
	if (ncand == 0)
		goto done;
	if ((rc = pace_take(w, ncand, &granted, &wait_ms)) < 0) {
		err = rc;
		goto fail;
	}
	if (granted < ncand) {
		/* paced: come back when the next slot of the account frees */
		l->not_before = worker_now_ms() + (wait_ms > 0 ? wait_ms : 1);
		l->dirty = true;
	}
	if (granted == 0)
		goto done;
	r = DB_EXEC(w->db, a, &err, "dispatch_claim", ids_literal(a, r, granted), from);
	if (r == NULL)
		goto fail;
	n = PQntuples(r);
	/* a full batch with slots to spare: more is ready, come back at once, not at the next poll
	 */
	if (n == DISPATCH_MAX_BATCH && free_slots > n)
		l->dirty = true;
	jobs = arena_calloc(a, (size_t)(n > 0 ? n : 1), sizeof(*jobs));
	for (int i = 0; i < n; i++) {
		jobs[i].job_id = db_i64(r, i, 0);
		jobs[i].log_id = db_i64(r, i, 1);
		snprintf(jobs[i].phone, sizeof(jobs[i].phone), "%s", db_str(r, i, 2));
		jobs[i].attempt = (int)db_i64(r, i, 3);
	}
done:
	rc = db_commit(w->db);
	if (rc < 0) {
		/* the commit's fate is unknown: undo the claims we may have made (no-ops if not) */
		for (int i = 0; i < n; i++)
			revert(w, business_id, &jobs[i]);
		return rc;
	}
	if (n > 0)
		dial_claimed(w, run_id, business_id, token, from, amd, jobs, n);
	return 0;
fail:
	db_rollback(w->db);
	log_warn(WORKER_COMPONENT, "run=%lld dispatch failed err=%d", (long long)run_id, err);
	return err;
}
