/*
 * callevents.c - one provider status event applied to call_log and the job
 * (see outbound_call_event() in outbound.h).
 *
 * Both the status webhook (API process, dialflow_app, tenant-scoped) and the
 * worker's reconciliation (dialflow_worker) come through here, inside their
 * own transaction. Every write is one conditional UPDATE:
 *
 *   - call_log moves forward only (initiated < queued < ringing <
 *     in-progress < final) and never leaves a final status, so a repeated or
 *     late callback ("ringing" after "completed") changes nothing;
 *   - the job leaves dialing/calling exactly once (`WHERE call_sid = $1 AND
 *     status IN ('dialing', 'calling')`): a busy / no-answer call goes back to
 *     queued when the run allows another attempt, otherwise to its final
 *     status;
 *   - the side effects (lead stamp, create_lead_from_call, the slot NOTIFY)
 *     happen only when that UPDATE moved a row.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/queue.h"

/* The order in which non-final call statuses may follow each other. */
#define CALL_PROGRESS "ARRAY['initiated', 'queued', 'ringing', 'in-progress']::text[]"

static const db_stmt_t stmts[] = {
    /* $1 sid, $2 non-final status: only forward */
    {"outbound_ev_log_progress",
     "UPDATE call_log SET status = $2, updated_at = now() WHERE call_sid = $1 "
     "AND array_position(" CALL_PROGRESS ", status) < array_position(" CALL_PROGRESS ", $2) "
     "RETURNING id"},
    /* $1 sid, $2 final status, $3 duration (-1 unknown), $4 error code, $5 message */
    {"outbound_ev_log_final",
     "UPDATE call_log SET status = $2, "
     "duration = CASE WHEN $3::integer >= 0 THEN $3::integer ELSE duration END, "
     "error_code = coalesce($4, error_code), error_message = coalesce($5, error_message), "
     "updated_at = now() WHERE call_sid = $1 "
     "AND status IN ('initiated', 'queued', 'ringing', 'in-progress') "
     "RETURNING id, business_id, lead_id"},
    /* $1 sid, $2 non-final status */
    {"outbound_ev_job_progress",
     "UPDATE outbound_call_jobs SET status = 'calling', call_status = $2, updated_at = now() "
     "WHERE call_sid = $1 AND status IN ('dialing', 'calling') "
     "AND coalesce(array_position(" CALL_PROGRESS ", call_status), 0) < "
     "array_position(" CALL_PROGRESS ", $2) RETURNING id"},
    /*
     * $1 sid, $2 call status, $3 final job status, $4 retryable, $5 error code,
     * $6 message. A retry clears call_sid (the call stays in call_log) and waits
     * run.retry_delay_s; it needs attempts left, a live run without a cancel,
     * and no hang-up request.
     */
    {"outbound_ev_job_final",
     "UPDATE outbound_call_jobs j SET "
     "status = CASE WHEN x.retry THEN 'queued' ELSE $3 END, "
     "call_sid = CASE WHEN x.retry THEN NULL ELSE j.call_sid END, "
     "call_status = $2, "
     "next_attempt_at = CASE WHEN x.retry THEN now() + make_interval(secs => x.retry_delay_s) "
     "ELSE j.next_attempt_at END, "
     "dial_started_at = CASE WHEN x.retry THEN NULL ELSE j.dial_started_at END, "
     "completed_at = CASE WHEN x.retry THEN NULL ELSE now() END, "
     "error_code = $5, error_message = $6, updated_at = now() "
     "FROM (SELECT j2.id, r.retry_delay_s, "
     "($4::boolean AND j2.attempts < r.max_attempts AND r.status IN ('pending', 'running') "
     "AND NOT r.cancel_requested AND j2.hangup_requested_at IS NULL) AS retry "
     "FROM outbound_call_jobs j2 JOIN outbound_call_runs r ON r.id = j2.run_id "
     "WHERE j2.call_sid = $1) x "
     "WHERE j.id = x.id AND j.call_sid = $1 AND j.status IN ('dialing', 'calling') "
     "RETURNING j.id, j.run_id, j.business_id, j.lead_id, j.status"},
    {"outbound_ev_lead_stamp",
     "UPDATE leads SET last_call_at = greatest(last_call_at, now()), updated_at = now() "
     "WHERE id = $1::bigint"},
    {"outbound_ev_notify", "SELECT pg_notify('" QUEUE_CHANNEL "', 'slot:' || $1::bigint)"},
};

