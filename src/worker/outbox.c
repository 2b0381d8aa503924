/*
 * outbox.c - the WhatsApp outbox sender (DESIGN §8 "Outbound").
 *
 * A round claims up to `batch` sendable rows in one autocommitted UPDATE
 * (FOR UPDATE SKIP LOCKED, status sending, attempts + 1, a lease), sends each
 * through the Graph API with its account's token outside any transaction,
 * and records the outcome with one conditional statement per row:
 *
 *   sent       wa_outbox sent; messages.wamid recorded, status sent;
 *   transient  back to queued after base * 2^(attempt-1) +-25 % (capped), or
 *              failed once max_attempts is reached;
 *   permanent  (4xx) failed, Meta's error in messages.error and last_error.
 *
 * Order per contact: a row is sendable only when no earlier row of its
 * contact is queued or sending, so one round sends at most one message per
 * contact, and a contact's next message waits until the previous one is
 * sent or has failed for good (a failed message does not hold the queue).
 *
 * Crash safety is at-least-once: a row whose worker died stays `sending`
 * until its lease expires, then wa_outbox_rescue() queues it again. If that
 * worker died after Meta accepted the message but before the wamid was
 * written (or a request timed out after it was sent), the message goes out
 * twice; the window is one Graph request plus one UPDATE.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "dialflow/queue.h"
#include "dialflow/whatsapp.h"
#include "worker_internal.h"

#define DEFAULT_RETRY_CAP_MS (300 * 1000)
#define LAST_ERROR_MAX	     1900

static const db_stmt_t stmts[] = {
    /* The head of each contact's queue, due, not locked by another worker. */
    {"wa_outbox_claim",
     "WITH c AS (UPDATE wa_outbox o SET status = 'sending', attempts = o.attempts + 1, "
     "locked_by = $1, locked_until = now() + make_interval(secs => $3::integer), "
     "updated_at = now() "
     "WHERE o.id IN (SELECT q.id FROM wa_outbox q "
     "WHERE q.status = 'queued' AND q.next_attempt_at <= now() "
     "AND NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.contact_id = q.contact_id "
     "AND e.id < q.id AND e.status IN ('queued', 'sending')) "
     "ORDER BY q.next_attempt_at, q.id LIMIT $2::integer FOR UPDATE SKIP LOCKED) "
     "AND o.status = 'queued' "
     "RETURNING o.id, o.business_id, o.contact_id, o.message_id, o.payload, o.attempts, "
     "o.max_attempts) "
     "SELECT c.id, c.business_id, c.message_id, c.payload::text, c.attempts, c.max_attempts, "
     "k.wa_id, a.phone_number_id, a.access_token "
     "FROM c JOIN contacts k ON k.id = c.contact_id AND k.business_id = c.business_id "
     "LEFT JOIN whatsapp_accounts a ON a.business_id = c.business_id ORDER BY c.id"},
    /* Sent: also when a rescue put it back meanwhile (it need not go out again). */
    {"wa_outbox_sent",
     "WITH o AS (UPDATE wa_outbox SET status = 'sent', sent_at = now(), locked_by = NULL, "
     "locked_until = NULL, last_error = NULL, updated_at = now() "
     "WHERE id = $1::bigint AND status IN ('queued', 'sending') RETURNING message_id) "
     "UPDATE messages m SET wamid = coalesce(m.wamid, $2), "
     "status = CASE WHEN m.status = 'queued' THEN 'sent' ELSE m.status END, "
     "sent_at = coalesce(m.sent_at, now()) FROM o WHERE m.id = o.message_id RETURNING m.id"},
    {"wa_outbox_retry",
     "UPDATE wa_outbox SET status = 'queued', "
     "next_attempt_at = now() + make_interval(secs => $3::double precision), "
     "locked_by = NULL, locked_until = NULL, last_error = $4, updated_at = now() "
     "WHERE id = $1::bigint AND locked_by = $2 AND status = 'sending'"},
    {"wa_outbox_fail",
     "WITH o AS (UPDATE wa_outbox SET status = 'failed', locked_by = NULL, "
     "locked_until = NULL, last_error = $3, updated_at = now() "
     "WHERE id = $1::bigint AND locked_by = $2 AND status = 'sending' RETURNING message_id) "
     "UPDATE messages m SET status = 'failed', error = $4::jsonb, failed_at = now() "
     "FROM o WHERE m.id = o.message_id AND m.status = 'queued' RETURNING m.id"},
    /* Claimed, never started (stopping, or the lease is running out): the attempt is undone. */
    {"wa_outbox_release",
     "UPDATE wa_outbox SET status = 'queued', attempts = greatest(attempts - 1, 0), "
     "locked_by = NULL, locked_until = NULL, updated_at = now() "
     "WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND status = 'sending'"},
    /* When the next queued row falls due (the backoff of a retry), in ms from now. */
    {"wa_outbox_next_due",
     "SELECT greatest(0, ceil(extract(epoch FROM q.next_attempt_at - now()) * 1000))::bigint "
     "FROM wa_outbox q WHERE q.status = 'queued' "
     "AND NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.contact_id = q.contact_id "
     "AND e.id < q.id AND e.status IN ('queued', 'sending')) "
     "ORDER BY q.next_attempt_at LIMIT 1"},
    {"wa_outbox_rescue",
     "WITH r AS (UPDATE wa_outbox SET "
     "status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, "
     "next_attempt_at = now(), locked_by = NULL, locked_until = NULL, updated_at = now(), "
     "last_error = CASE WHEN attempts >= max_attempts "
     "THEN 'worker_lost: the lease of the last attempt expired' "
     "ELSE 'worker_lost: the lease expired; sent again (it may arrive twice)' END "
     "WHERE status = 'sending' AND locked_until < now() RETURNING id, status, message_id), "
     "f AS (UPDATE messages m SET status = 'failed', failed_at = now(), "
     "error = '{\"class\":\"worker_lost\"}'::jsonb FROM r "
     "WHERE m.id = r.message_id AND r.status = 'failed' AND m.status = 'queued' "
     "RETURNING m.id) "
     "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM f)"},
};

