/*
 * queue.h - the generic background job queue on the background_jobs table.
 *
 * Producers enqueue inside their own transaction (the job exists only if the
 * change that caused it commits) and wake the workers with NOTIFY. Workers
 * claim batches with FOR UPDATE SKIP LOCKED under a lease (locked_until); a
 * worker that dies leaves its jobs to be rescued once the lease expires.
 * Failures retry with exponential backoff and jitter; after max_attempts a job
 * becomes `dead` and stays for inspection.
 */
#ifndef DIALFLOW_QUEUE_H
#define DIALFLOW_QUEUE_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/db.h"

/* The NOTIFY channel every worker listens on; payloads are hints ("jobs", "run:42", ...). */
#define QUEUE_CHANNEL "dialflow_worker"

/* Retry delays of a failed job: QUEUE_BACKOFF_BASE_S * 2^(attempt-1), capped. */
#define QUEUE_BACKOFF_BASE_S 2.0
#define QUEUE_BACKOFF_CAP_S  3600.0

/*
 * Enqueue a job of `kind` (e.g. "create_lead_from_call") in the caller's
 * transaction. payload is borrowed (may be NULL). unique_key (may be NULL):
 * at most one queued/running job per key; a duplicate is not an error (returns
 * 0 and enqueues nothing). business_id 0 = none; max_attempts <= 0 takes the
 * table default (5). Returns 0 or an ERR_* code.
 */
int queue_enqueue(db_t *db, arena_t *a, const char *kind, int64_t business_id,
		  const json_t *payload, const char *unique_key, int max_attempts);

/*
 * Register the queue's prepared statements (before the first connect) and
 * its built-in handlers: "noop" (does nothing; benchmarks, smoke tests) and
 * "create_lead_from_call".
 */
void queue_register(void);

/*
 * Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped,
 * with +-25 % jitter from `rnd` in [0, 1). Pure, for tests.
 */
double queue_backoff_s(int attempt, double base_s, double cap_s, double rnd);

/* ---- worker side -------------------------------------------------------- */

/* One claimed job, valid until the arena it was claimed into is reset. */
typedef struct queue_job {
	int64_t id;
	const char *kind;
	int64_t business_id; /* 0 when none                          */
	json_t *payload;     /* an object; owned by the claim's arena */
	int attempts;	     /* including this one                   */
	int max_attempts;
} queue_job_t;

/*
 * A job handler. It runs outside any transaction and opens its own; it must
 * be idempotent, since a job runs again when its worker dies before marking
 * it done. Returns 0 (done) or negative (failed: retried with backoff, dead
 * after max_attempts), with *why (static or arena text, no secrets) saying why.
 */
typedef int (*queue_handler_fn)(db_t *db, arena_t *a, const queue_job_t *job, const char **why);

/* Route jobs of `kind` to fn (replaces an earlier handler). Returns 0, or -1 when the table is
 * full. */
int queue_register_handler(const char *kind, queue_handler_fn fn);

/*
 * Claim up to `batch` due jobs for `worker` under a lease of lease_s seconds
 * (FOR UPDATE SKIP LOCKED; status running, attempts + 1), autocommitted.
 * *jobs (arena memory) receives *n jobs. Returns 0 or an ERR_* code.
 */
int queue_claim(db_t *db, arena_t *a, const char *worker, int batch, int lease_s,
		queue_job_t **jobs, int *n);
/* Mark jobs done, only while `worker` still holds them. Returns 0 or an ERR_* code. */
int queue_complete(db_t *db, arena_t *a, const char *worker, const int64_t *ids, int n);
/*
 * Record a failure of a job `worker` holds: queued again after the backoff
 * of its attempt, or `dead` once attempts reach max_attempts; last_error
 * keeps `error`. Returns 0 or an ERR_* code.
 */
int queue_fail(db_t *db, arena_t *a, const char *worker, const queue_job_t *job, const char *error);
/* Give jobs `worker` claimed but never started back to the queue, with the attempt undone. */
int queue_release(db_t *db, arena_t *a, const char *worker, const int64_t *ids, int n);
/*
 * Rescue the jobs of dead workers: running jobs whose lease expired go back
 * to queued (or `dead` when they used their last attempt). *rescued (may be
 * NULL) gets how many moved. Returns 0 or an ERR_* code.
 */
int queue_rescue(db_t *db, arena_t *a, int *rescued);

/*
 * One round of the worker's queue loop: claim a batch, run each job's
 * handler, then mark the batch done / failed. Jobs not started within half
 * their lease, or once *stop becomes non-zero (may be NULL), are released
 * untouched. *claimed (may be NULL) gets the batch size. Returns 0 or an
 * ERR_* code of the claim.
 */
int queue_run_batch(db_t *db, arena_t *a, const char *worker, int batch, int lease_s,
		    const volatile sig_atomic_t *stop, int *claimed);

/*
 * The create_lead_from_call handler: reads the call from call_log by the
 * payload's call_sid and upserts the lead by (business_id, phone_e164)
 * with source 'call' and last_call_at; links call_log.lead_id when unset.
 * Idempotent.
 */
int queue_lead_from_call(db_t *db, arena_t *a, const queue_job_t *job, const char **why);

#endif
