/*
 * webhooks.h - provider callbacks (API.md "Webhooks"): public routes with no
 * bearer token, each authenticated by its provider's signature before
 * anything in it is believed.
 *
 * Twilio's calls reach the API through nginx: the status callback updates
 * the call and its job (outbound_call_event) and the voice webhook answers
 * TwiML from the run's call script.
 */
#ifndef DIALFLOW_WEBHOOKS_H
#define DIALFLOW_WEBHOOKS_H

#include "dialflow/form.h"
#include "dialflow/http.h"

/* POST /webhooks/twilio/call-status: 204, 403 on a bad signature, 503 while the db is down. */
int webhook_twilio_status(http_request_t *req);
/*
 * POST /webhooks/twilio/voice: TwiML for the call's job, or, when Twilio
 * posts the Digits a <Gather> collected (its action is this URL), for the
 * choice. Always text/xml, even on errors.
 */
int webhook_twilio_voice(http_request_t *req);
/*
 * POST /webhooks/twilio/amd: the async answering-machine verdict. Records
 * answered_by on the job and, for a machine whose greeting ended, asks the
 * worker to leave the voicemail or hang up. 204 (also for an unknown call or
 * a repeat), 400 without CallSid/AnsweredBy, 403 on a bad signature.
 */
int webhook_twilio_amd(http_request_t *req);

/* Outcome of webhook_twilio_verify(). */
enum {
	WEBHOOK_VERIFIED = 0,
	WEBHOOK_FORBIDDEN = -1, /* no token configured, no or a bad signature: 403 */
	WEBHOOK_BAD_FORM = -2,	/* the body is not a well-formed form: 400     */
};

/*
 * Authenticate a Twilio webhook: parse the form body into *form (arena) and
 * check X-Twilio-Signature over cfg->public_url + the request URI + the
 * sorted parameters, in constant time. Refuses, never skips, when no auth
 * token is configured. Every refusal is logged with LOG_TAG_SECURITY (no
 * signature or token in the line). *why is a short static reason.
 */
int webhook_twilio_verify(http_request_t *req, form_t *form, const char **why);

/* A growing XML (TwiML) document in the request arena. */
typedef struct webhook_xml {
	arena_t *arena;
	char *buf; /* NUL-terminated */
	size_t len;
	size_t cap;
} webhook_xml_t;

void webhook_xml_init(webhook_xml_t *x, arena_t *a);
/* Append markup as is (our own literal tags). */
void webhook_xml_raw(webhook_xml_t *x, const char *s);
/*
 * Append text from outside as character data or an attribute value: & < > "
 * and ' escaped, and the bytes XML 1.0 cannot carry (control characters other
 * than tab, newline and return) replaced by spaces.
 */
void webhook_xml_text(webhook_xml_t *x, const char *s);

#endif
