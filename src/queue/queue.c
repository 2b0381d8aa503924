/*
 * queue.c - the background job queue on background_jobs (see queue.h).
 *
 * Producer side: queue_enqueue() inserts in the caller's transaction, a
 * duplicate unique_key is absorbed by ON CONFLICT on the partial unique
 * index, and the NOTIFY rides the same transaction. Worker side: every state
 * change is one conditional UPDATE guarded by locked_by, so a worker whose
 * lease was rescued can no longer finish or fail a job that now belongs to
 * someone else.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "dialflow/queue.h"
#include "queue_internal.h"

#define MAX_HANDLERS	32
#define MAX_KIND	64
#define MAX_ERROR_LEN	1000
#define QUEUE_COMPONENT "queue"

static const db_stmt_t stmts[] = {
    {"queue_enqueue",
     "WITH ins AS (INSERT INTO background_jobs (kind, payload, business_id, max_attempts, "
     "unique_key) VALUES ($1, coalesce($2::jsonb, '{}'::jsonb), $3::bigint, "
     "coalesce($4::integer, 5), $5) "
     "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'running') "
     "DO NOTHING RETURNING id) "
     "SELECT id, pg_notify('" QUEUE_CHANNEL "', 'jobs') FROM ins"},
    {"queue_claim",
     "WITH c AS (SELECT id FROM background_jobs WHERE status = 'queued' AND run_at <= now() "
     "ORDER BY run_at, id LIMIT $3::integer FOR UPDATE SKIP LOCKED) "
     "UPDATE background_jobs j SET status = 'running', locked_by = $1, "
     "locked_until = now() + make_interval(secs => $2::integer), attempts = j.attempts + 1, "
     "updated_at = now() FROM c WHERE j.id = c.id "
     "RETURNING j.id, j.kind, j.payload::text, j.business_id, j.attempts, j.max_attempts"},
    {"queue_complete",
     "UPDATE background_jobs SET status = 'done', locked_until = NULL, finished_at = now(), "
     "updated_at = now() "
     "WHERE id = ANY ($2::bigint[]) AND locked_by = $1 AND status = 'running'"},
    /* attempts was counted at the claim; dead keeps locked_by for inspection */
    {"queue_fail",
     "UPDATE background_jobs SET "
     "status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, "
     "run_at = CASE WHEN attempts >= max_attempts THEN run_at "
     "ELSE now() + make_interval(secs => $3::double precision) END, "
     "locked_by = CASE WHEN attempts >= max_attempts THEN locked_by END, "
     "locked_until = NULL, last_error = $4, "
     "finished_at = CASE WHEN attempts >= max_attempts THEN now() END, updated_at = now() "
     "WHERE id = $2::bigint AND locked_by = $1 AND status = 'running' RETURNING status"},
    {"queue_release",
     "UPDATE background_jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), "
     "locked_by = NULL, locked_until = NULL, updated_at = now() "
     "WHERE id = ANY ($2::bigint[]) AND locked_by = $1 AND status = 'running'"},
    {"queue_rescue",
     "WITH e AS (SELECT id FROM background_jobs WHERE status = 'running' AND locked_until < now() "
     "ORDER BY locked_until LIMIT 500 FOR UPDATE SKIP LOCKED) "
     "UPDATE background_jobs j SET "
     "status = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END, "
     "last_error = 'lease expired: worker ' || coalesce(j.locked_by, '?') || "
     "' stopped before finishing the job', "
     "locked_by = CASE WHEN j.attempts >= j.max_attempts THEN j.locked_by END, "
     "locked_until = NULL, "
     "finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END, updated_at = now() "
     "FROM e WHERE j.id = e.id RETURNING j.id, j.status"},
};

static struct {
	char kind[MAX_KIND];
	queue_handler_fn fn;
} handlers[MAX_HANDLERS];
static int nhandlers;

static int noop_handler(db_t *db, arena_t *a, const queue_job_t *job, const char **why)
{
	(void)db;
	(void)a;
	(void)job;
	(void)why;
	return 0;
}

