/*
 * twilio_amd.c - POST /webhooks/twilio/amd (API.md "Webhooks"): the verdict
 * of Twilio's asynchronous answering-machine detection, requested by the
 * worker when the business has amd_enabled (MachineDetection=
 * DetectMessageEnd, AsyncAmd=true).
 *
 * Signed like the status callback. The verdict is recorded on the job as
 * answered_by (human | machine | unknown; fax counts as a machine). When a
 * machine's greeting ended (machine_end_*) on a live call and the business
 * wants something done about it - amd_action 'hangup', or 'voicemail' with a
 * voicemail text in the run's script - the job gets voicemail_requested_at
 * and the worker is told with NOTIFY 'amd:<job>'; it redirects the call to
 * the voicemail TwiML or hangs it up (src/worker/amd.c). The action is
 * requested at most once per job (only the first machine verdict asks), so a
 * repeated callback is a no-op: 204 for every verified request, also for an
 * unknown call.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/twiml.h"
#include "dialflow/webhooks.h"

#define TX_ATTEMPTS 3

/*
 * One attempt. *business is 0 for an unknown call; *requested says whether
 * this request asked the worker for the AMD action.
 */
static int apply_once(http_request_t *req, const twiml_voice_req_t *vr, int64_t *business,
		      int64_t *job, bool *requested)
{
	arena_t *a = req->arena;
	bool machine_end = vr->answered_by == TWIML_AMD_MACHINE_END;
	PGresult *r;
	int rc;

	*business = 0;
	*job = 0;
	*requested = false;
	rc = db_begin(req->db);
	if (rc < 0)
		return rc;
	r = DB_EXEC(req->db, a, &rc, "webhook_call_business", vr->call_sid);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 1 && !db_isnull(r, 0, 0))
		*business = db_i64(r, 0, 0);
	if (*business > 0) {
		rc = db_set_tenant(req->db, a, *business, false);
		if (rc < 0)
			goto fail;
		r = DB_EXEC(req->db, a, &rc, "webhook_amd_apply", vr->call_sid,
			    db_i64s(a, *business), twiml_amd_class(vr->answered_by),
			    machine_end ? "true" : "false");
		if (r == NULL)
			goto fail;
		if (PQntuples(r) == 1) {
			*job = db_i64(r, 0, 0);
			*requested = db_bool(r, 0, 1);
		}
		if (*requested &&
		    DB_EXEC(req->db, a, &rc, "webhook_amd_notify", db_i64s(a, *job)) == NULL)
			goto fail;
	}
	rc = db_commit(req->db);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	db_rollback(req->db);
	*requested = false;
	return rc;
}

int webhook_twilio_amd(http_request_t *req)
{
	twiml_voice_req_t vr;
	const char *why = NULL;
	int64_t business = 0, job = 0;
	bool requested = false;
	form_t form;
	int rc;

	rc = webhook_twilio_verify(req, &form, &why);
	if (rc == WEBHOOK_BAD_FORM) {
		http_reply_error(req, 400, "invalid_input", why, NULL);
		return 0;
	}
	if (rc != WEBHOOK_VERIFIED) {
		http_reply_forbidden(req, "invalid_signature",
				     "the request is not signed by the provider");
		req->log_note = why;
		return 0;
	}
	if (twiml_voice_req_parse(&form, "amd", &vr, &why) < 0) {
		json_fielderr_t fe;

		json_fielderr_init(&fe, req->arena);
		json_fielderr_add(&fe, strcmp(why, "no_call_sid") == 0 ? "CallSid" : "AnsweredBy",
				  "is required");
		http_reply_invalid(req, &fe);
		return 0;
	}
	for (int attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
		rc = apply_once(req, &vr, &business, &job, &requested);
		if (rc != ERR_RETRY)
			break;
	}
	if (rc < 0) {
		log_warn("webhook", "amd sid=%s not applied: %s", vr.call_sid, err_code_name(rc));
		http_reply_err(req, rc);
		return 0;
	}
	req->log_business = business;
	if (job == 0) {
		log_info("webhook", "amd for an unknown call sid=%s", vr.call_sid);
		req->log_note = "unknown_call";
	} else {
		log_info("webhook", "amd sid=%s job=%lld answered_by=%s action_requested=%s",
			 vr.call_sid, (long long)job, twiml_amd_class(vr.answered_by),
			 requested ? "yes" : "no");
		req->log_note = requested ? "action_requested" : "recorded";
	}
	http_reply_empty(req, 204);
	return 0;
}
