/*
 * runs.c - call runs through the API: create (one active run per business,
 * race-safe through the partial unique index), list, get, the jobs of a run,
 * the active run (with the stale-run stop of DESIGN §7), cancel and
 * force-cancel.
 *
 * A run's progress is always counted from its jobs (count(*) FILTER over the
 * (run_id, status) index), never kept in counters. The worker is told about
 * every change with NOTIFY on QUEUE_CHANNEL, delivered when the transaction
 * commits: "run:<id>" for a new or cancelled run, "force_cancel:<id>" when
 * live calls must be hung up.
 *
 * Decisions where API.md is silent:
 *   - cancel cancels the run's queued jobs at once (no new dial can start),
 *     and ends the run as `cancelled` right away when no call is live;
 *     otherwise the worker ends it when the live calls finish;
 *   - a run takes a snapshot of its script (runs.script), so editing or
 *     deleting a script never changes a run in progress;
 *   - a run whose leads are all do-not-call, or an empty list, is refused
 *     (400): a run with nothing to dial would only confuse the active view;
 *   - the stale stop also fails `dialing` jobs that never got a call id
 *     (error_code worker_lost): with no worker alive they can never finish,
 *     and would hold a concurrency slot forever.
 */
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/ratelimit.h"
#include "dialflow/handlers.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/strnum.h"
#include "outbound_api.h"

#define MAX_LEAD_IDS 5000

/* $1 business, $2 the stale age in seconds. */
#define RUN_COLS                                                                                   \
	"r.id, r.status, r.concurrency, c.total, c.queued, c.in_progress, c.completed, c.failed, " \
	"c.cancelled, r.cancel_requested, (r.status IN ('pending', 'running') AND "                \
	"coalesce(r.last_heartbeat_at, r.created_at) < now() - make_interval(secs => $2::int)), "  \
	"r.locked_by_worker, to_char(r.last_heartbeat_at" OB_UTC ", r.created_by, "                \
	"to_char(r.created_at" OB_UTC ", to_char(r.started_at" OB_UTC ", "                         \
	"to_char(r.ended_at" OB_UTC ", r.max_attempts, r.retry_delay_s, r.script_id, "             \
	"r.force_cancel, r.last_error, to_char(r.updated_at" OB_UTC ", "                           \
	"extract(epoch FROM now() - coalesce(r.last_heartbeat_at, r.created_at))::bigint, "        \
	"c.humans_reached"
enum {
	RC_ID,
	RC_STATUS,
	RC_CONCURRENCY,
	RC_TOTAL,
	RC_QUEUED,
	RC_IN_PROGRESS,
	RC_COMPLETED,
	RC_FAILED,
	RC_CANCELLED,
	RC_CANCEL_REQUESTED,
	RC_STALE,
	RC_LOCKED_BY,
	RC_HEARTBEAT,
	RC_CREATED_BY,
	RC_CREATED_AT,
	RC_STARTED_AT,
	RC_ENDED_AT,
	RC_MAX_ATTEMPTS,
	RC_RETRY_DELAY,
	RC_SCRIPT_ID,
	RC_FORCE_CANCEL,
	RC_LAST_ERROR,
	RC_UPDATED_AT,
	RC_HEARTBEAT_AGE,
	RC_HUMANS_REACHED,
	RC_NCOLS
};

/* The progress of run r, derived from its jobs. */
#define RUN_COUNTS                                                                                 \
	" CROSS JOIN LATERAL (SELECT count(*) AS total, "                                          \
	"count(*) FILTER (WHERE j.status = 'queued') AS queued, "                                  \
	"count(*) FILTER (WHERE j.status IN ('dialing', 'calling')) AS in_progress, "              \
	"count(*) FILTER (WHERE j.status = 'completed') AS completed, "                            \
	"count(*) FILTER (WHERE j.status = 'failed') AS failed, "                                  \
	"count(*) FILTER (WHERE j.status = 'cancelled') AS cancelled, "                            \
	"count(*) FILTER (WHERE j.answered_by = 'human') AS humans_reached "                       \
	"FROM outbound_call_jobs j WHERE j.run_id = r.id AND j.business_id = r.business_id) c"

#define ACTIVE "('pending', 'running')"

