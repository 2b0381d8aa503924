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
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/db.h"

/* The NOTIFY channel every worker listens on; payloads are hints ("jobs", "run:42", ...). */
#define QUEUE_CHANNEL "dialflow_worker"

/*
 * Enqueue a job of `kind` (e.g. "create_lead_from_call") in the caller's
 * transaction. payload is borrowed (may be NULL). unique_key (may be NULL):
 * at most one queued/running job per key; a duplicate is not an error (returns
 * 0 and enqueues nothing). Returns 0 or an ERR_* code.
 */
int queue_enqueue(db_t *db, arena_t *a, const char *kind, int64_t business_id,
		  const json_t *payload, const char *unique_key, int max_attempts);

/* Register the queue's prepared statements (before the first connect). */
void queue_register(void);

/*
 * Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped,
 * with +-25 % jitter from `rnd` in [0, 1). Pure, for tests.
 */
double queue_backoff_s(int attempt, double base_s, double cap_s, double rnd);

#endif
