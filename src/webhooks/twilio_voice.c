/*
 * twilio_voice.c - POST /webhooks/twilio/voice (API.md "Webhooks"): the TwiML
 * Twilio runs once a call is answered, and again with the Digits a <Gather>
 * collected (its action points back here).
 *
 * Every answer is TwiML (text/xml), whatever happens: a caller on the line
 * must never hear Twilio's "application error" because of us. An unknown,
 * finished or cancelled call gets <Hangup/>; a database or internal error
 * gets <Hangup/> too (and a log line), never a JSON 500.
 *
 * The script comes from the run: its snapshot `script` (taken when the run
 * was created, so editing a script never changes a run in progress), else
 * its call_scripts row; both {kind: say|bridge|gather, text, language,
 * voice, bridge_to?, options?, voicemail?}. Gather options:
 *   {"num_digits": 1..20 (1), "timeout": 1..60 s (5),
 *    "choices": {"1": {"say": "...", "bridge_to": "+E164"} | "text", ...},
 *    "no_input": "text", "invalid": "text"}
 * ("choices" may also be a list of {"digit", "say", "bridge_to"}). Bridge
 * options: {"timeout": 5..600 s} of the <Dial>.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/provider.h"
#include "dialflow/webhooks.h"

#define TWIML_CTYPE	"text/xml; charset=utf-8"
#define TWIML_HEAD	"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
#define TWIML_HANGUP	TWIML_HEAD "<Hangup/></Response>"
#define DEFAULT_TEXT	"Hello. This is an automated call. Goodbye."
#define DEFAULT_NOINPUT "We did not receive your answer. Goodbye."
#define DEFAULT_INVALID "Sorry, that is not one of the options. Goodbye."
#define MAX_SID_LEN	63
#define URL_MAX		2048

/* The run's script for one call, borrowed from the parsed JSON. */
typedef struct voice_script {
	const char *kind;
	const char *text;
	const char *language;
	const char *voice;
	const char *bridge_to;
	const char *voicemail;
	json_t *options;
} voice_script_t;

/* --- answers -------------------------------------------------------------- */

static void reply_twiml(http_request_t *req, int status, const char *doc, size_t len)
{
	http_reply_raw(req, status, TWIML_CTYPE, doc, len);
}

static void reply_hangup(http_request_t *req, int status, const char *note)
{
	reply_twiml(req, status, TWIML_HANGUP, strlen(TWIML_HANGUP));
	if (note != NULL)
		req->log_note = note;
}

static const char *jstr(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jint(const json_t *obj, const char *key, int min, int max, int def)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return def;
	return (int)json_integer_value(v);
}

static void say(webhook_xml_t *x, const voice_script_t *s, const char *text)
{
	if (text == NULL || text[0] == '\0')
		return;
	webhook_xml_raw(x, "<Say");
	if (s->voice != NULL && s->voice[0] != '\0') {
		webhook_xml_raw(x, " voice=\"");
		webhook_xml_text(x, s->voice);
		webhook_xml_raw(x, "\"");
	}
	if (s->language != NULL && s->language[0] != '\0') {
		webhook_xml_raw(x, " language=\"");
		webhook_xml_text(x, s->language);
		webhook_xml_raw(x, "\"");
	}
	webhook_xml_raw(x, ">");
	webhook_xml_text(x, text);
	webhook_xml_raw(x, "</Say>");
}

static void dial(webhook_xml_t *x, const char *number, int timeout_s)
{
	char attr[32];

	webhook_xml_raw(x, "<Dial");
	if (timeout_s > 0) {
		snprintf(attr, sizeof(attr), " timeout=\"%d\"", timeout_s);
		webhook_xml_raw(x, attr);
	}
	webhook_xml_raw(x, "><Number>");
	webhook_xml_text(x, number);
	webhook_xml_raw(x, "</Number></Dial>");
}