static const db_stmt_t stmts[] = {
    {"ob_run_get", "SELECT " RUN_COLS " FROM outbound_call_runs r" RUN_COUNTS
		   " WHERE r.business_id = $1::bigint AND r.id = $3::bigint"},
    {"ob_run_list",
     "SELECT " RUN_COLS ", (SELECT count(*) FROM outbound_call_runs WHERE business_id = "
     "$1::bigint AND ($3::text IS NULL OR status = $3)) "
     "FROM (SELECT * FROM outbound_call_runs WHERE business_id = $1::bigint AND "
     "($3::text IS NULL OR status = $3) ORDER BY id DESC LIMIT $4::bigint OFFSET $5::bigint) "
     "r" RUN_COUNTS " ORDER BY r.id DESC"},
    {"ob_run_count", "SELECT count(*) FROM outbound_call_runs WHERE business_id = $1::bigint "
		     "AND ($2::text IS NULL OR status = $2)"},
    {"ob_run_active",
     "SELECT " RUN_COLS " FROM outbound_call_runs r" RUN_COUNTS
     " WHERE r.business_id = $1::bigint AND r.status IN " ACTIVE " ORDER BY r.id DESC LIMIT 1"},
    /* The partial unique index outbound_call_runs_one_active is the arbiter: a
     * concurrent creation waits for the other transaction, then does nothing. */
    {"ob_run_insert",
     "INSERT INTO outbound_call_runs (business_id, concurrency, max_attempts, retry_delay_s, "
     "script_id, script, created_by) VALUES ($1::bigint, $2::int, $3::int, $4::int, "
     "$5::bigint, $6::jsonb, $7::bigint) "
     "ON CONFLICT (business_id) WHERE status IN " ACTIVE " DO NOTHING RETURNING id"},
    {"ob_run_active_id", "SELECT id FROM outbound_call_runs WHERE business_id = $1::bigint "
			 "AND status IN " ACTIVE},
    {"ob_leads_resolve",
     "SELECT count(*) FILTER (WHERE l.id IS NOT NULL AND NOT l.do_not_call), "
     "count(*) FILTER (WHERE l.do_not_call), "
     "coalesce(array_agg(x.id ORDER BY x.id) FILTER (WHERE l.id IS NULL), '{}') "
     "FROM (SELECT DISTINCT u.id FROM unnest($2::bigint[]) AS u(id)) x "
     "LEFT JOIN leads l ON l.id = x.id AND l.business_id = $1::bigint"},
    {"ob_leads_owners", "SELECT x.id, rb.found, rb.business_id FROM unnest($1::bigint[]) "
			"AS x(id) CROSS JOIN LATERAL app_resource_business('lead', x.id) rb "
			"ORDER BY x.id"},
    {"ob_list_get", "SELECT id FROM lead_lists WHERE id = $2::bigint AND business_id = "
		    "$1::bigint"},
    {"ob_list_counts", "SELECT count(*) FILTER (WHERE NOT l.do_not_call), "
		       "count(*) FILTER (WHERE l.do_not_call) FROM lead_list_members m "
		       "JOIN leads l ON l.id = m.lead_id AND l.business_id = m.business_id "
		       "WHERE m.list_id = $2::bigint AND m.business_id = $1::bigint"},
    /* KEY SHARE: a concurrent DELETE of the script waits for this run's commit. */
    {"ob_script_snapshot",
     "SELECT json_build_object('id', id, 'name', name, 'kind', kind, 'text', text, "
     "'language', language, 'voice', voice, 'bridge_to', bridge_to, 'options', options, "
     "'voicemail', voicemail)::text FROM call_scripts WHERE id = $2::bigint "
     "AND business_id = $1::bigint FOR KEY SHARE"},
    {"ob_jobs_insert_ids",
     "WITH ins AS (INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone) "
     "SELECT $1::bigint, $2::bigint, l.id, l.phone_e164 "
     "FROM unnest($3::bigint[]) WITH ORDINALITY AS x(id, ord) "
     "JOIN leads l ON l.id = x.id AND l.business_id = $2::bigint "
     "WHERE NOT l.do_not_call ORDER BY x.ord "
     "ON CONFLICT (run_id, lead_id) DO NOTHING RETURNING 1) SELECT count(*) FROM ins"},
    {"ob_jobs_insert_list",
     "WITH ins AS (INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone) "
     "SELECT $1::bigint, $2::bigint, l.id, l.phone_e164 FROM lead_list_members m "
     "JOIN leads l ON l.id = m.lead_id AND l.business_id = $2::bigint "
     "WHERE m.list_id = $3::bigint AND m.business_id = $2::bigint AND NOT l.do_not_call "
     "ORDER BY l.id ON CONFLICT (run_id, lead_id) DO NOTHING RETURNING 1) "
     "SELECT count(*) FROM ins"},
    {"ob_run_lock", "SELECT status FROM outbound_call_runs WHERE id = $2::bigint "
		    "AND business_id = $1::bigint FOR UPDATE"},
    {"ob_run_exists", "SELECT 1 FROM outbound_call_runs WHERE id = $2::bigint "
		      "AND business_id = $1::bigint"},
    {"ob_run_cancel_flag", "UPDATE outbound_call_runs SET cancel_requested = true, "
			   "updated_at = now() WHERE id = $2::bigint AND business_id = "
			   "$1::bigint AND status IN " ACTIVE},
    {"ob_jobs_cancel_queued", "UPDATE outbound_call_jobs SET status = 'cancelled', "
			      "error_message = $3, completed_at = now(), updated_at = now() "
			      "WHERE run_id = $2::bigint AND business_id = $1::bigint "
			      "AND status = 'queued'"},
    {"ob_run_finish_cancel",
     "UPDATE outbound_call_runs SET status = 'cancelled', ended_at = now(), updated_at = now() "
     "WHERE id = $2::bigint AND business_id = $1::bigint AND status IN " ACTIVE
     " AND NOT EXISTS (SELECT 1 FROM outbound_call_jobs j WHERE j.run_id = $2::bigint AND "
     "j.business_id = $1::bigint AND j.status IN ('queued', 'dialing', 'calling'))"},
    {"ob_run_force", "UPDATE outbound_call_runs SET status = 'cancelled', force_cancel = true, "
		     "cancel_requested = true, ended_at = now(), updated_at = now() "
		     "WHERE id = $2::bigint AND business_id = $1::bigint AND status IN " ACTIVE},
    {"ob_jobs_hangup", "UPDATE outbound_call_jobs SET hangup_requested_at = "
		       "coalesce(hangup_requested_at, now()), updated_at = now() "
		       "WHERE run_id = $2::bigint AND business_id = $1::bigint "
		       "AND status IN ('dialing', 'calling')"},
    {"ob_jobs_list",
     "SELECT j.id, j.lead_id, j.phone, l.name, j.status, j.call_sid, j.attempts, j.error_code, "
     "j.error_message, to_char(j.created_at" OB_UTC ", to_char(j.dial_started_at" OB_UTC ", "
     "to_char(j.completed_at" OB_UTC ", j.call_status, to_char(j.next_attempt_at" OB_UTC ", "
     "to_char(j.hangup_requested_at" OB_UTC ", count(*) OVER (), j.digits, j.answered_by "
     "FROM outbound_call_jobs j "
     "LEFT JOIN leads l ON l.id = j.lead_id AND l.business_id = j.business_id "
     "WHERE j.business_id = $1::bigint AND j.run_id = $2::bigint AND "
     "($3::text IS NULL OR j.status = $3) ORDER BY j.id LIMIT $4::bigint OFFSET $5::bigint"},
    {"ob_jobs_count", "SELECT count(*) FROM outbound_call_jobs WHERE business_id = $1::bigint "
		      "AND run_id = $2::bigint AND ($3::text IS NULL OR status = $3)"},
    {"ob_workers_alive", "SELECT app_workers_alive($1::int)"},
    {"ob_run_stop_stale",
     "UPDATE outbound_call_runs SET status = 'stopped', ended_at = now(), updated_at = now(), "
     "last_error = $4 WHERE id = $2::bigint AND business_id = $1::bigint AND status IN " ACTIVE
     " AND coalesce(last_heartbeat_at, created_at) < now() - make_interval(secs => $3::int) "
     "RETURNING id"},
    {"ob_jobs_fail_stale",
     "UPDATE outbound_call_jobs SET status = 'failed', error_code = 'worker_unresponsive', "
     "error_message = 'Run stopped - worker unresponsive', completed_at = now(), "
     "updated_at = now() WHERE run_id = $2::bigint AND business_id = $1::bigint "
     "AND status = 'queued'"},
    {"ob_jobs_fail_lost",
     "UPDATE outbound_call_jobs SET status = 'failed', error_code = 'worker_lost', "
     "error_message = 'Run stopped - the worker died before the call was placed', "
     "completed_at = now(), updated_at = now() WHERE run_id = $2::bigint "
     "AND business_id = $1::bigint AND status = 'dialing' AND call_sid IS NULL"},
};

