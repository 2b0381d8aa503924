/*
 * twiml.h - what an answered call does, as TwiML (API.md "Webhooks", issue 7).
 *
 * Pure: no database, no network, no clock. The voice webhook
 * (src/webhooks/twilio_voice.c) looks the call up, builds a twiml_ctx_t and
 * a twiml_script_t, and lets this module write the document; the unit tests
 * and the fuzzer drive it directly.
 *
 * A script is {kind: say|bridge|gather, text, language, voice, bridge_to?,
 * options?, voicemail?}. Its texts are templates over the scope
 * {"lead":{"name","phone","email"},"business":{"name"}} (flow templating,
 * flow_template_render_string). Options:
 *   every kind:  repeat 1..5 (the <Say loop> of the main text)
 *   bridge:      timeout 5..600 s (of the <Dial>), whisper (said to the agent
 *                before the callee is connected), unavailable (said to the
 *                callee when the agent does not answer)
 *   gather:      num_digits 1..20 (1), timeout 1..60 s (5), no_input,
 *                invalid, bridge_timeout 5..600 s, whisper, unavailable, and
 *                choices: {"<digits>": "text" | {"say"?, "action"?:
 *                "bridge"|"opt_out"|"say", "bridge_to"?}} (or a list of the
 *                same objects with a "digit"). With no choices, 1 bridges to
 *                the script's bridge_to and 2 opts out.
 *
 * Every document is complete and valid: "<?xml ...?><Response>...</Response>".
 * Everything that comes from outside (texts, names, numbers, URLs) is
 * XML-escaped (webhook_xml_text).
 */
#ifndef DIALFLOW_TWIML_H
#define DIALFLOW_TWIML_H

#include <jansson.h>
#include <stdbool.h>

#include "dialflow/form.h"
#include "dialflow/webhooks.h"

#define TWIML_CONTENT_TYPE "text/xml; charset=utf-8"
#define TWIML_DIGITS_MAX   20 /* outbound_call_jobs.digits */
#define TWIML_REPEAT_MAX   5

/* Fixed texts, when the script has none. */
#define TWIML_DEFAULT_TEXT	  "Hello. This is an automated call. Goodbye."
#define TWIML_DEFAULT_NOINPUT	  "We did not receive your answer. Goodbye."
#define TWIML_DEFAULT_INVALID	  "Sorry, that is not one of the options. Goodbye."
#define TWIML_DEFAULT_OPT_OUT	  "You will not be called again. Goodbye."
#define TWIML_DEFAULT_UNAVAILABLE "Sorry, nobody is available right now. Goodbye."
#define TWIML_APOLOGY		  "We are sorry, something went wrong. Goodbye."

/* A call script, borrowed from its JSON (twiml_script_from_json). */
typedef struct twiml_script {
	const char *kind; /* "say", "bridge" or "gather"; NULL is "say" */
	const char *text;
	const char *language;
	const char *voice;
	const char *bridge_to;
	const char *voicemail;
	const json_t *options; /* an object, or NULL */
} twiml_script_t;

/* What the TwiML uses besides the script. */
typedef struct twiml_ctx {
	const json_t *scope;   /* templating scope (see above); NULL renders texts as they are */
	const char *voice_url; /* absolute URL of the voice webhook, without a query */
	const char *caller_id; /* the business number shown to a bridged agent; NULL: none */
} twiml_ctx_t;

/* Fill s from a script object (NULL or a non-object gives the empty script). */
void twiml_script_from_json(const json_t *script, twiml_script_t *s);

/* --- verbs ---------------------------------------------------------------- */

void twiml_begin(webhook_xml_t *x); /* the XML declaration and <Response> */
void twiml_end(webhook_xml_t *x);   /* </Response> */
/* <Say voice language loop>text</Say>; nothing for a NULL or empty text. loop <= 1 is omitted. */
void twiml_say(webhook_xml_t *x, const char *text, const char *language, const char *voice,
	       int loop);
/* <Gather input="dtmf" numDigits timeout method="POST" action>; close with twiml_gather_end. */
void twiml_gather_begin(webhook_xml_t *x, int num_digits, int timeout_s, const char *action);
void twiml_gather_end(webhook_xml_t *x);
/*
 * <Dial callerId timeout action method="POST"><Number url method="POST">number</Number></Dial>;
 * caller_id, action and number_url may be NULL (attribute omitted), timeout_s <= 0 too.
 */
void twiml_dial(webhook_xml_t *x, const char *number, const char *caller_id, int timeout_s,
		const char *action, const char *number_url);
