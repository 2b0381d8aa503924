/*
 * twilio_status.c - POST /webhooks/twilio/call-status (API.md "Webhooks").
 *
 * Signature first. Then the call's tenant comes from webhook_call_business()
 * (SECURITY DEFINER, the only thing readable before a tenant is known), the
 * transaction is scoped to it, and outbound_call_event() applies the event
 * with conditional UPDATEs, so a repeated or out-of-order callback changes
 * nothing. Twilio only needs a 2xx: an unknown CallSid is 204 too.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/strnum.h"
#include "dialflow/webhooks.h"

#define TX_ATTEMPTS	  3
#define MAX_SID_LEN	  63
#define MAX_CODE_LEN	  31
#define MAX_MESSAGE_LEN	  255
#define MAX_DURATION_S	  (7 * 86400)
#define MAX_CALLSTATUS_LN 31

/* What one callback says, after the signature held. */
typedef struct status_event {
	const char *call_sid;
	const char *call_status;
	int duration; /* -1 when not given */
	const char *error_code;
	const char *error_message;
} status_event_t;

/* [A-Za-z0-9], 1..63: the shape of a provider call sid (and safe in logs). */
static bool sid_ok(const char *s)
{
	size_t n =
	    s ? strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") : 0;

	return s != NULL && n > 0 && n <= MAX_SID_LEN && s[n] == '\0';
}

/* An optional text field, cut to max bytes at a UTF-8 boundary; NULL when absent or empty. */
static const char *opt_text(arena_t *a, const form_t *f, const char *name, size_t max)
{
	const char *v = form_get(f, name);
	size_t n;

	if (v == NULL || v[0] == '\0')
		return NULL;
	n = strlen(v);
	if (n <= max)
		return v;
	n = max;
	while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
		n--;
	return arena_strndup(a, v, n);
}

/* Read the event; returns 0, or -1 after answering 400. */
static int read_event(http_request_t *req, const form_t *f, status_event_t *ev)
{
	const char *dur = form_get(f, "CallDuration");
	json_fielderr_t fe;
	int64_t d;

	json_fielderr_init(&fe, req->arena);
	ev->call_sid = form_get(f, "CallSid");
	ev->call_status = form_get(f, "CallStatus");
	ev->duration = -1;
	if (!sid_ok(ev->call_sid))
		json_fielderr_add(&fe, "CallSid", "is required: 1 to 63 letters and digits");
	if (ev->call_status == NULL || ev->call_status[0] == '\0' ||
	    strlen(ev->call_status) > MAX_CALLSTATUS_LN)
		json_fielderr_add(&fe, "CallStatus", "is required");
	if (dur != NULL && dur[0] != '\0') {
		if (strnum_i64(dur, 0, MAX_DURATION_S, &d) == 0)
			ev->duration = (int)d;
		else
			json_fielderr_add(&fe, "CallDuration", "must be a number of seconds");
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return -1;
	}
	ev->error_code = opt_text(req->arena, f, "ErrorCode", MAX_CODE_LEN);
	ev->error_message = opt_text(req->arena, f, "ErrorMessage", MAX_MESSAGE_LEN);
	return 0;
}

/*
 * One attempt of the transaction. *business is 0 for an unknown call.
 * Returns 0 or an ERR_* code (the transaction is rolled back on error).
 */
static int apply_once(http_request_t *req, const status_event_t *ev, int64_t *business,
		      bool *changed)
{
	PGresult *r;
	int rc;

	*business = 0;
	*changed = false;
	rc = db_begin(req->db);
	if (rc < 0)
		return rc;
	r = DB_EXEC(req->db, req->arena, &rc, "webhook_call_business", ev->call_sid);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 1 && !db_isnull(r, 0, 0))
		*business = db_i64(r, 0, 0);
	if (*business > 0) {
		rc = db_set_tenant(req->db, req->arena, *business, false);
		if (rc < 0)
			goto fail;
		rc = outbound_call_event(req->db, req->arena, ev->call_sid, ev->call_status,
					 ev->duration, ev->error_code, ev->error_message, changed);
		if (rc < 0)
			goto fail;
	}
	rc = db_commit(req->db);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	db_rollback(req->db);
	return rc;
}

int webhook_twilio_status(http_request_t *req)
{
	status_event_t ev;
	form_t form;
	const char *why = NULL;
	int64_t business = 0;
	bool changed = false;
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
	if (read_event(req, &form, &ev) < 0)
		return 0;
	for (int attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
		rc = apply_once(req, &ev, &business, &changed);
		if (rc != ERR_RETRY)
			break;
		log_info("webhook", "serialization failure on call-status, retrying (attempt %d)",
			 attempt);
	}
	if (rc < 0) {
		char st[40];

		log_warn("webhook", "call-status sid=%s status=%s not applied: %s", ev.call_sid,
			 log_sanitize(ev.call_status, st, sizeof(st)), err_code_name(rc));
		http_reply_err(req, rc);
		return 0;
	}
	req->log_business = business;
	if (business == 0) {
		log_info("webhook", "call-status for an unknown call sid=%s", ev.call_sid);
		req->log_note = "unknown_call";
	} else {
		char st[40];

		log_info("webhook", "call-status sid=%s status=%s duration=%d changed=%s",
			 ev.call_sid, log_sanitize(ev.call_status, st, sizeof(st)), ev.duration,
			 changed ? "yes" : "no");
		req->log_note = changed ? "applied" : "no_change";
	}
	http_reply_empty(req, 204);
	return 0;
}