void outbound_runs_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static const char *const run_statuses[] = {"pending", "running", "completed", "cancelled",
					   "stopped", "failed",	 NULL};
static const char *const job_statuses[] = {"queued", "dialing",	  "calling", "completed",
					   "failed", "cancelled", NULL};

static const char *stale_s(http_request_t *req)
{
	return db_i64s(req->arena, req->cfg->run_stale_s);
}

/* The API's run object from row i of a RUN_COLS result. */
static json_t *run_json(const PGresult *r, int i)
{
	int64_t total = db_i64(r, i, RC_TOTAL);
	int64_t done =
	    db_i64(r, i, RC_COMPLETED) + db_i64(r, i, RC_FAILED) + db_i64(r, i, RC_CANCELLED);
	/* tenths of a percent, rounded half up */
	int64_t tenths = total > 0 ? (done * 1000 + total / 2) / total : 0;
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(db_i64(r, i, RC_ID)));
	json_object_set_new(o, "status", json_string(db_str(r, i, RC_STATUS)));
	json_object_set_new(o, "concurrency", json_integer(db_i64(r, i, RC_CONCURRENCY)));
	json_object_set_new(o, "total", json_integer(total));
	json_object_set_new(o, "queued", json_integer(db_i64(r, i, RC_QUEUED)));
	json_object_set_new(o, "in_progress", json_integer(db_i64(r, i, RC_IN_PROGRESS)));
	json_object_set_new(o, "completed", json_integer(db_i64(r, i, RC_COMPLETED)));
	json_object_set_new(o, "failed", json_integer(db_i64(r, i, RC_FAILED)));
	json_object_set_new(o, "cancelled", json_integer(db_i64(r, i, RC_CANCELLED)));
	json_object_set_new(o, "progress_pct", json_real((double)tenths / 10.0));
	/* answering-machine detection's human verdicts (0 without AMD) */
	json_object_set_new(o, "humans_reached", json_integer(db_i64(r, i, RC_HUMANS_REACHED)));
	json_object_set_new(o, "cancel_requested",
			    json_boolean(db_bool(r, i, RC_CANCEL_REQUESTED)));
	json_object_set_new(o, "stale", json_boolean(db_bool(r, i, RC_STALE)));
	json_object_set_new(o, "locked_by_worker", outbound_jstr(r, i, RC_LOCKED_BY));
	json_object_set_new(o, "last_heartbeat_at", outbound_jstr(r, i, RC_HEARTBEAT));
	json_object_set_new(o, "created_by", outbound_jint(r, i, RC_CREATED_BY));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, RC_CREATED_AT)));
	json_object_set_new(o, "started_at", outbound_jstr(r, i, RC_STARTED_AT));
	json_object_set_new(o, "ended_at", outbound_jstr(r, i, RC_ENDED_AT));
	json_object_set_new(o, "max_attempts", json_integer(db_i64(r, i, RC_MAX_ATTEMPTS)));
	json_object_set_new(o, "retry_delay_s", json_integer(db_i64(r, i, RC_RETRY_DELAY)));
	json_object_set_new(o, "script_id", outbound_jint(r, i, RC_SCRIPT_ID));
	json_object_set_new(o, "force_cancel", json_boolean(db_bool(r, i, RC_FORCE_CANCEL)));
	json_object_set_new(o, "last_error", outbound_jstr(r, i, RC_LAST_ERROR));
	json_object_set_new(o, "updated_at", json_string(db_str(r, i, RC_UPDATED_AT)));
	return o;
}

