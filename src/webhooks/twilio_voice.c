/*
 * twilio_voice.c - POST /webhooks/twilio/voice (API.md "Webhooks"): the TwiML
 * Twilio runs once a call is answered, and the requests that follow from it:
 *
 *   (no mode)        the call was answered: the script (twiml_answer)
 *   Digits=...       <Gather>'s action: the choice; the digits are stored on
 *                    the job, and an opt-out makes the lead do_not_call in the
 *                    same transaction (and writes an [AUDIT] row)
 *   ?mode=whisper    the agent's leg of a bridge (looked up by ParentCallSid)
 *   ?mode=voicemail  the worker redirected the call after AMD found a machine
 *   ?mode=dial_done  the bridge's <Dial> ended
 *
 * Every answer is TwiML (text/xml), whatever happens: a caller on the line
 * must never hear Twilio's "application error" because of us. An unknown,
 * finished or cancelled call gets <Hangup/>; a database or internal error
 * gets a short apology and <Hangup/> (and a log line), never a 5xx.
 *
 * The common path is one statement: webhook_voice_context() (SECURITY
 * DEFINER, migration 0006) reads the job, its run, its script, the lead and
 * the business by CallSid through the unique index, before any tenant is
 * known. Only a <Gather> answer writes, in a transaction scoped to the
 * call's tenant. No provider is ever called from here.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/audit.h"
#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/provider.h"
#include "dialflow/twiml.h"
#include "dialflow/webhooks.h"

#define TX_ATTEMPTS 3
#define URL_MAX	    2048

/* The call as the voice webhook sees it (strings in the request arena). */
typedef struct voice_call {
	int64_t business;
	int64_t job;
	int64_t lead;
	bool live;	/* the job still wants the call (not finished or cancelled) */
	json_t *script; /* NULL: no script (the default greeting) */
	json_t *scope;	/* the templating scope */
	const char *caller_id;
} voice_call_t;

/* --- answers -------------------------------------------------------------- */

static void reply_doc(http_request_t *req, int status, const char *doc, size_t len,
		      const char *note)
{
	http_reply_raw(req, status, TWIML_CONTENT_TYPE, doc, len);
	if (note != NULL)
		req->log_note = note;
}

static void reply_hangup(http_request_t *req, int status, const char *note)
{
	reply_doc(req, status, twiml_hangup_doc, strlen(twiml_hangup_doc), note);
}

static void reply_apology(http_request_t *req, const char *note)
{
	reply_doc(req, 200, twiml_apology_doc, strlen(twiml_apology_doc), note);
}

/* --- the database --------------------------------------------------------- */

static json_t *str_or_null(const PGresult *r, int col)
{
	return db_isnull(r, 0, col) ? json_null() : json_string(db_str(r, 0, col));
}

/*
 * The call of `sid` in one statement. Returns 0 (found), 1 (unknown call) or
 * an ERR_* code.
 */
