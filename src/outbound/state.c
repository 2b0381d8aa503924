/* state.c - the run and job state machines as pure functions (see outbound.h). */
#include <string.h>

#include "dialflow/outbound.h"

static const char *run_names[] = {"pending",   "running", "completed",
				  "cancelled", "stopped", "failed"};
static const char *job_names[] = {"queued",    "dialing", "calling",
				  "completed", "failed",  "cancelled"};

#define NRUN (int)(sizeof(run_names) / sizeof(run_names[0]))
#define NJOB (int)(sizeof(job_names) / sizeof(job_names[0]))

outbound_run_status_t outbound_run_status_parse(const char *s)
{
	for (int i = 0; s != NULL && i < NRUN; i++)
		if (strcmp(s, run_names[i]) == 0)
			return (outbound_run_status_t)i;
	return RUN_INVALID;
}

const char *outbound_run_status_name(outbound_run_status_t s)
{
	return s >= 0 && (int)s < NRUN ? run_names[s] : "invalid";
}

outbound_job_status_t outbound_job_status_parse(const char *s)
{
	for (int i = 0; s != NULL && i < NJOB; i++)
		if (strcmp(s, job_names[i]) == 0)
			return (outbound_job_status_t)i;
	return JOB_INVALID;
}

const char *outbound_job_status_name(outbound_job_status_t s)
{
	return s >= 0 && (int)s < NJOB ? job_names[s] : "invalid";
}

bool outbound_run_is_terminal(outbound_run_status_t s)
{
	return s == RUN_COMPLETED || s == RUN_CANCELLED || s == RUN_STOPPED || s == RUN_FAILED;
}

bool outbound_job_is_terminal(outbound_job_status_t s)
{
	return s == JOB_COMPLETED || s == JOB_FAILED || s == JOB_CANCELLED;
}

bool outbound_job_in_flight(outbound_job_status_t s)
{
	return s == JOB_DIALING || s == JOB_CALLING;
}

bool outbound_run_transition_ok(outbound_run_status_t from, outbound_run_status_t to)
{
	if (from == RUN_INVALID || to == RUN_INVALID || outbound_run_is_terminal(from))
		return false;
	if (from == RUN_PENDING)
		return to == RUN_RUNNING || outbound_run_is_terminal(to);
	/* running */
	return outbound_run_is_terminal(to);
}

bool outbound_job_transition_ok(outbound_job_status_t from, outbound_job_status_t to)
{
	if (from == JOB_INVALID || to == JOB_INVALID || outbound_job_is_terminal(from))
		return false;
	if (to == JOB_CANCELLED)
		return true;
	switch (from) {
	case JOB_QUEUED:
		return to == JOB_DIALING || to == JOB_FAILED;
	case JOB_DIALING:
		/* back to queued only when the provider never accepted the call */
		return to == JOB_CALLING || to == JOB_QUEUED || to == JOB_COMPLETED ||
		       to == JOB_FAILED;
	case JOB_CALLING:
		/* back to queued only for a retry of busy / no-answer */
		return to == JOB_COMPLETED || to == JOB_FAILED || to == JOB_QUEUED;
	default:
		return false;
	}
}

int outbound_job_for_call_status(const char *call_status, outbound_job_status_t *to, bool *final,
				 bool *retryable)
{
	static const struct {
		const char *status;
		outbound_job_status_t job;
		bool final, retryable;
	} map[] = {
	    {"queued", JOB_CALLING, false, false},   {"initiated", JOB_CALLING, false, false},
	    {"ringing", JOB_CALLING, false, false},  {"in-progress", JOB_CALLING, false, false},
	    {"answered", JOB_CALLING, false, false}, {"completed", JOB_COMPLETED, true, false},
	    {"busy", JOB_FAILED, true, true},	     {"no-answer", JOB_FAILED, true, true},
	    {"failed", JOB_FAILED, true, false},     {"canceled", JOB_CANCELLED, true, false},
	};

	for (size_t i = 0; call_status != NULL && i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(call_status, map[i].status) == 0) {
			*to = map[i].job;
			*final = map[i].final;
			*retryable = map[i].retryable;
			return 0;
		}
	}
	return -1;
}