/* One claimed row; strings live in the claim's result (arena). */
typedef struct outbox_row {
	int64_t id;
	int64_t business_id;
	int64_t message_id;
	const char *payload;
	int attempts;
	int max_attempts;
	const char *wa_id;
	const char *phone_number_id; /* NULL: the business has no account */
	const char *access_token;
} outbox_row_t;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A compact text of the error for last_error (bounded). */
static const char *error_text(arena_t *a, const json_t *err)
{
	size_t len = 0;
	char *s = err ? json_dump_arena(a, err, &len) : NULL;

	if (s == NULL)
		return "error";
	if (len > LAST_ERROR_MAX)
		s[LAST_ERROR_MAX] = '\0';
	return s;
}

static int record_failure(db_t *db, arena_t *a, const wa_outbox_opts_t *o, const outbox_row_t *r,
			  const wa_send_result_t *res, bool permanent)
{
	json_t *err = json_arena(a, wa_send_error_json(res));
	const char *text = error_text(a, err);
	const char *id = db_i64s(a, r->id);
	PGresult *q;
	int rc = 0;

	if (!permanent && r->attempts < r->max_attempts) {
		int cap = o->retry_cap_ms > 0 ? o->retry_cap_ms : DEFAULT_RETRY_CAP_MS;
		double delay = queue_backoff_s(r->attempts, o->retry_base_ms / 1000.0, cap / 1000.0,
					       (double)random() / ((double)RAND_MAX + 1.0));
		char secs[32];

		snprintf(secs, sizeof(secs), "%.3f", delay);
		q = DB_EXEC(db, a, &rc, "wa_outbox_retry", id, o->owner, secs, text);
		log_info("whatsapp", "outbox row=%lld attempt=%d/%d retry_in_s=%s",
			 (long long)r->id, r->attempts, r->max_attempts, secs);
		return q == NULL ? rc : 0;
	}
	q = DB_EXEC(db, a, &rc, "wa_outbox_fail", id, o->owner, text, text);
	if (q == NULL)
		return rc;
	log_warn("whatsapp",
		 "outbox row=%lld message=%lld failed for good after %d attempt(s) "
		 "class=%s code=%lld",
		 (long long)r->id, (long long)r->message_id, r->attempts,
		 res->why[0] ? res->why : "-", res->err_code);
	return 0;
}