static int load_call(http_request_t *req, const char *sid, voice_call_t *vc)
{
	const char *script;
	PGresult *r;
	int rc;

	memset(vc, 0, sizeof(*vc));
	/* one statement, no transaction; a connection lost since the last request
	 * (a server restart) gets one fresh try, as db_begin() gives it */
	for (int attempt = 0;; attempt++) {
		rc = db_ensure(req->db);
		if (rc < 0)
			return rc;
		r = DB_EXEC(req->db, req->arena, &rc, "webhook_voice_context", sid);
		if (r != NULL)
			break;
		if (attempt > 0 || rc != ERR_UNAVAIL || db_is_up(req->db))
			return rc;
	}
	if (PQntuples(r) != 1)
		return 1;
	vc->business = db_i64(r, 0, 0);
	vc->job = db_i64(r, 0, 1);
	vc->lead = db_i64(r, 0, 2);
	vc->live = outbound_job_in_flight(outbound_job_status_parse(db_str(r, 0, 3))) &&
		   !outbound_run_is_terminal(outbound_run_status_parse(db_str(r, 0, 4))) &&
		   !db_bool(r, 0, 5);
	script = db_str(r, 0, 6);
	if (script != NULL) {
		json_error_t jerr;

		vc->script =
		    json_arena(req->arena, json_loads(script, JSON_REJECT_DUPLICATES, &jerr));
		if (!json_is_object(vc->script))
			vc->script = NULL;
	}
	/* the callee's own number may be said to them; it never reaches a log */
	vc->scope = json_arena(req->arena, json_pack("{s:{s:o,s:o,s:o},s:{s:o}}", "lead", "name",
						     str_or_null(r, 7), "phone", str_or_null(r, 8),
						     "email", str_or_null(r, 9), "business", "name",
						     str_or_null(r, 10)));
	vc->caller_id = !db_isnull(r, 0, 11)				    ? db_str(r, 0, 11)
			: req->cfg->twilio_from && req->cfg->twilio_from[0] ? req->cfg->twilio_from
									    : NULL;
	return 0;
}

/*
 * One attempt of a <Gather> answer's writes: the digits on the job and, for
 * an opt-out, the lead's do_not_call (+ its audit row). *opted_out says
 * whether this request made the lead do_not_call.
 */
static int record_gather_once(http_request_t *req, const voice_call_t *vc, const char *digits,
			      bool opt_out, bool *opted_out)
{
	arena_t *a = req->arena;
	const char *bid = db_i64s(a, vc->business);
	PGresult *r;
	int rc;

	*opted_out = false;
	rc = db_begin(req->db);
	if (rc < 0)
		return rc;
	rc = db_set_tenant(req->db, a, vc->business, false);
	if (rc < 0)
		goto fail;
	if (digits != NULL && DB_EXEC(req->db, a, &rc, "webhook_gather_digits", bid,
				      db_i64s(a, vc->job), digits) == NULL)
		goto fail;
	if (opt_out) {
		r = DB_EXEC(req->db, a, &rc, "webhook_opt_out", bid, db_i64s(a, vc->lead));
		if (r == NULL)
			goto fail;
		if (PQntuples(r) == 1) {
			audit_event_t ev = {.tag = "AUDIT",
					    .action = "lead.opt_out",
					    .resource_type = "lead",
					    .resource_id = vc->lead,
					    .business_id = vc->business,
					    .outcome = "ok"};

			ev.details = json_arena(a, json_pack("{s:s, s:I}", "via", "dtmf", "job_id",
							     (json_int_t)vc->job));
			rc = audit_write(req->db, a, &ev);
			if (rc < 0)
				goto fail;
			*opted_out = true;
		}
	}
	rc = db_commit(req->db);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	db_rollback(req->db);
	*opted_out = false;
	return rc;
}

static int record_gather(http_request_t *req, const voice_call_t *vc, const char *digits,
			 bool opt_out, bool *opted_out)
{
	int rc = 0;

	for (int attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
		rc = record_gather_once(req, vc, digits, opt_out, opted_out);
		if (rc != ERR_RETRY)
			break;
	}
	return rc;
}

/* --- the handler ---------------------------------------------------------- */

/* <Gather>'s action: decide, record, answer. */
static void on_gather(http_request_t *req, const twiml_voice_req_t *vr, const char *raw_digits,
		      const voice_call_t *vc, const twiml_script_t *s, const twiml_ctx_t *c,
		      webhook_xml_t *x)
{
	twiml_choice_t ch;
	bool opted_out = false;
	char d[24];
	int rc;

	twiml_choose(s, raw_digits, &ch);
	/* an opt-out is honoured even when the run was cancelled meanwhile */
	rc = record_gather(req, vc, vr->digits, ch.kind == TWIML_CHOICE_OPT_OUT, &opted_out);
	log_info("webhook", "gather sid=%s job=%lld digits=%s choice=%d%s", vr->call_sid,
		 (long long)vc->job, log_sanitize(raw_digits ? raw_digits : "-", d, sizeof(d)),
		 (int)ch.kind, opted_out ? " opt_out=recorded" : "");
	if (rc < 0) {
		log_error("webhook", "gather sid=%s job=%lld not recorded: %s; apologising",
			  vr->call_sid, (long long)vc->job, err_code_name(rc));
		reply_apology(req, "db_error");
		return;
	}
	if (!vc->live && ch.kind != TWIML_CHOICE_OPT_OUT) {
		reply_hangup(req, 200, "call_not_live");
		return;
	}
	twiml_choice(x, s, c, &ch);
	reply_doc(req, 200, x->buf, x->len, ch.kind == TWIML_CHOICE_OPT_OUT ? "opt_out" : "gather");
}

