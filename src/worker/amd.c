/*
 * amd.c - answering-machine actions (issue 7, "Answering machines").
 *
 * The AMD webhook (src/webhooks/twilio_amd.c) records a machine's verdict
 * and, when the business wants it, stamps voicemail_requested_at on the job
 * and NOTIFYs 'amd:<job>'. Any worker then does what the business's
 * amd_action says: 'voicemail' redirects the live call to the voice webhook's
 * ?mode=voicemail (which says the script's voicemail text and hangs up),
 * 'hangup' hangs it up. Like force-cancel's hang-ups (cancel.c), each job is
 * first stamped (voicemail_attempt_at, a short lease) under SKIP LOCKED so
 * workers do not pile on one call, the provider is asked with no transaction
 * open, and the request is cleared once the provider took it (or refused it:
 * the call is over). A worker that dies in between leaves the job to be
 * retried when the stamp expires. The job's status is left to the status
 * callbacks: the call ends as any other.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/log.h"
#include "worker_internal.h"

#define AMD_BATCH 100

static const db_stmt_t stmts[] = {
    /* $1 lease seconds, $2 limit */
    {"amd_claim",
     "WITH c AS (SELECT id FROM outbound_call_jobs WHERE voicemail_requested_at IS NOT NULL "
     "AND status IN ('dialing', 'calling') AND call_sid IS NOT NULL "
     "AND hangup_requested_at IS NULL AND (voicemail_attempt_at IS NULL "
     "OR voicemail_attempt_at < now() - make_interval(secs => $1::integer)) "
     "ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED) "
     "UPDATE outbound_call_jobs j SET voicemail_attempt_at = now() FROM c, businesses b "
     "WHERE j.id = c.id AND b.id = j.business_id "
     "RETURNING j.id, j.run_id, j.business_id, j.call_sid, b.amd_action"},
    /* $1 job: the provider took it (or the call is over) */
    {"amd_done", "UPDATE outbound_call_jobs SET voicemail_requested_at = NULL, "
		 "voicemail_attempt_at = NULL, updated_at = now() WHERE id = $1::bigint"},
};

void amd_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static const char *outcome(int rc)
{
	switch (rc) {
	case PROVIDER_OK:
		return "ok";
	case PROVIDER_ERR_REJECTED:
		return "refused";
	case PROVIDER_ERR_TRANSIENT:
		return "transient";
	default:
		return "unknown";
	}
}

int amd_actions(worker_t *w)
{
	arena_t *a = w->arena;
	PGresult *r;
	int err, n;

	w->want_amd = false;
	if (w->provider == NULL)
		return 0;
	r = DB_EXEC(w->db, a, &err, "amd_claim", db_i64s(a, WORKER_HANGUP_LEASE_S),
		    db_i64s(a, AMD_BATCH));
	if (r == NULL)
		return err;
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		const char *sid = db_str(r, i, 3), *action = db_str(r, i, 4);
		bool voicemail = strcmp(action, "voicemail") == 0 && w->provider->ops->redirect;
		provider_call_res_t res;
		int rc;

		memset(&res, 0, sizeof(res));
		if (voicemail)
			rc = w->provider->ops->redirect(w->provider, sid, w->voicemail_url, &res);
		else
			rc = w->provider->ops->hangup(w->provider, sid, &res);
		log_msg(rc == PROVIDER_OK ? LOG_INFO : LOG_WARN, WORKER_COMPONENT,
			"amd job=%lld run=%lld business=%lld call_sid=%s action=%s outcome=%s "
			"http=%d",
			(long long)db_i64(r, i, 0), (long long)db_i64(r, i, 1),
			(long long)db_i64(r, i, 2), sid, voicemail ? "voicemail" : "hangup",
			outcome(rc), res.http_status);
		/* TRANSIENT / UNKNOWN: retried once the stamp expires */
		if ((rc == PROVIDER_OK || rc == PROVIDER_ERR_REJECTED) &&
		    DB_EXEC(w->db, a, &err, "amd_done", db_str(r, i, 0)) == NULL)
			log_warn(WORKER_COMPONENT, "amd job=%lld: clearing the request failed (%d)",
				 (long long)db_i64(r, i, 0), err);
	}
	/* a full batch may have left more */
	w->want_amd = n == AMD_BATCH;
	return 0;
}
