/*
 * wa_sweep.c - the WhatsApp sweeps of the worker (DESIGN §8, issue 4
 * "Timeouts"), run every poll:
 *
 *   idle      a flow session whose state was not touched for
 *             DIALFLOW_FLOW_IDLE_TIMEOUT_S is ended (its state row deleted),
 *             with the pinned version's "idle_timeout_message" when the
 *             definition has one (a plain string; one with a {{ template }}
 *             is not sent, raw braces never reach a user);
 *   handover  a handover no agent picked up within DIALFLOW_HANDOVER_NOTICE_S
 *             gets the "agents are busy" text once (handover_notice_sent_at;
 *             resolving the handover should clear it for the next one).
 *
 * Each contact is its own transaction under the contact's row lock, the lock
 * the webhook takes first too, and the condition is re-checked under it, so a
 * message arriving at the same moment either keeps the session alive or
 * finds it ended, never half of each. The notice and the deletion commit
 * together: exactly once.
 */
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/whatsapp.h"
#include "worker_internal.h"

#define MAX_NOTICE_LEN 4096

static const db_stmt_t stmts[] = {
    {"wa_idle_candidates", "SELECT contact_id FROM contact_flow_state "
			   "WHERE updated_at < now() - make_interval(secs => $1::integer) "
			   "ORDER BY updated_at LIMIT $2::integer"},
    {"wa_sweep_lock", "SELECT business_id FROM contacts WHERE id = $1::bigint FOR UPDATE"},
    {"wa_idle_end",
     "DELETE FROM contact_flow_state s USING flow_versions v "
     "WHERE s.contact_id = $1::bigint AND v.id = s.flow_version_id "
     "AND s.updated_at < now() - make_interval(secs => $2::integer) "
     "RETURNING s.business_id, CASE WHEN jsonb_typeof(v.definition -> 'idle_timeout_message') "
     "= 'string' THEN v.definition ->> 'idle_timeout_message' END"},
    {"wa_handover_candidates",
     "SELECT id FROM contacts WHERE needs_human AND handover_notice_sent_at IS NULL "
     "AND handover_requested_at < now() - make_interval(secs => $1::integer) "
     "ORDER BY handover_requested_at LIMIT $2::integer"},
    {"wa_handover_mark",
     "UPDATE contacts SET handover_notice_sent_at = now(), updated_at = now() "
     "WHERE id = $1::bigint AND needs_human AND handover_notice_sent_at IS NULL "
     "AND handover_requested_at < now() - make_interval(secs => $2::integer) "
     "RETURNING business_id"},
};

void wa_sweep_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* Whether text may go to a user as is. */
static bool notice_ok(const char *text)
{
	size_t n = text ? strlen(text) : 0;

	return n > 0 && n <= MAX_NOTICE_LEN && strstr(text, "{{") == NULL;
}

/* End one idle session. *ended when it was still idle under the lock. */
static int end_one(db_t *db, arena_t *a, int64_t contact, const char *secs, bool *ended)
{
	const char *cid = db_i64s(a, contact);
	const char *msg;
	int64_t biz;
	PGresult *r;
	int rc;

	*ended = false;
	rc = db_begin(db);
	if (rc < 0)
		return rc;
	r = DB_EXEC(db, a, &rc, "wa_sweep_lock", cid);
	if (r == NULL)
		goto fail;
	r = DB_EXEC(db, a, &rc, "wa_idle_end", cid, secs);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 1) {
		biz = db_i64(r, 0, 0);
		msg = db_str(r, 0, 1);
		*ended = true;
		if (msg != NULL && !notice_ok(msg)) {
			log_warn("whatsapp",
				 "idle_timeout_message of contact=%lld's flow is empty, "
				 "too long or a template: not sent",
				 (long long)contact);
		} else if (msg != NULL) {
			rc = wa_outbox_enqueue(db, a, biz, contact, wa_text_payload(a, msg),
					       "system", NULL);
			if (rc < 0)
				goto fail;
		}
	}
	rc = db_commit(db);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	*ended = false;
	return rc;
}

int wa_sweep_idle(db_t *db, arena_t *a, int idle_s, int limit, int *ended)
{
	const char *secs = db_i64s(a, idle_s);
	PGresult *r;
	int rc = 0, n = 0;

	if (ended != NULL)
		*ended = 0;
	r = DB_EXEC(db, a, &rc, "wa_idle_candidates", secs, db_i64s(a, limit));
	if (r == NULL)
		return rc;
	for (int i = 0; i < PQntuples(r); i++) {
		bool done = false;

		rc = end_one(db, a, db_i64(r, i, 0), secs, &done);
		if (rc == ERR_UNAVAIL)
			break;
		n += done;
	}
	if (n > 0)
		log_info("whatsapp", "idle flow sessions ended: %d (idle for more than %d s)", n,
			 idle_s);
	if (ended != NULL)
		*ended = n;
	return rc == ERR_UNAVAIL ? rc : 0;
}

/* Send one handover notice. *sent when the contact still qualified under the lock. */
static int notice_one(db_t *db, arena_t *a, int64_t contact, const char *secs, const char *text,
		      bool *sent)
{
	const char *cid = db_i64s(a, contact);
	PGresult *r;
	int rc;

	*sent = false;
	rc = db_begin(db);
	if (rc < 0)
		return rc;
	r = DB_EXEC(db, a, &rc, "wa_sweep_lock", cid);
	if (r == NULL)
		goto fail;
	r = DB_EXEC(db, a, &rc, "wa_handover_mark", cid, secs);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 1) {
		rc = wa_outbox_enqueue(db, a, db_i64(r, 0, 0), contact, wa_text_payload(a, text),
				       "system", NULL);
		if (rc < 0)
			goto fail;
		*sent = true;
	}
	rc = db_commit(db);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	*sent = false;
	return rc;
}

int wa_sweep_handover(db_t *db, arena_t *a, int notice_s, const char *text, int limit, int *sent)
{
	const char *secs = db_i64s(a, notice_s);
	PGresult *r;
	int rc = 0, n = 0;

	if (sent != NULL)
		*sent = 0;
	if (!notice_ok(text))
		return ERR_INVAL;
	r = DB_EXEC(db, a, &rc, "wa_handover_candidates", secs, db_i64s(a, limit));
	if (r == NULL)
		return rc;
	for (int i = 0; i < PQntuples(r); i++) {
		bool done = false;

		rc = notice_one(db, a, db_i64(r, i, 0), secs, text, &done);
		if (rc == ERR_UNAVAIL)
			break;
		n += done;
	}
	if (n > 0)
		log_info("whatsapp", "handover notices sent: %d (waiting for more than %d s)", n,
			 notice_s);
	if (sent != NULL)
		*sent = n;
	return rc == ERR_UNAVAIL ? rc : 0;
}