int webhook_twilio_voice(http_request_t *req)
{
	const char *why = NULL, *mode;
	char voice_url[URL_MAX];
	twiml_voice_req_t vr;
	twiml_script_t s;
	twiml_ctx_t c;
	voice_call_t vc;
	webhook_xml_t x;
	form_t form;
	int rc;

	if (req->body_type != HTTP_BODY_FORM) {
		reply_hangup(req, 415, "not_form_encoded");
		return 0;
	}
	rc = webhook_twilio_verify(req, &form, &why);
	if (rc != WEBHOOK_VERIFIED) {
		reply_hangup(req, rc == WEBHOOK_BAD_FORM ? 400 : 403, why);
		return 0;
	}
	mode = http_query(req, "mode");
	if (twiml_voice_req_parse(&form, mode, &vr, &why) < 0 || vr.mode == TWIML_MODE_AMD) {
		reply_hangup(req, 400, why ? why : "unknown_mode");
		return 0;
	}
	rc = load_call(req, vr.call_sid, &vc);
	if (rc < 0) {
		log_error("webhook", "voice sid=%s: %s; apologising", vr.call_sid,
			  err_code_name(rc));
		reply_apology(req, "db_error");
		return 0;
	}
	req->log_business = vc.business;
	if (rc == 1) {
		log_info("webhook", "voice sid=%s: unknown call, hanging up", vr.call_sid);
		reply_hangup(req, 200, "unknown_call");
		return 0;
	}
	twiml_script_from_json(vc.script, &s);
	memset(&c, 0, sizeof(c));
	c.scope = vc.scope;
	c.caller_id = vc.caller_id;
	if (twilio_webhook_url(req->cfg->public_url, TWILIO_VOICE_PATH, voice_url,
			       sizeof(voice_url)) == 0)
		c.voice_url = voice_url;
	webhook_xml_init(&x, req->arena);
	if (vr.mode == TWIML_MODE_GATHER) {
		on_gather(req, &vr, form_get(&form, "Digits"), &vc, &s, &c, &x);
		return 0;
	}
	if (!vc.live) {
		log_info("webhook", "voice sid=%s job=%lld: finished or cancelled, hanging up",
			 vr.call_sid, (long long)vc.job);
		reply_hangup(req, 200, "call_not_live");
		return 0;
	}
	switch (vr.mode) {
	case TWIML_MODE_WHISPER:
		twiml_whisper(&x, &s, &c);
		break;
	case TWIML_MODE_VOICEMAIL:
		log_info("webhook", "voicemail sid=%s job=%lld", vr.call_sid, (long long)vc.job);
		twiml_voicemail(&x, &s, &c);
		break;
	case TWIML_MODE_DIAL_DONE:
		twiml_dial_done(&x, &s, &c, vr.dial_status);
		break;
	default:
		twiml_answer(&x, &s, &c,
			     vr.answered_by == TWIML_AMD_MACHINE_START ||
				 vr.answered_by == TWIML_AMD_MACHINE_END ||
				 vr.answered_by == TWIML_AMD_FAX);
		break;
	}
	reply_doc(req, 200, x.buf, x.len, NULL);
	return 0;
}