/* Send one row and record what happened. Returns 0 or the ERR_* of the recording. */
static int send_row(db_t *db, arena_t *a, wa_graph_t *g, const wa_outbox_opts_t *o,
		    const outbox_row_t *r)
{
	wa_send_result_t res;
	json_t *payload = NULL;
	PGresult *q;
	int rc = 0, out;

	if (r->phone_number_id == NULL || r->access_token == NULL || r->access_token[0] == '\0') {
		/* not configured (yet): worth retrying, an owner may be setting it up */
		memset(&res, 0, sizeof(res));
		snprintf(res.why, sizeof(res.why), "no_account");
		snprintf(res.err_message, sizeof(res.err_message),
			 "the business has no WhatsApp account with an access token");
		return record_failure(db, a, o, r, &res, false);
	}
	payload = json_arena(a, json_loads(r->payload, 0, NULL));
	out = wa_graph_send(g, r->phone_number_id, r->access_token, r->wa_id, payload, &res);
	if (out == WA_SEND_OK) {
		q = DB_EXEC(db, a, &rc, "wa_outbox_sent", db_i64s(a, r->id), res.wamid);
		if (q == NULL)
			log_error("whatsapp",
				  "outbox row=%lld was sent but not recorded (%s): it is sent "
				  "again after its lease",
				  (long long)r->id, err_code_name(rc));
		return q == NULL ? rc : 0;
	}
	return record_failure(db, a, o, r, &res, out == WA_SEND_PERMANENT);
}

/* Give rows [from, n) back, with their attempt undone. */
static void release(db_t *db, arena_t *a, const char *owner, const outbox_row_t *rows, int from,
		    int n)
{
	const char *ids = "";
	int err;

	if (from >= n)
		return;
	for (int i = from; i < n; i++)
		ids = arena_sprintf(a, "%s%s%lld", ids, i > from ? "," : "", (long long)rows[i].id);
	(void)DB_EXEC(db, a, &err, "wa_outbox_release", arena_sprintf(a, "{%s}", ids), owner);
}

int wa_outbox_run_batch(db_t *db, arena_t *a, wa_graph_t *g, const wa_outbox_opts_t *o,
			const volatile sig_atomic_t *stop, int *claimed)
{
	outbox_row_t *rows;
	int64_t t0 = mono_ms();
	PGresult *r;
	int n, rc = 0, i;

	if (claimed != NULL)
		*claimed = 0;
	r = DB_EXEC(db, a, &rc, "wa_outbox_claim", o->owner, db_i64s(a, o->batch),
		    db_i64s(a, o->lease_s));
	if (r == NULL)
		return rc;
	n = PQntuples(r);
	if (claimed != NULL)
		*claimed = n;
	if (n == 0)
		return 0;
	rows = arena_calloc(a, (size_t)n, sizeof(*rows));
	for (i = 0; i < n; i++) {
		rows[i].id = db_i64(r, i, 0);
		rows[i].business_id = db_i64(r, i, 1);
		rows[i].message_id = db_i64(r, i, 2);
		rows[i].payload = db_str(r, i, 3);
		rows[i].attempts = (int)db_i64(r, i, 4);
		rows[i].max_attempts = (int)db_i64(r, i, 5);
		rows[i].wa_id = db_str(r, i, 6);
		rows[i].phone_number_id = db_str(r, i, 7);
		rows[i].access_token = db_str(r, i, 8);
	}
	for (i = 0; i < n; i++) {
		/* never send on a lease about to expire: another worker may take the row */
		if ((stop != NULL && *stop) || mono_ms() - t0 > (int64_t)o->lease_s * 500)
			break;
		rc = send_row(db, a, g, o, &rows[i]);
		if (rc == ERR_UNAVAIL)
			break; /* the rest stays `sending` until the lease: rescued then */
	}
	if (i < n && rc != ERR_UNAVAIL)
		release(db, a, o->owner, rows, i, n);
	return 0;
}