/* Run `id` of the caller's business as a JSON object into *out (NULL when not found). */
static int load_run(http_request_t *req, int64_t id, json_t **out)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "ob_run_get", api_business_param(req),
			      stale_s(req), db_i64s(req->arena, id));

	*out = NULL;
	if (r == NULL)
		return err;
	if (PQntuples(r) == 1)
		*out = run_json(r, 0);
	return 0;
}

static void reply_conflict_active(http_request_t *req, int64_t run_id)
{
	http_reply_error(req, 409, "active_run_exists",
			 "the business already has an active run; cancel it or wait for it to end",
			 json_pack("{s:I}", "run_id", (json_int_t)run_id));
}

/* --- POST /api/outbound_calls/runs ----------------------------------------------- */

typedef struct run_input {
	int64_t *lead_ids;
	size_t nleads;
	int64_t list_id;
	int64_t concurrency, max_attempts, retry_delay_s, script_id;
	json_t *script; /* validated inline script, or NULL */
} run_input_t;

static void parse_lead_ids(http_request_t *req, json_t *arr, run_input_t *in, json_fielderr_t *fe)
{
	json_t *v;
	size_t i;

	if (!json_is_array(arr)) {
		json_fielderr_add(fe, "lead_ids",
				  json_is_null(arr) ? "must not be null"
						    : "must be an array of lead ids");
		return;
	}
	if (json_array_size(arr) == 0) {
		json_fielderr_add(fe, "lead_ids", "must not be empty");
		return;
	}
	if (json_array_size(arr) > MAX_LEAD_IDS) {
		json_fielderr_add(fe, "lead_ids", "has more than 5000 leads");
		return;
	}
	in->lead_ids = arena_calloc(req->arena, json_array_size(arr), sizeof(int64_t));
	json_array_foreach(arr, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			json_fielderr_add(fe, "lead_ids", "must hold positive integer lead ids");
			return;
		}
		in->lead_ids[in->nleads++] = json_integer_value(v);
	}
}

static int parse_run_input(http_request_t *req, run_input_t *in, json_fielderr_t *fe)
{
	json_t *body = req->json, *ids = json_object_get(body, "lead_ids");
	json_t *script = json_object_get(body, "script");
	int has_list;

	memset(in, 0, sizeof(*in));
	in->concurrency = 3;
	in->max_attempts = 1;
	in->retry_delay_s = 300;
	if (ids != NULL)
		parse_lead_ids(req, ids, in, fe);
	has_list = json_get_int(body, "list_id", false, 1, INT64_MAX, &in->list_id, fe);
	if (ids != NULL && has_list != 0)
		json_fielderr_add(fe, "list_id", "send lead_ids or list_id, not both");
	else if (ids == NULL && has_list == 0)
		json_fielderr_add(fe, "lead_ids", "send lead_ids or list_id");
	json_get_int(body, "concurrency", false, 1, 10, &in->concurrency, fe);
	json_get_int(body, "max_attempts", false, 1, 5, &in->max_attempts, fe);
	json_get_int(body, "retry_delay_s", false, 0, 86400, &in->retry_delay_s, fe);
	if (json_get_int(body, "script_id", false, 1, INT64_MAX, &in->script_id, fe) > 0 &&
	    script != NULL)
		json_fielderr_add(fe, "script", "send script_id or script, not both");
	else if (script != NULL) {
		const char *country = NULL;
		int rc = outbound_business_country(req, &country);

		if (rc < 0)
			return rc;
		if (!json_is_object(script))
			json_fielderr_add(fe, "script",
					  json_is_null(script) ? "must not be null"
							       : "must be a script object");
		else
			outbound_script_parse(req, script, "script.", false, country, &in->script,
					      fe);
	}
	return 0;
}