/* The choice for `digits` in options.choices (an object, or a list of {digit, ...}). */
static const json_t *find_choice(const json_t *options, const char *digits)
{
	const json_t *choices = json_object_get(options, "choices");
	const json_t *c;
	size_t i;

	if (digits == NULL || digits[0] == '\0')
		return NULL;
	if (json_is_object(choices))
		return json_object_get(choices, digits);
	json_array_foreach(choices, i, c)
	{
		const char *d = jstr(c, "digit");

		if (d != NULL && strcmp(d, digits) == 0)
			return c;
	}
	return NULL;
}

/* The TwiML of the first request of an answered call. */
static void render_answer(http_request_t *req, webhook_xml_t *x, const voice_script_t *s,
			  const char *answered_by)
{
	bool machine = answered_by != NULL &&
		       (strncmp(answered_by, "machine", 7) == 0 || strcmp(answered_by, "fax") == 0);
	const char *kind = s->kind != NULL ? s->kind : "say";

	if (machine) {
		say(x, s, s->voicemail);
		webhook_xml_raw(x, "<Hangup/>");
		return;
	}
	if (strcmp(kind, "bridge") == 0 && s->bridge_to != NULL && s->bridge_to[0] != '\0') {
		say(x, s, s->text);
		dial(x, s->bridge_to, jint(s->options, "timeout", 5, 600, 0));
		return;
	}
	if (strcmp(kind, "gather") == 0) {
		char url[URL_MAX], attr[64];

		if (twilio_webhook_url(req->cfg->public_url, TWILIO_VOICE_PATH, url, sizeof(url)) ==
		    0) {
			snprintf(attr, sizeof(attr), " numDigits=\"%d\" timeout=\"%d\"",
				 jint(s->options, "num_digits", 1, 20, 1),
				 jint(s->options, "timeout", 1, 60, 5));
			webhook_xml_raw(x, "<Gather input=\"dtmf\"");
			webhook_xml_raw(x, attr);
			webhook_xml_raw(x, " method=\"POST\" action=\"");
			webhook_xml_text(x, url);
			webhook_xml_raw(x, "\">");
			say(x, s, s->text);
			webhook_xml_raw(x, "</Gather>");
			/* reached only when the callee pressed nothing */
			say(x, s,
			    jstr(s->options, "no_input") ? jstr(s->options, "no_input")
							 : DEFAULT_NOINPUT);
			webhook_xml_raw(x, "<Hangup/>");
			return;
		}
	}
	say(x, s, s->text != NULL && s->text[0] != '\0' ? s->text : DEFAULT_TEXT);
	webhook_xml_raw(x, "<Hangup/>");
}

/* The TwiML after a <Gather>: the chosen option, or a polite goodbye. */
static void render_gather(webhook_xml_t *x, const voice_script_t *s, const char *digits)
{
	const json_t *choice = find_choice(s->options, digits);
	const char *text = NULL, *bridge = NULL;

	if (digits == NULL || digits[0] == '\0') {
		text =
		    jstr(s->options, "no_input") ? jstr(s->options, "no_input") : DEFAULT_NOINPUT;
	} else if (json_is_string(choice)) {
		text = json_string_value(choice);
	} else if (json_is_object(choice)) {
		text = jstr(choice, "say");
		bridge = jstr(choice, "bridge_to");
	} else {
		text = jstr(s->options, "invalid") ? jstr(s->options, "invalid") : DEFAULT_INVALID;
	}
	say(x, s, text);
	if (bridge != NULL && bridge[0] != '\0')
		dial(x, bridge, 0);
	else
		webhook_xml_raw(x, "<Hangup/>");
}

/* --- the database --------------------------------------------------------- */

/* The call as the voice webhook sees it. */
typedef struct voice_call {
	int64_t business;
	bool live;	/* the job still wants the call (not finished or cancelled) */
	json_t *script; /* NULL: no script (the default greeting) */
} voice_call_t;

/*
 * Look the call up in one read-only transaction scoped to its tenant.
 * Returns 0 (found), 1 (unknown call) or an ERR_* code.
 */
