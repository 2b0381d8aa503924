/*
 * sandbox.h - dialflow-sandbox, a carrier simulator that speaks the subset of
 * the Twilio REST API the `twilio` provider uses (DESIGN §7).
 *
 * It listens on 127.0.0.1 (plain HTTP/1.1, keep-alive, poll()-based, bounded
 * requests) and checks each request as strictly as Twilio would: the path,
 * HTTP basic auth (account sid : auth token), the media type, the required
 * parameters and the StatusCallbackEvent values, answering with Twilio's JSON
 * call resource or its error shape. Every call then progresses on timers
 * (queued -> ringing -> in-progress -> completed | busy | no-answer | failed,
 * with configurable odds and durations), fetches its TwiML from Url when
 * answered, and posts SIGNED status callbacks (X-Twilio-Signature with the
 * same auth token) with Twilio's parameter names. Status=completed hangs a
 * live call up. Calls live in this process, so they outlive a worker crash,
 * as real calls do. Callbacks go only to loopback hosts.
 *
 * Test numbers (in the spirit of Twilio's magic numbers):
 *   To +15005550001  400 21211 invalid 'To'    From +15005550001  400 21212
 *   To +15005550429  429 20429                 To +15005550500    500 20500
 *   To +15005550408  the call is created but the answer never comes (the
 *                    client times out: "sent, answer lost")
 *
 * Answered calls run their TwiML (twiml.c reads it, carrier.c executes it on
 * the event loop): <Say> and <Pause> wait (DIALFLOW_SANDBOX_SAY_MS per
 * character), <Gather> presses keys by configured odds and posts its action,
 * <Dial><Number url> fetches the agent-side whisper and talks for
 * DIALFLOW_SANDBOX_TALK_MS before posting the Dial action, <Redirect> and a
 * REST update with Url=... move the call to another document, <Hangup/> and
 * the end of the document end it. A document that cannot be read ends the
 * call as Twilio's "application error" does, with the reason kept. Calls
 * created with MachineDetection get an AnsweredBy (DIALFLOW_SANDBOX_MACHINE_PCT),
 * posted to AsyncAmdStatusCallback after DIALFLOW_SANDBOX_AMD_MS (async), or
 * sent with the first TwiML fetch after that delay (sync).
 *
 * Introspection (no auth, loopback only): GET /__sandbox/calls[?to=&sid=]
 * lists every call with its raw create parameters, the keys it pressed, its
 * AnsweredBy, the verbs it executed, whether it was bridged or redirected,
 * and the application error that ended it (twiml_error); GET /__sandbox/stats.
 * POST /__sandbox/rules (form: prefix=+E164 prefix, and any of answer_pct
 * busy_pct noanswer_pct fail_pct machine_pct digits) gives calls to numbers
 * starting with that prefix their own odds, so that a test owns its numbers'
 * behaviour on a shared sandbox; GET lists them.
 */
#ifndef DIALFLOW_SANDBOX_H
#define DIALFLOW_SANDBOX_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialflow/arena.h"

/* One choice of DIALFLOW_SANDBOX_DIGITS: the keys a callee presses at a <Gather>, and its weight.
 */
#define SANDBOX_MAX_DIGIT_CHOICES 12
#define SANDBOX_MAX_KEYS	  20
typedef struct sandbox_digit_choice {
	char keys[SANDBOX_MAX_KEYS + 1]; /* "" : presses nothing ("none") */
	int weight;
} sandbox_digit_choice_t;