/*
 * Leads named by id: every one must be the caller's. Sets *dialable and
 * *dnc; returns 0, 1 after answering (403 for another tenant's lead, 404 for
 * an unknown one), or ERR_*.
 */
static int resolve_leads(http_request_t *req, const char *ids, int64_t *dialable, int64_t *dnc)
{
	arena_t *a = req->arena;
	PGresult *r, *o;
	const char *missing;
	int err;

	r = DB_EXEC(req->db, a, &err, "ob_leads_resolve", api_business_param(req), ids);
	if (r == NULL)
		return err;
	*dialable = db_i64(r, 0, 0);
	*dnc = db_i64(r, 0, 1);
	missing = db_str(r, 0, 2);
	if (missing == NULL || strcmp(missing, "{}") == 0)
		return 0;
	o = DB_EXEC(req->db, a, &err, "ob_leads_owners", missing);
	if (o == NULL)
		return err;
	for (int i = 0; i < PQntuples(o); i++) {
		if (db_bool(o, i, 1)) {
			/* another tenant's lead: 403, [SECURITY], audit row */
			int rc = api_tenant_guard(req, "lead", db_i64(o, i, 0));

			return rc < 0 ? rc : 1;
		}
	}
	http_reply_error(req, 404, "not_found",
			 arena_sprintf(a, "no such lead: %lld", (long long)db_i64(o, 0, 0)),
			 json_pack("{s:I}", "lead_id", (json_int_t)db_i64(o, 0, 0)));
	return 1;
}

static void reply_nothing_to_dial(http_request_t *req, const char *field, int64_t dnc)
{
	json_fielderr_t fe;

	json_fielderr_init(&fe, req->arena);
	json_fielderr_add(&fe, field,
			  dnc > 0 ? "every lead is marked do-not-call: nothing to dial"
				  : "has no lead to call");
	http_reply_invalid(req, &fe);
}