void queue_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	queue_lead_from_call_register();
	(void)queue_register_handler("noop", noop_handler);
	(void)queue_register_handler("create_lead_from_call", queue_lead_from_call);
}

int queue_register_handler(const char *kind, queue_handler_fn fn)
{
	int i;

	if (kind == NULL || strlen(kind) >= MAX_KIND || fn == NULL)
		return -1;
	for (i = 0; i < nhandlers; i++) {
		if (strcmp(handlers[i].kind, kind) == 0) {
			handlers[i].fn = fn;
			return 0;
		}
	}
	if (nhandlers >= MAX_HANDLERS)
		return -1;
	snprintf(handlers[nhandlers].kind, MAX_KIND, "%s", kind);
	handlers[nhandlers].fn = fn;
	nhandlers++;
	return 0;
}

static queue_handler_fn find_handler(const char *kind)
{
	for (int i = 0; i < nhandlers; i++)
		if (strcmp(handlers[i].kind, kind) == 0)
			return handlers[i].fn;
	return NULL;
}

double queue_backoff_s(int attempt, double base_s, double cap_s, double rnd)
{
	double d;

	if (attempt < 1)
		attempt = 1;
	if (rnd < 0.0)
		rnd = 0.0;
	if (rnd >= 1.0)
		rnd = 0.999999;
	/* 2^(attempt-1) overflows to inf long before attempt reaches INT_MAX: cap first */
	d = attempt > 62 ? cap_s : base_s * ldexp(1.0, attempt - 1);
	if (d > cap_s)
		d = cap_s;
	if (d < 0.0)
		d = 0.0;
	return d * (0.75 + 0.5 * rnd);
}

int queue_enqueue(db_t *db, arena_t *a, const char *kind, int64_t business_id,
		  const json_t *payload, const char *unique_key, int max_attempts)
{
	const char *body = NULL;
	size_t len;
	int err;

	if (payload != NULL)
		body = json_dump_arena(a, payload, &len);
	if (DB_EXEC(db, a, &err, "queue_enqueue", kind, body,
		    business_id > 0 ? db_i64s(a, business_id) : NULL,
		    max_attempts > 0 ? db_i64s(a, max_attempts) : NULL, unique_key) == NULL)
		return err;
	return 0;
}

/* "{1,2,3}": a bigint[] literal for ANY ($n::bigint[]). */
static const char *id_array(arena_t *a, const int64_t *ids, int n)
{
	size_t cap = (size_t)n * 21 + 3, len = 0;
	char *s = arena_alloc(a, cap);

	s[len++] = '{';
	for (int i = 0; i < n; i++)
		len +=
		    (size_t)snprintf(s + len, cap - len, "%s%lld", i ? "," : "", (long long)ids[i]);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

int queue_claim(db_t *db, arena_t *a, const char *worker, int batch, int lease_s,
		queue_job_t **jobs, int *n)
{
	PGresult *r;
	queue_job_t *out;
	int err, rows;

	*jobs = NULL;
	*n = 0;
	r = DB_EXEC(db, a, &err, "queue_claim", worker, db_i64s(a, lease_s), db_i64s(a, batch));
	if (r == NULL)
		return err;
	rows = PQntuples(r);
	if (rows == 0)
		return 0;
	out = arena_calloc(a, (size_t)rows, sizeof(*out));
	for (int i = 0; i < rows; i++) {
		const char *why = NULL;
		const char *text = db_str(r, i, 2);

		out[i].id = db_i64(r, i, 0);
		out[i].kind = db_str(r, i, 1);
		out[i].business_id = db_i64(r, i, 3);
		out[i].attempts = (int)db_i64(r, i, 4);
		out[i].max_attempts = (int)db_i64(r, i, 5);
		out[i].payload = json_decode_strict(a, text, strlen(text), &why);
		if (out[i].payload == NULL || !json_is_object(out[i].payload))
			out[i].payload = json_arena(a, json_object());
	}
	*jobs = out;
	*n = rows;
	return 0;
}

int queue_complete(db_t *db, arena_t *a, const char *worker, const int64_t *ids, int n)
{
	int err;

	if (n <= 0)
		return 0;
	if (DB_EXEC(db, a, &err, "queue_complete", worker, id_array(a, ids, n)) == NULL)
		return err;
	return 0;
}

int queue_release(db_t *db, arena_t *a, const char *worker, const int64_t *ids, int n)
{
	int err;

	if (n <= 0)
		return 0;
	if (DB_EXEC(db, a, &err, "queue_release", worker, id_array(a, ids, n)) == NULL)
		return err;
	return 0;
}

int queue_fail(db_t *db, arena_t *a, const char *worker, const queue_job_t *job, const char *error)
{
	double delay = queue_backoff_s(job->attempts, QUEUE_BACKOFF_BASE_S, QUEUE_BACKOFF_CAP_S,
				       (double)arc4random() / 4294967296.0);
	const char *e = error ? error : "failed";
	char *msg = arena_strndup(a, e, strnlen(e, MAX_ERROR_LEN));
	PGresult *r;
	int err;

	r = DB_EXEC(db, a, &err, "queue_fail", worker, db_i64s(a, job->id),
		    arena_sprintf(a, "%.3f", delay), msg);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 1 && strcmp(db_str(r, 0, 0), "dead") == 0)
		log_warn(QUEUE_COMPONENT, "job=%lld kind=%s dead after attempts=%d",
			 (long long)job->id, job->kind, job->attempts);
	else if (PQntuples(r) == 1)
		log_info(QUEUE_COMPONENT, "job=%lld kind=%s failed attempt=%d retry_in_s=%.1f",
			 (long long)job->id, job->kind, job->attempts, delay);
	return 0;
}