static int load_call(http_request_t *req, const char *sid, voice_call_t *vc)
{
	const char *job_status, *run_status, *script;
	PGresult *r;
	int rc;

	memset(vc, 0, sizeof(*vc));
	rc = db_begin(req->db);
	if (rc < 0)
		return rc;
	r = DB_EXEC(req->db, req->arena, &rc, "webhook_call_business", sid);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) != 1 || db_isnull(r, 0, 0)) {
		rc = 1;
		goto done;
	}
	vc->business = db_i64(r, 0, 0);
	rc = db_set_tenant(req->db, req->arena, vc->business, false);
	if (rc < 0)
		goto fail;
	r = DB_EXEC(req->db, req->arena, &rc, "webhook_voice_call", sid,
		    db_i64s(req->arena, vc->business));
	if (r == NULL)
		goto fail;
	if (PQntuples(r) != 1) {
		rc = 1;
		goto done;
	}
	job_status = db_str(r, 0, 0);
	run_status = db_str(r, 0, 1);
	script = db_str(r, 0, 3);
	vc->live = outbound_job_in_flight(outbound_job_status_parse(job_status)) &&
		   !db_bool(r, 0, 2) &&
		   !outbound_run_is_terminal(outbound_run_status_parse(run_status));
	if (script != NULL) {
		json_error_t jerr;

		vc->script =
		    json_arena(req->arena, json_loads(script, JSON_REJECT_DUPLICATES, &jerr));
		if (!json_is_object(vc->script))
			vc->script = NULL;
	}
	rc = 0;
done:
	if (db_commit(req->db) < 0) {
		db_rollback(req->db);
		return ERR_UNAVAIL;
	}
	return rc;
fail:
	db_rollback(req->db);
	return rc;
}

static bool sid_ok(const char *s)
{
	size_t n =
	    s ? strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") : 0;

	return s != NULL && n > 0 && n <= MAX_SID_LEN && s[n] == '\0';
}

int webhook_twilio_voice(http_request_t *req)
{
	const char *why = NULL, *sid;
	voice_script_t s = {0};
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
	sid = form_get(&form, "CallSid");
	if (!sid_ok(sid)) {
		reply_hangup(req, 400, "no_call_sid");
		return 0;
	}
	rc = load_call(req, sid, &vc);
	if (rc < 0) {
		log_error("webhook", "voice sid=%s: %s; answering <Hangup/>", sid,
			  err_code_name(rc));
		reply_hangup(req, 200, "db_error");
		return 0;
	}
	req->log_business = vc.business;
	if (rc == 1 || !vc.live) {
		log_info("webhook", "voice sid=%s: %s call, hanging up", sid,
			 rc == 1 ? "unknown" : "finished or cancelled");
		reply_hangup(req, 200, rc == 1 ? "unknown_call" : "call_not_live");
		return 0;
	}
	if (vc.script != NULL) {
		s.kind = jstr(vc.script, "kind");
		s.text = jstr(vc.script, "text");
		s.language = jstr(vc.script, "language");
		s.voice = jstr(vc.script, "voice");
		s.bridge_to = jstr(vc.script, "bridge_to");
		s.voicemail = jstr(vc.script, "voicemail");
		s.options = json_object_get(vc.script, "options");
	}
	webhook_xml_init(&x, req->arena);
	webhook_xml_raw(&x, TWIML_HEAD);
	if (form_get(&form, "Digits") != NULL) {
		/* <Gather>'s action: Twilio's first request never carries Digits */
		const char *digits = form_get(&form, "Digits");
		char d[24];

		log_info("webhook", "gather sid=%s digits=%s", sid,
			 log_sanitize(digits ? digits : "-", d, sizeof(d)));
		render_gather(&x, &s, digits);
	} else {
		render_answer(req, &x, &s, form_get(&form, "AnsweredBy"));
	}
	webhook_xml_raw(&x, "</Response>");
	reply_twiml(req, 200, x.buf, x.len);
	return 0;
}