int outbound_runs_create(http_request_t *req)
{
	arena_t *a = req->arena;
	const char *bid = api_business_param(req), *ids = NULL, *script = NULL;
	json_fielderr_t fe;
	run_input_t in;
	int64_t dialable = 0, dnc = 0, run_id, jobs;
	json_t *run;
	PGresult *r;
	int rc, err;

	json_fielderr_init(&fe, a);
	if (!json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
		http_reply_invalid(req, &fe);
		return 0;
	}
	rc = parse_run_input(req, &in, &fe);
	if (rc < 0)
		return rc;
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (in.list_id > 0) {
		r = DB_EXEC(req->db, a, &err, "ob_list_get", bid, db_i64s(a, in.list_id));
		if (r == NULL)
			return err;
		if (PQntuples(r) == 0)
			return api_tenant_guard_miss(req, "list", in.list_id);
		r = DB_EXEC(req->db, a, &err, "ob_list_counts", bid, db_i64s(a, in.list_id));
		if (r == NULL)
			return err;
		dialable = db_i64(r, 0, 0);
		dnc = db_i64(r, 0, 1);
	} else {
		ids = outbound_int_array(a, in.lead_ids, in.nleads);
		rc = resolve_leads(req, ids, &dialable, &dnc);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	if (dialable == 0) {
		reply_nothing_to_dial(req, in.list_id > 0 ? "list_id" : "lead_ids", dnc);
		return 0;
	}
	/* a run request that got this far counts; a refusal below gives the hit back */
	rc = ratelimit_guard(req, &RATELIMIT_RUN_CREATE, "business");
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (in.script_id > 0) {
		r = DB_EXEC(req->db, a, &err, "ob_script_snapshot", bid, db_i64s(a, in.script_id));
		if (r == NULL)
			return err;
		if (PQntuples(r) == 0)
			return api_tenant_guard_miss(req, "script", in.script_id);
		script = db_str(r, 0, 0);
	} else if (in.script != NULL) {
		size_t len;

		script = json_dump_arena(a, in.script, &len);
	}
	r = DB_EXEC(req->db, a, &err, "ob_run_insert", bid, db_i64s(a, in.concurrency),
		    db_i64s(a, in.max_attempts), db_i64s(a, in.retry_delay_s),
		    in.script_id > 0 ? db_i64s(a, in.script_id) : NULL, script,
		    db_i64s(a, req->principal->user_id));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0) {
		r = DB_EXEC(req->db, a, &err, "ob_run_active_id", bid);
		if (r == NULL)
			return err;
		if (PQntuples(r) == 0)
			return ERR_RETRY; /* the other run ended meanwhile: try again */
		reply_conflict_active(req, db_i64(r, 0, 0));
		req->tx_rollback = true; /* no run: give the rate-limit hit back */
		return 0;
	}
	run_id = db_i64(r, 0, 0);
	if (in.list_id > 0)
		r = DB_EXEC(req->db, a, &err, "ob_jobs_insert_list", db_i64s(a, run_id), bid,
			    db_i64s(a, in.list_id));
	else
		r = DB_EXEC(req->db, a, &err, "ob_jobs_insert_ids", db_i64s(a, run_id), bid, ids);
	if (r == NULL)
		return err;
	jobs = db_i64(r, 0, 0);
	if (jobs == 0) {
		/* every lead turned do-not-call since the count: undo the run */
		reply_nothing_to_dial(req, in.list_id > 0 ? "list_id" : "lead_ids", 1);
		return ERR_INVAL;
	}
	err = outbound_notify(req, arena_sprintf(a, "run:%lld", (long long)run_id));
	if (err < 0)
		return err;
	{
		json_t *d = json_pack("{s:I,s:I,s:I}", "jobs", (json_int_t)jobs, "skipped_dnc",
				      (json_int_t)dnc, "concurrency", (json_int_t)in.concurrency);
		audit_event_t ev = {.tag = "AUDIT",
				    .action = "run.create",
				    .resource_type = "run",
				    .resource_id = run_id,
				    .business_id = req->principal->business_id,
				    .outcome = "ok",
				    .details = json_arena(a, d)};

		if (in.list_id > 0)
			json_object_set_new(d, "list_id", json_integer(in.list_id));
		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	err = load_run(req, run_id, &run);
	if (err < 0)
		return err;
	http_reply_json(req, 201,
			json_pack("{s:o,s:I,s:I}", "run", run, "jobs_created", (json_int_t)jobs,
				  "skipped_dnc", (json_int_t)dnc));
	return 0;
}

/* --- GET /api/outbound_calls/runs[/{id}] ------------------------------------------ */

int outbound_runs_list(http_request_t *req)
{
	json_fielderr_t fe;
	int64_t page, size, total = 0;
	const char *status;
	PGresult *r;
	json_t *items;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	json_fielderr_init(&fe, req->arena);
	status = outbound_enum_filter(req, "status", run_statuses, &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	r = DB_EXEC(req->db, req->arena, &err, "ob_run_list", api_business_param(req), stale_s(req),
		    status, db_i64s(req->arena, size), db_i64s(req->arena, (page - 1) * size));
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, run_json(r, i));
		total = db_i64(r, i, RC_NCOLS);
	}
	if (PQntuples(r) == 0) {
		PGresult *c = DB_EXEC(req->db, req->arena, &err, "ob_run_count",
				      api_business_param(req), status);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

int outbound_runs_get(http_request_t *req)
{
	json_t *run;
	int err = load_run(req, req->params[0], &run);

	if (err < 0)
		return err;
	if (run == NULL)
		return api_tenant_guard_miss(req, "run", req->params[0]);
	http_reply_json(req, 200, json_pack("{s:o}", "run", run));
	return 0;
}

/* --- GET /api/outbound_calls/runs/{id}/jobs --------------------------------------- */

static json_t *job_json(const PGresult *r, int i)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(o, "lead_id", json_integer(db_i64(r, i, 1)));
	json_object_set_new(o, "phone", json_string(db_str(r, i, 2)));
	json_object_set_new(o, "lead_name", outbound_jstr(r, i, 3));
	json_object_set_new(o, "status", json_string(db_str(r, i, 4)));
	json_object_set_new(o, "call_sid", outbound_jstr(r, i, 5));
	json_object_set_new(o, "attempts", json_integer(db_i64(r, i, 6)));
	json_object_set_new(o, "error_code", outbound_jstr(r, i, 7));
	json_object_set_new(o, "error_message", outbound_jstr(r, i, 8));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, 9)));
	json_object_set_new(o, "started_at", outbound_jstr(r, i, 10));
	json_object_set_new(o, "completed_at", outbound_jstr(r, i, 11));
	json_object_set_new(o, "call_status", outbound_jstr(r, i, 12));
	json_object_set_new(o, "next_attempt_at", outbound_jstr(r, i, 13));
	json_object_set_new(o, "hangup_requested_at", outbound_jstr(r, i, 14));
	/* what the callee did: the DTMF pressed, and answering-machine detection's verdict */
	json_object_set_new(o, "digits", outbound_jstr(r, i, 16));
	json_object_set_new(o, "answered_by", outbound_jstr(r, i, 17));
	return o;
}