typedef struct sandbox_config {
	int port;	  /* DIALFLOW_SANDBOX_PORT (0: any free port, printed on stdout) */
	int answer_pct;	  /* DIALFLOW_SANDBOX_ANSWER_PCT (70): relative weights of... */
	int busy_pct;	  /* DIALFLOW_SANDBOX_BUSY_PCT (10)      ...the outcomes      */
	int noanswer_pct; /* DIALFLOW_SANDBOX_NOANSWER_PCT (15)                       */
	int fail_pct;	  /* DIALFLOW_SANDBOX_FAIL_PCT (5)                            */
	int ring_ms;	  /* DIALFLOW_SANDBOX_RING_MS (2000): ringing before the outcome */
	int talk_min_ms;  /* DIALFLOW_SANDBOX_TALK_MS "MIN-MAX" or "N" (3000-8000):  */
	int talk_max_ms;  /*   the conversation on a <Dial> bridge                   */
	int say_ms;	  /* DIALFLOW_SANDBOX_SAY_MS (40) per character of <Say>; the  */
			  /*   other waits are scaled by say_ms / SANDBOX_SPEECH_MS   */
	int machine_pct;  /* DIALFLOW_SANDBOX_MACHINE_PCT (0) of AMD calls           */
	int amd_ms;	  /* DIALFLOW_SANDBOX_AMD_MS (1500) until the AMD result      */
	sandbox_digit_choice_t digits[SANDBOX_MAX_DIGIT_CHOICES]; /* DIALFLOW_SANDBOX_DIGITS */
	size_t ndigits;	      /* ("1:40,2:40,none:20")                                     */
	uint64_t seed;	      /* DIALFLOW_SANDBOX_SEED (random): odds and durations  */
	int max_calls;	      /* DIALFLOW_SANDBOX_MAX_CALLS (10000) kept for listing  */
	int callback_retries; /* DIALFLOW_SANDBOX_CALLBACK_RETRIES (5) on 5xx/network */
	char *account_sid;    /* DIALFLOW_TWILIO_ACCOUNT_SID (required)               */
	char *auth_token;     /* DIALFLOW_TWILIO_AUTH_TOKEN_FILE contents (required)  */
	char *ca_file;	      /* DIALFLOW_SANDBOX_CA_FILE: CA for https callbacks ("") */
} sandbox_config_t;

/* Fill *cfg from the environment. Returns 0, or -1 with *err (static text). */
int sandbox_config_load(sandbox_config_t *cfg, const char **err);
void sandbox_config_free(sandbox_config_t *cfg);

/* Serve until SIGTERM/SIGINT. Returns 0 on a clean stop, -1 when it cannot start. */
int sandbox_run(const sandbox_config_t *cfg);

typedef enum {
	SANDBOX_ANSWER,
	SANDBOX_BUSY,
	SANDBOX_NOANSWER,
	SANDBOX_FAIL,
} sandbox_outcome_t;

/* The outcome a random `roll` picks under cfg's weights (all zero: answer). Pure. */
sandbox_outcome_t sandbox_pick_outcome(const sandbox_config_t *cfg, uint64_t roll);

/*
 * Parse a DIALFLOW_SANDBOX_DIGITS value: comma-separated KEYS:WEIGHT, KEYS
 * being 1..SANDBOX_MAX_KEYS of 0-9 * # or the word "none", WEIGHT 0..100, at
 * most `max` choices, no KEYS twice. Returns 0, or -1 (malformed; *n is 0).
 */
int sandbox_digits_parse(const char *spec, sandbox_digit_choice_t *out, size_t max, size_t *n);
/* The keys a random `roll` presses under the weights ("" : none; all weights zero: ""). Pure. */
const char *sandbox_pick_digits(const sandbox_digit_choice_t *c, size_t n, uint64_t roll);

/* --- TwiML (src/sandbox/twiml.c): a bounded XML reader and a document's plan --- */

#define SANDBOX_XML_MAX_BYTES 16384 /* a longer document is refused                */
#define SANDBOX_XML_MAX_DEPTH 8
#define SANDBOX_XML_MAX_NODES 256
#define SANDBOX_XML_MAX_ATTRS 16 /* per element                                 */
#define SANDBOX_XML_MAX_NAME  64
#define SANDBOX_SPEECH_MS     80    /* real text-to-speech: about 80 ms a character */
#define SANDBOX_SAY_MAX_MS    60000 /* one <Say> iteration lasts at most this      */
#define SANDBOX_MAX_LOOPS     10    /* loop="0" (Twilio: "forever") plays this often */
#define SANDBOX_MAX_STEPS     64

typedef struct sandbox_xml_attr {
	const char *name;
	const char *value; /* entities decoded */
} sandbox_xml_attr_t;

typedef struct sandbox_xml_node {
	const char *name;
	const char *text; /* the character data directly inside, decoded, concatenated ("") */
	size_t text_len;
	sandbox_xml_attr_t *attrs;
	size_t nattrs;
	struct sandbox_xml_node *parent, *child, *last_child, *next;
} sandbox_xml_node_t;

/*
 * Read one XML document of len bytes (at most SANDBOX_XML_MAX_BYTES) into a
 * tree in arena a: elements, attributes, character data, CDATA, comments and
 * processing instructions (skipped), the five predefined entities and
 * numeric character references. No DTD, no other entities; control
 * characters other than TAB CR LF are refused; depth, element count,
 * attributes and name lengths are bounded. Returns 0 with *root, or -1 with
 * a reason in err ("byte N: ...").
 */
