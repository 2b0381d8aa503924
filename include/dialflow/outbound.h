/*
 * outbound.h - the run and job state machines (DESIGN §7), shared by the API,
 * the worker and the status webhook.
 *
 *   run: pending -> running -> completed | cancelled | stopped | failed
 *        (pending may also go straight to cancelled, stopped or failed)
 *   job: queued -> dialing -> calling -> completed | failed, and -> cancelled
 *        from any non-final state; dialing -> queued only for a retry of a
 *        call that the provider never accepted.
 *
 * These functions are pure; the database applies a transition with one
 * conditional UPDATE (`... WHERE status IN (allowed from-states)`), so a
 * repeated or late event changes nothing.
 */
#ifndef DIALFLOW_OUTBOUND_H
#define DIALFLOW_OUTBOUND_H

#include <stdbool.h>

#include "dialflow/http.h"

typedef enum {
	RUN_PENDING,
	RUN_RUNNING,
	RUN_COMPLETED,
	RUN_CANCELLED,
	RUN_STOPPED,
	RUN_FAILED,
	RUN_INVALID = -1,
} outbound_run_status_t;

typedef enum {
	JOB_QUEUED,
	JOB_DIALING,
	JOB_CALLING,
	JOB_COMPLETED,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_INVALID = -1,
} outbound_job_status_t;

outbound_run_status_t outbound_run_status_parse(const char *s);
const char *outbound_run_status_name(outbound_run_status_t s);
outbound_job_status_t outbound_job_status_parse(const char *s);
const char *outbound_job_status_name(outbound_job_status_t s);

bool outbound_run_is_terminal(outbound_run_status_t s);
bool outbound_job_is_terminal(outbound_job_status_t s);
/* Whether a job status counts against the concurrency limit (dialing, calling). */
bool outbound_job_in_flight(outbound_job_status_t s);

bool outbound_run_transition_ok(outbound_run_status_t from, outbound_run_status_t to);
bool outbound_job_transition_ok(outbound_job_status_t from, outbound_job_status_t to);

/*
 * What a provider call status (Twilio's CallStatus: queued, initiated,
 * ringing, in-progress, completed, busy, no-answer, failed, canceled) means
 * for the job: *to is the job status it moves to, *final whether the call
 * ended. *retryable is set for busy and no-answer (a run may retry those).
 * Returns 0, or -1 for an unknown status.
 */
int outbound_job_for_call_status(const char *call_status, outbound_job_status_t *to, bool *final,
				 bool *retryable);

struct db;
struct arena;

/*
 * Apply one provider status event for call_sid (src/outbound/callevents.c),
 * in the caller's open transaction: the status webhook (API, tenant-scoped by
 * webhook_call_business()) and the worker's reconciliation (worker role) both
 * use it. It updates call_log (status, duration, error), moves the job with
 * one conditional UPDATE that never leaves a final state, re-queues a busy /
 * no-answer job when the run allows another attempt, stamps the lead's
 * last_call_at, and on the final event enqueues create_lead_from_call with
 * only the call_sid, and NOTIFYs the workers that a slot is free. A repeated,
 * late or unknown event changes nothing and is not an error. *changed (may be
 * NULL) tells whether a row moved. Returns 0 or an ERR_* code.
 */
int outbound_call_event(struct db *db, struct arena *a, const char *call_sid,
			const char *call_status, int duration, const char *error_code,
			const char *error_message, bool *changed);
/* Register callevents.c's statements (both the API and the worker call it). */
void outbound_events_register(void);

/* Register the outbound module's statements and routes (src/outbound/). */
void outbound_register(void);
/* Register the webhook module's statements (src/webhooks/). */
void webhooks_register(void);

#endif