int outbound_runs_jobs(http_request_t *req)
{
	arena_t *a = req->arena;
	int64_t id = req->params[0], page, size, total = 0;
	const char *status, *bid = api_business_param(req);
	json_fielderr_t fe;
	PGresult *r;
	json_t *items;
	int err;

	r = DB_EXEC(req->db, a, &err, "ob_run_exists", bid, db_i64s(a, id));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "run", id);
	if (http_paging(req, &page, &size) < 0)
		return 0;
	json_fielderr_init(&fe, a);
	status = outbound_enum_filter(req, "status", job_statuses, &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	r = DB_EXEC(req->db, a, &err, "ob_jobs_list", bid, db_i64s(a, id), status, db_i64s(a, size),
		    db_i64s(a, (page - 1) * size));
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, job_json(r, i));
		total = db_i64(r, i, 15);
	}
	if (PQntuples(r) == 0 && page > 1) {
		PGresult *c =
		    DB_EXEC(req->db, a, &err, "ob_jobs_count", bid, db_i64s(a, id), status);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

/* --- GET /api/outbound_calls/jobs/active ------------------------------------------ */

/*
 * The stale run of row 0 of r, with no worker alive: stop it, fail its
 * queued jobs, log [STALE_DETECTION] and audit. *stopped tells whether it was
 * still stale under the row lock (a heartbeat may have come in meanwhile).
 */
static int stop_stale_run(http_request_t *req, const PGresult *run, bool *stopped)
{
	arena_t *a = req->arena;
	int64_t id = db_i64(run, 0, RC_ID), age = db_i64(run, 0, RC_HEARTBEAT_AGE);
	const char *bid = api_business_param(req), *ids = db_i64s(a, id);
	int64_t failed, lost;
	char worker[160];
	PGresult *r;
	int err;

	r = DB_EXEC(req->db, a, &err, "ob_run_stop_stale", bid, ids, stale_s(req),
		    arena_sprintf(a,
				  "Run stopped - worker unresponsive (no heartbeat for %lld s, "
				  "no worker alive)",
				  (long long)age));
	if (r == NULL)
		return err;
	*stopped = PQntuples(r) == 1;
	if (!*stopped)
		return 0;
	r = DB_EXEC(req->db, a, &err, "ob_jobs_fail_stale", bid, ids);
	if (r == NULL)
		return err;
	failed = outbound_changed(r);
	r = DB_EXEC(req->db, a, &err, "ob_jobs_fail_lost", bid, ids);
	if (r == NULL)
		return err;
	lost = outbound_changed(r);
	log_warn("outbound",
		 "%s run=%lld business=%lld stopped: no worker alive, heartbeat_age_s=%lld "
		 "last_heartbeat=%s worker=\"%s\" jobs_failed=%lld jobs_lost=%lld user=%lld",
		 LOG_TAG_STALE, (long long)id, (long long)req->principal->business_id,
		 (long long)age,
		 db_isnull(run, 0, RC_HEARTBEAT) ? "never" : db_str(run, 0, RC_HEARTBEAT),
		 log_sanitize(db_isnull(run, 0, RC_LOCKED_BY) ? "-" : db_str(run, 0, RC_LOCKED_BY),
			      worker, sizeof(worker)),
		 (long long)failed, (long long)lost, (long long)req->principal->user_id);
	{
		audit_event_t ev = {
		    .tag = "STALE_DETECTION",
		    .action = "run.stop_stale",
		    .resource_type = "run",
		    .resource_id = id,
		    .business_id = req->principal->business_id,
		    .outcome = "ok",
		    .details = json_arena(
			a, json_pack("{s:I,s:o,s:o,s:I,s:I}", "heartbeat_age_s", (json_int_t)age,
				     "last_heartbeat_at", outbound_jstr(run, 0, RC_HEARTBEAT),
				     "locked_by_worker", outbound_jstr(run, 0, RC_LOCKED_BY),
				     "jobs_failed", (json_int_t)failed, "jobs_lost",
				     (json_int_t)lost))};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	return 0;
}

int outbound_runs_active(http_request_t *req)
{
	arena_t *a = req->arena;
	PGresult *r, *w;
	int64_t id;
	bool stopped = false;
	int err;

	r = DB_EXEC(req->db, a, &err, "ob_run_active", api_business_param(req), stale_s(req));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0) {
		http_reply_json(req, 200, json_pack("{s:b}", "active", 0));
		return 0;
	}
	id = db_i64(r, 0, RC_ID);
	if (db_bool(r, 0, RC_STALE)) {
		w = DB_EXEC(req->db, a, &err, "ob_workers_alive",
			    db_i64s(a, req->cfg->worker_stale_s));
		if (w == NULL)
			return err;
		/* a live worker takes a stale run over by itself; only a dead fleet needs us */
		if (!db_bool(w, 0, 0)) {
			err = stop_stale_run(req, r, &stopped);
			if (err < 0)
				return err;
			if (!stopped) {
				/* it moved under the row lock (a heartbeat, an end): look again */
				r = DB_EXEC(req->db, a, &err, "ob_run_active",
					    api_business_param(req), stale_s(req));
				if (r == NULL)
					return err;
				if (PQntuples(r) == 0) {
					http_reply_json(req, 200, json_pack("{s:b}", "active", 0));
					return 0;
				}
			}
		}
	}
	if (stopped) {
		http_reply_json(
		    req, 200,
		    json_pack("{s:b,s:I}", "active", 0, "stopped_run_id", (json_int_t)id));
		return 0;
	}
	http_reply_json(req, 200, json_pack("{s:b,s:o}", "active", 1, "run", run_json(r, 0)));
	return 0;
}

/* --- POST /api/outbound_calls/runs/{id}/cancel -------------------------------------- */

/* Lock run `id` of the caller; *status its status, NULL after answering 403/404. */
static int lock_run(http_request_t *req, int64_t id, const char **status)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "ob_run_lock", api_business_param(req),
			      db_i64s(req->arena, id));

	*status = NULL;
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "run", id);
	*status = db_str(r, 0, 0);
	return 0;
}