void outbound_events_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	/* the final event enqueues create_lead_from_call */
	queue_register();
}

/* The error code and message a final job status records. */
static void job_error(const char *status, outbound_job_status_t to, const char *code,
		      const char *msg, arena_t *a, const char **code_out, const char **msg_out)
{
	*code_out = NULL;
	*msg_out = NULL;
	if (to == JOB_COMPLETED)
		return;
	*code_out = code != NULL && code[0] != '\0' ? code : status;
	*msg_out = msg != NULL && msg[0] != '\0'
		       ? msg
		       : arena_sprintf(a, "Call ended with status: %s", status);
}

static int lead_job(db_t *db, arena_t *a, const char *call_sid, int64_t business_id)
{
	json_t *payload = json_pack("{s:s}", "call_sid", call_sid);
	int rc;

	if (payload == NULL) {
		log_error("outbound", "out of memory");
		return ERR_INTERNAL;
	}
	rc = queue_enqueue(db, a, "create_lead_from_call", business_id, payload,
			   arena_sprintf(a, "lead_from_call:%s", call_sid), 0);
	json_decref(payload);
	return rc;
}

int outbound_call_event(struct db *db, struct arena *a, const char *call_sid,
			const char *call_status, int duration, const char *error_code,
			const char *error_message, bool *changed)
{
	outbound_job_status_t to;
	bool final, retryable;
	const char *status = call_status, *jcode, *jmsg;
	PGresult *log_r, *job_r;
	int err, rc = 0;
	int64_t business_id = 0, lead_id = 0;
	bool moved = false;

	if (changed != NULL)
		*changed = false;
	if (call_sid == NULL || call_sid[0] == '\0' ||
	    outbound_job_for_call_status(call_status, &to, &final, &retryable) < 0)
		return 0; /* unknown: not ours to judge, and not an error */
	/* "answered" is an event name some callers pass; call_log knows it as in-progress */
	if (strcmp(status, "answered") == 0)
		status = "in-progress";

	if (!final) {
		log_r = DB_EXEC(db, a, &err, "outbound_ev_log_progress", call_sid, status);
		if (log_r == NULL)
			return err;
		job_r = DB_EXEC(db, a, &err, "outbound_ev_job_progress", call_sid, status);
		if (job_r == NULL)
			return err;
		moved = PQntuples(log_r) > 0 || PQntuples(job_r) > 0;
		goto out;
	}

	log_r = DB_EXEC(db, a, &err, "outbound_ev_log_final", call_sid, status,
			db_i64s(a, duration >= 0 ? duration : -1),
			error_code && error_code[0] ? error_code : NULL,
			error_message && error_message[0] ? error_message : NULL);
	if (log_r == NULL)
		return err;
	job_error(status, to, error_code, error_message, a, &jcode, &jmsg);
	job_r = DB_EXEC(db, a, &err, "outbound_ev_job_final", call_sid, status,
			outbound_job_status_name(to), retryable ? "true" : "false", jcode, jmsg);
	if (job_r == NULL)
		return err;

	if (PQntuples(log_r) > 0) {
		/* the call ended: exactly once per call */
		moved = true;
		business_id = db_i64(log_r, 0, 1);
		lead_id = db_i64(log_r, 0, 2);
		if (lead_id > 0 &&
		    DB_EXEC(db, a, &err, "outbound_ev_lead_stamp", db_i64s(a, lead_id)) == NULL)
			return err;
		rc = lead_job(db, a, call_sid, business_id);
		if (rc < 0)
			return rc;
	}
	if (PQntuples(job_r) > 0) {
		/* the job left dialing/calling: its slot is free */
		moved = true;
		business_id = db_i64(job_r, 0, 2);
		if (DB_EXEC(db, a, &err, "outbound_ev_notify", db_i64s(a, business_id)) == NULL)
			return err;
		log_info("outbound", "call event job=%lld run=%lld status=%s job_status=%s",
			 (long long)db_i64(job_r, 0, 0), (long long)db_i64(job_r, 0, 1), status,
			 db_str(job_r, 0, 4));
	}
out:
	if (changed != NULL)
		*changed = moved;
	return rc;
}