int wa_outbox_rescue(db_t *db, arena_t *a, int *n)
{
	PGresult *r;
	int rc = 0;

	if (n != NULL)
		*n = 0;
	r = db_exec(db, a, "wa_outbox_rescue", 0, NULL, &rc);
	if (r == NULL)
		return rc;
	if (db_i64(r, 0, 0) > 0)
		log_warn("whatsapp", "outbox rows rescued from dead workers: %lld (failed: %lld)",
			 (long long)db_i64(r, 0, 0), (long long)db_i64(r, 0, 1));
	if (n != NULL)
		*n = (int)db_i64(r, 0, 0);
	return 0;
}

/* --- the worker's side (worker_internal.h) -------------------------------- */

void outbox_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	wa_sweep_register();
	wa_outbox_register(); /* the sweeps enqueue their notices */
}

void wa_worker_register(void)
{
	outbox_register();
}

int outbox_init(worker_t *w)
{
	const config_t *c = w->cfg;

	w->want_outbox = true;
	if (c->whatsapp_graph_url == NULL || c->whatsapp_graph_url[0] == '\0') {
		log_info(WORKER_COMPONENT, "no DIALFLOW_WHATSAPP_GRAPH_URL: the WhatsApp outbox is "
					   "left to other workers");
		return 0;
	}
	w->wa_graph = wa_graph_new(c->whatsapp_graph_url,
				   c->whatsapp_graph_version ? c->whatsapp_graph_version : "v21.0",
				   c->wa_ca_file);
	if (w->wa_graph == NULL) {
		log_error(WORKER_COMPONENT, "the WhatsApp Graph client could not be set up "
					    "(DIALFLOW_WHATSAPP_GRAPH_*): the outbox is not sent");
		return -1;
	}
	return 0;
}

void outbox_free(worker_t *w)
{
	wa_graph_free(w->wa_graph);
	w->wa_graph = NULL;
}

void outbox_drain(worker_t *w)
{
	const config_t *c = w->cfg;
	wa_outbox_opts_t o = {
	    .owner = w->owner,
	    .batch = c->outbox_batch > 0 ? c->outbox_batch : 50,
	    .lease_s = c->outbox_lease_s > 0 ? c->outbox_lease_s : 60,
	    .retry_base_ms = c->outbox_retry_base_ms > 0 ? c->outbox_retry_base_ms : 2000,
	    .retry_cap_ms = DEFAULT_RETRY_CAP_MS,
	};
	int claimed = 0, err;
	PGresult *r;

	if (w->wa_graph == NULL || worker_stopping)
		return;
	if (w->outbox_due > 0 && worker_now_ms() >= w->outbox_due)
		w->want_outbox = true;
	if (!w->want_outbox)
		return;
	w->want_outbox = false;
	w->outbox_due = 0;
	/* a round sends one message per contact: go again while there was work */
	if (wa_outbox_run_batch(w->db, w->arena, w->wa_graph, &o, &worker_stopping, &claimed) == 0)
		w->want_outbox = claimed > 0;
	if (!w->want_outbox) {
		/* nothing sendable now: wake up when a retry's backoff ends (NOTIFY covers new
		 * rows) */
		r = db_exec(w->db, w->arena, "wa_outbox_next_due", 0, NULL, &err);
		/* due now yet not claimed: blocked behind another worker's send; the poll covers it
		 */
		if (r != NULL && PQntuples(r) == 1 && !db_isnull(r, 0, 0) && db_i64(r, 0, 0) > 0)
			w->outbox_due = worker_now_ms() + db_i64(r, 0, 0) + 5;
	}
}

void outbox_sweep(worker_t *w)
{
	const config_t *c = w->cfg;

	if (w->wa_graph != NULL)
		(void)wa_outbox_rescue(w->db, w->arena, NULL);
	if (c->flow_idle_timeout_s > 0)
		(void)wa_sweep_idle(w->db, w->arena, c->flow_idle_timeout_s, 100, NULL);
	if (c->handover_notice_s > 0 && c->handover_notice_text != NULL &&
	    c->handover_notice_text[0] != '\0')
		(void)wa_sweep_handover(w->db, w->arena, c->handover_notice_s,
					c->handover_notice_text, 100, NULL);
}