int queue_rescue(db_t *db, arena_t *a, int *rescued)
{
	PGresult *r;
	int err, dead = 0;

	if (rescued != NULL)
		*rescued = 0;
	r = DB_EXEC(db, a, &err, "queue_rescue");
	if (r == NULL)
		return err;
	for (int i = 0; i < PQntuples(r); i++)
		if (strcmp(db_str(r, i, 1), "dead") == 0)
			dead++;
	if (PQntuples(r) > 0)
		log_warn(QUEUE_COMPONENT, "rescued jobs=%d dead=%d (lease expired)", PQntuples(r),
			 dead);
	if (rescued != NULL)
		*rescued = PQntuples(r);
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int queue_run_batch(db_t *db, arena_t *a, const char *worker, int batch, int lease_s,
		    const volatile sig_atomic_t *stop, int *claimed)
{
	queue_job_t *jobs = NULL;
	int64_t *done, deadline;
	int n = 0, ndone = 0, i, rc;

	if (claimed != NULL)
		*claimed = 0;
	rc = queue_claim(db, a, worker, batch, lease_s, &jobs, &n);
	if (rc < 0 || n == 0)
		return rc;
	if (claimed != NULL)
		*claimed = n;
	/* never start a job whose lease may expire while it runs */
	deadline = mono_ms() + (int64_t)lease_s * 500;
	done = arena_calloc(a, (size_t)n, sizeof(*done));
	for (i = 0; i < n; i++) {
		const queue_job_t *job = &jobs[i];
		queue_handler_fn fn = find_handler(job->kind);
		const char *why = NULL;

		if ((stop != NULL && *stop) || mono_ms() >= deadline)
			break;
		if (fn == NULL) {
			(void)queue_fail(db, a, worker, job, "no handler for this kind");
			continue;
		}
		if (fn(db, a, job, &why) == 0) {
			done[ndone++] = job->id;
			continue;
		}
		/* a handler may fail with its transaction still open */
		db_rollback(db);
		(void)queue_fail(db, a, worker, job, why ? why : "handler failed");
	}
	if (i < n) {
		int64_t *rest = arena_calloc(a, (size_t)(n - i), sizeof(*rest));

		for (int k = i; k < n; k++)
			rest[k - i] = jobs[k].id;
		(void)queue_release(db, a, worker, rest, n - i);
	}
	/* If this fails the jobs stay leased and run again after the rescue: handlers are
	 * idempotent. */
	(void)queue_complete(db, a, worker, done, ndone);
	return 0;
}
