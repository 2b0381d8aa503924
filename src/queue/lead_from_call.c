/*
 * lead_from_call.c - the create_lead_from_call job (DESIGN §7 "Lead creation").
 *
 * The payload carries only the call_sid; everything else is read from
 * call_log when the job runs, so a retry can never run with stale or missing
 * arguments (the original system's crash loop). The lead is upserted by
 * (business_id, phone_e164): running the job twice changes nothing more.
 */
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/queue.h"
#include "queue_internal.h"

#define MAX_SID_LEN 64

/*
 * $1 call_sid. One statement: the call, the lead upserted (a new one starts
 * as source 'call'; an answered call promotes a 'new' lead to 'contacted';
 * last_call_at only moves forward), and call_log.lead_id linked when unset
 * (never re-pointed to another lead). Returns (calls found, lead id).
 */
static const db_stmt_t stmts[] = {
    {"queue_lead_from_call",
     "WITH c AS (SELECT id, business_id, status, created_at, "
     "CASE WHEN direction = 'outbound' THEN to_number ELSE from_number END AS phone "
     "FROM call_log WHERE call_sid = $1), "
     "l AS (INSERT INTO leads (business_id, phone_e164, source, status, last_call_at) "
     "SELECT business_id, phone, 'call', "
     "CASE WHEN status = 'completed' THEN 'contacted' ELSE 'new' END, created_at FROM c "
     "WHERE phone ~ '^\\+[1-9][0-9]{6,14}$' "
     "ON CONFLICT (business_id, phone_e164) DO UPDATE SET "
     "last_call_at = greatest(leads.last_call_at, excluded.last_call_at), "
     "status = CASE WHEN leads.status = 'new' AND excluded.status = 'contacted' "
     "THEN 'contacted' ELSE leads.status END, updated_at = now() RETURNING id), "
     "u AS (UPDATE call_log SET lead_id = (SELECT id FROM l) "
     "WHERE id = (SELECT id FROM c) AND lead_id IS NULL AND EXISTS (SELECT 1 FROM l)) "
     "SELECT (SELECT count(*) FROM c), (SELECT id FROM l)"},
};

void queue_lead_from_call_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

int queue_lead_from_call(db_t *db, arena_t *a, const queue_job_t *job, const char **why)
{
	json_t *v = json_object_get(job->payload, "call_sid");
	const char *sid;
	PGresult *r;
	int err, rc;

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > MAX_SID_LEN) {
		*why = "payload has no valid call_sid";
		return ERR_INVAL;
	}
	sid = json_string_value(v);
	rc = db_begin(db);
	if (rc < 0) {
		*why = "database unavailable";
		return rc;
	}
	r = DB_EXEC(db, a, &err, "queue_lead_from_call", sid);
	if (r == NULL) {
		rc = err;
		*why = "upserting the lead failed";
		goto out;
	}
	if (db_i64(r, 0, 0) == 0) {
		rc = ERR_NOTFOUND;
		*why = "no call_log row for this call_sid";
		goto out;
	}
	if (db_isnull(r, 0, 1))
		log_warn("queue", "job=%lld call has no valid E.164 number: no lead",
			 (long long)job->id);
	rc = db_commit(db);
	if (rc < 0)
		*why = "commit failed";
out:
	if (rc < 0)
		db_rollback(db);
	return rc;
}