int sandbox_xml_parse(arena_t *a, const char *src, size_t len, sandbox_xml_node_t **root, char *err,
		      size_t errsz);
/* The value of attribute `name` of n, or NULL. */
const char *sandbox_xml_attr(const sandbox_xml_node_t *n, const char *name);

typedef enum {
	SANDBOX_STEP_SAY,
	SANDBOX_STEP_PAUSE,
	SANDBOX_STEP_PLAY,
	SANDBOX_STEP_GATHER,
	SANDBOX_STEP_DIAL,
	SANDBOX_STEP_HANGUP,
	SANDBOX_STEP_REDIRECT,
} sandbox_step_kind_t;

/* One verb of a document, ready to execute. Strings live in the plan's arena. */
typedef struct sandbox_step {
	sandbox_step_kind_t kind;
	const char *verb;	/* the element's name: "Say", "Reject", ... */
	int wait_ms;		/* SAY PAUSE PLAY: its length, speed applied */
	bool in_gather;		/* a prompt nested in the GATHER step that follows */
	const char *url;	/* GATHER DIAL: action (NULL: none); REDIRECT: target */
	const char *number;	/* DIAL: the number (the first <Number>, or the text) */
	const char *number_url; /* DIAL: <Number url="..."> (the whisper), or NULL */
	const char *caller_id;	/* DIAL: callerId, or NULL */
	int num_digits;		/* GATHER: numDigits (0: not given) */
	int timeout_s;		/* GATHER (5), DIAL (30) */
	bool action_on_empty;	/* GATHER: actionOnEmptyResult="true" */
} sandbox_step_t;

typedef struct sandbox_plan {
	sandbox_step_t *steps;
	size_t n;
} sandbox_plan_t;

/*
 * The plan of a parsed document: root <Response>, verbs Say (loop), Pause
 * (length), Play (loop; 2 s of audio), Gather (action method numDigits
 * timeout input actionOnEmptyResult; Say, Pause and Play inside, planned
 * first as in_gather prompts), Dial (action method timeout callerId; one or
 * more <Number url method> or a number as text), Hangup, Reject, Redirect
 * (method). Methods other than POST, unknown verbs, nouns or attribute values
 * out of range are errors, as they would be a bug in the application.
 * say_ms: the speed (SANDBOX_SPEECH_MS is real time). Returns 0, or -1 with
 * a reason in err.
 */
int sandbox_twiml_plan(arena_t *a, const sandbox_xml_node_t *root, int say_ms, sandbox_plan_t *plan,
		       char *err, size_t errsz);
/* real_ms of real time at speed say_ms (capped at an hour). */
int sandbox_scale_ms(int say_ms, int64_t real_ms);

/* --- the HTTP/1.1 server (src/sandbox/httpd.c) ---------------------------- */

#define SANDBOX_MAX_HEAD  16384
#define SANDBOX_MAX_BODY  65536
#define SANDBOX_MAX_CONNS 128

typedef struct sandbox_req {
	const char *method;
	const char *path;  /* the target before '?', not decoded */
	const char *query; /* after '?', "" when none            */
	const char *authorization;
	const char *content_type;
	const char *body; /* body_len bytes, NUL-terminated      */
	size_t body_len;
} sandbox_req_t;

typedef struct sandbox_resp {
	int status;
	const char *content_type;
	const char *body; /* arena or static                      */
	size_t body_len;
	const char *extra_header; /* one "Name: value" line or NULL     */
	bool stall;		  /* never answer (fault injection)       */
} sandbox_resp_t;

/* Answer one request; the arena is reset after the response is queued. */
typedef void (*sandbox_handler_fn)(void *app, arena_t *a, const sandbox_req_t *req,
				   sandbox_resp_t *resp);

typedef struct sandbox_httpd sandbox_httpd_t;

/*
 * Listen on 127.0.0.1:port (0: any) and serve with fn(app, ...). *bound
 * receives the port. Returns NULL (logged) when it cannot listen.
 */
sandbox_httpd_t *sandbox_httpd_new(int port, sandbox_handler_fn fn, void *app, int *bound);
void sandbox_httpd_free(sandbox_httpd_t *h);
/* The descriptors to wait on (at most max); returns how many were written. */
size_t sandbox_httpd_pollfds(sandbox_httpd_t *h, struct pollfd *fds, size_t max);
/* Handle what poll() reported for the descriptors of the last sandbox_httpd_pollfds(). */
void sandbox_httpd_events(sandbox_httpd_t *h, const struct pollfd *fds, size_t n);

#endif