/* <Pause length="N"/> (1..60). */
void twiml_pause(webhook_xml_t *x, int seconds);
void twiml_hangup(webhook_xml_t *x);

/* Static documents: only <Hangup/>, and the apology of internal errors (<Say> + <Hangup/>). */
extern const char twiml_hangup_doc[];
extern const char twiml_apology_doc[];

/* --- documents ------------------------------------------------------------ */

/*
 * The first request of an answered call. machine: the provider already says
 * a machine answered (synchronous AnsweredBy): the voicemail text, then
 * <Hangup/>.
 */
void twiml_answer(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c, bool machine);

/* What a <Gather> answer means. */
typedef enum {
	TWIML_CHOICE_NO_INPUT, /* nothing pressed */
	TWIML_CHOICE_INVALID,  /* not one of the options (or not DTMF) */
	TWIML_CHOICE_SAY,      /* say a text, hang up */
	TWIML_CHOICE_BRIDGE,   /* say (optional), then <Dial> bridge_to */
	TWIML_CHOICE_OPT_OUT,  /* the lead becomes do_not_call; goodbye */
} twiml_choice_kind_t;

typedef struct twiml_choice {
	twiml_choice_kind_t kind;
	const char *say;       /* NULL: nothing (BRIDGE) or the default text */
	const char *bridge_to; /* BRIDGE: the number; NULL when none is configured */
} twiml_choice_t;

/* Decide what `digits` (NULL: none) select in s. Borrowed strings. */
void twiml_choose(const twiml_script_t *s, const char *digits, twiml_choice_t *out);
/* The document for a decided choice. */
void twiml_choice(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c,
		  const twiml_choice_t *ch);
/* The agent's leg before the bridge connects: the whisper text (an empty document: none). */
void twiml_whisper(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c);
/* After AMD found a machine (the worker redirected the call): voicemail text, <Hangup/>. */
void twiml_voicemail(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c);
/* The <Dial>'s action: the bridge ended (dial_status = DialCallStatus). */
void twiml_dial_done(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c,
		     const char *dial_status);

/* --- the requests --------------------------------------------------------- */

typedef enum {
	TWIML_MODE_ANSWER,    /* the call was answered (no mode, no Digits)           */
	TWIML_MODE_GATHER,    /* <Gather>'s action (Digits, or mode=gather)           */
	TWIML_MODE_WHISPER,   /* mode=whisper: the agent's leg (ParentCallSid)        */
	TWIML_MODE_VOICEMAIL, /* mode=voicemail: redirected after AMD found a machine */
	TWIML_MODE_DIAL_DONE, /* mode=dial_done: the <Dial>'s action                  */
	TWIML_MODE_AMD,	      /* POST /webhooks/twilio/amd: the async AMD verdict     */
} twiml_mode_t;

/* AnsweredBy. */
typedef enum {
	TWIML_AMD_NONE,		 /* absent */
	TWIML_AMD_HUMAN,	 /* human */
	TWIML_AMD_MACHINE_START, /* machine_start (MachineDetection=Enable) */
	TWIML_AMD_MACHINE_END,	 /* machine_end_beep | _silence | _other: the message ended */
	TWIML_AMD_FAX,		 /* fax */
	TWIML_AMD_UNKNOWN,	 /* unknown, or a value we do not know */
} twiml_amd_t;

/* A voice or AMD request after the signature held; strings borrowed from the form. */
typedef struct twiml_voice_req {
	twiml_mode_t mode;
	const char *call_sid; /* the call the job knows (a whisper's ParentCallSid) */
	const char *digits;   /* [0-9*#]{1,20}; NULL when absent, empty or invalid */
	bool digits_invalid;  /* Digits were given but are not DTMF */
	twiml_amd_t answered_by;
	const char *dial_status; /* DialCallStatus, [a-z-]{1,20}, or NULL */
} twiml_voice_req_t;

/*
 * Parse a signed form for `mode_param` (the decoded ?mode= of the URL, NULL
 * when absent; "amd" for the AMD webhook). Returns 0, or -1 with a short
 * static reason in *why: an unknown mode, no valid CallSid ([A-Za-z0-9],
 * 1..63), or an AMD request without AnsweredBy.
 */
int twiml_voice_req_parse(const form_t *f, const char *mode_param, twiml_voice_req_t *out,
			  const char **why);
twiml_amd_t twiml_amd_parse(const char *answered_by);
/* outbound_call_jobs.answered_by for v: "human", "machine", "unknown"; NULL for NONE. */
const char *twiml_amd_class(twiml_amd_t v);

#endif