int outbound_runs_cancel(http_request_t *req)
{
	arena_t *a = req->arena;
	int64_t id = req->params[0], cancelled;
	const char *bid = api_business_param(req), *ids = db_i64s(a, id), *status;
	bool ended;
	json_t *run;
	PGresult *r;
	int err;

	err = lock_run(req, id, &status);
	if (err < 0 || status == NULL)
		return err;
	if (outbound_run_is_terminal(outbound_run_status_parse(status))) {
		http_reply_error(
		    req, 409, "run_finished",
		    arena_sprintf(a, "the run has already ended (%s)", status),
		    json_pack("{s:s,s:I}", "status", status, "run_id", (json_int_t)id));
		return 0;
	}
	if (DB_EXEC(req->db, a, &err, "ob_run_cancel_flag", bid, ids) == NULL)
		return err;
	r = DB_EXEC(req->db, a, &err, "ob_jobs_cancel_queued", bid, ids, "Cancelled by user");
	if (r == NULL)
		return err;
	cancelled = outbound_changed(r);
	r = DB_EXEC(req->db, a, &err, "ob_run_finish_cancel", bid, ids);
	if (r == NULL)
		return err;
	ended = outbound_changed(r) == 1;
	err = outbound_notify(req, arena_sprintf(a, "run:%lld", (long long)id));
	if (err < 0)
		return err;
	{
		audit_event_t ev = {
		    .tag = "AUDIT",
		    .action = "run.cancel",
		    .resource_type = "run",
		    .resource_id = id,
		    .business_id = req->principal->business_id,
		    .outcome = "ok",
		    .details = json_arena(a, json_pack("{s:I,s:b}", "jobs_cancelled",
						       (json_int_t)cancelled, "ended", ended))};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	err = load_run(req, id, &run);
	if (err < 0)
		return err;
	http_reply_json(
	    req, 200, json_pack("{s:o,s:I}", "run", run, "jobs_cancelled", (json_int_t)cancelled));
	return 0;
}

/* --- POST .../runs/{id}/force-cancel, .../jobs/{id}/force-cancel (id = run) ---------- */

int outbound_runs_force_cancel(http_request_t *req)
{
	arena_t *a = req->arena;
	int64_t id = req->params[0], cancelled = 0, hangups;
	const char *bid = api_business_param(req), *ids = db_i64s(a, id), *status;
	bool was_active;
	json_t *run;
	PGresult *r;
	int err;

	err = lock_run(req, id, &status);
	if (err < 0 || status == NULL)
		return err;
	was_active = !outbound_run_is_terminal(outbound_run_status_parse(status));
	if (was_active) {
		if (DB_EXEC(req->db, a, &err, "ob_run_force", bid, ids) == NULL)
			return err;
		r = DB_EXEC(req->db, a, &err, "ob_jobs_cancel_queued", bid, ids,
			    "Force cancelled by user");
		if (r == NULL)
			return err;
		cancelled = outbound_changed(r);
	}
	/* live calls of the run, even of one already ended (a cancel that waits for them) */
	r = DB_EXEC(req->db, a, &err, "ob_jobs_hangup", bid, ids);
	if (r == NULL)
		return err;
	hangups = outbound_changed(r);
	if (was_active || hangups > 0) {
		err = outbound_notify(req, arena_sprintf(a, "force_cancel:%lld", (long long)id));
		if (err < 0)
			return err;
	}
	log_warn("outbound",
		 "%s run=%lld business=%lld user=%lld previous_status=%s jobs_cancelled=%lld "
		 "calls_hangup_requested=%lld",
		 LOG_TAG_FORCE_CANCEL, (long long)id, (long long)req->principal->business_id,
		 (long long)req->principal->user_id, status, (long long)cancelled,
		 (long long)hangups);
	{
		audit_event_t ev = {
		    .tag = "FORCE_CANCEL",
		    .action = "run.force_cancel",
		    .resource_type = "run",
		    .resource_id = id,
		    .business_id = req->principal->business_id,
		    .outcome = "ok",
		    .details =
			json_arena(a, json_pack("{s:s,s:I,s:I}", "previous_status", status,
						"jobs_cancelled", (json_int_t)cancelled,
						"calls_hangup_requested", (json_int_t)hangups))};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	err = load_run(req, id, &run);
	if (err < 0)
		return err;
	http_reply_json(req, 200,
			json_pack("{s:o,s:I,s:I}", "run", run, "jobs_cancelled",
				  (json_int_t)cancelled, "calls_hangup_requested",
				  (json_int_t)hangups));
	return 0;
}
