/*
 * flow.h - the pure core of WhatsApp conversational flows: inbound reply
 * extraction, templating, transition conditions, definition validation and
 * the step machine. Nothing here touches the database, the network, the
 * clock or global state, so the webhook, the worker and the API's dry-run
 * simulator all drive the same code.
 *
 * Memory: every json_t this module hands out is a reference the caller owns
 * (jansson refcounting); every json_t it takes is borrowed unless the
 * contract says otherwise. Strings in flow_reply_t are malloc'd and released
 * by flow_reply_free(). Out of memory aborts with a log line, like the arena.
 *
 * Definitions have the shape of existing WhatsApp CRM flow files (API.md):
 *   {name, description?, trigger_keywords:[...], trigger_config?:{extraction_regex,
 *    context_variable}, is_active?, steps:[{name, type, is_entry_point?, config:{...},
 *    transitions:[{to_step, priority?, condition_config:{type, ...}}]}]}
 * and are validated whole by flow_validate() before the engine sees them.
 */
#ifndef DIALFLOW_FLOW_H
#define DIALFLOW_FLOW_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- bounds --------------------------------------------------------------- */

#define FLOW_NAME_MAX		   128	 /* bytes of a flow, step or variable name      */
#define FLOW_MAX_STEPS		   200	 /* steps in one definition                      */
#define FLOW_MAX_TRANSITIONS	   50	 /* transitions of one step                      */
#define FLOW_MAX_ACTIONS	   50	 /* actions_to_run of one action step            */
#define FLOW_MAX_KEYWORDS	   50	 /* trigger_keywords / condition keywords        */
#define FLOW_KEYWORD_MAX	   100	 /* bytes of one keyword                         */
#define FLOW_REGEX_MAX		   512	 /* bytes of one regular expression              */
#define FLOW_MAX_PROBLEMS	   200	 /* validation problems reported at most         */
#define FLOW_MAX_STEPS_PER_MESSAGE 20	 /* steps entered while handling one message     */
#define FLOW_MAX_RETRIES_LIMIT	   10	 /* upper bound of fallback_config.max_retries   */
#define FLOW_DEFAULT_MAX_RETRIES   2	 /* fallback_config.max_retries when absent      */
#define FLOW_CONTEXT_MAX_KEYS	   256	 /* top-level keys of a session context          */
#define FLOW_CONTEXT_MAX_BYTES	   65536 /* serialised session context                   */
#define FLOW_TEMPLATE_OUT_MAX	   16384 /* bytes of one rendered string                 */
#define FLOW_REPLY_TEXT_MAX	   16384 /* bytes of an inbound text (4096 chars in UTF-8) */
#define FLOW_REPLY_ID_MAX	   256	 /* bytes of an inbound interactive or media id  */
#define FLOW_REPLY_JSON_MAX	   65536 /* bytes of an nfm_reply response_json          */
#define FLOW_CONTACT_VALUE_MAX	   1000	 /* characters of one contact field update       */

/* WhatsApp Cloud API limits, in characters (code points). */
#define FLOW_WA_TEXT_BODY_MAX	     4096
#define FLOW_WA_CAPTION_MAX	     1024
#define FLOW_WA_INTERACTIVE_BODY_MAX 1024
#define FLOW_WA_HEADER_MAX	     60
#define FLOW_WA_FOOTER_MAX	     60
#define FLOW_WA_BUTTONS_MAX	     3
#define FLOW_WA_BUTTON_TITLE_MAX     20
#define FLOW_WA_BUTTON_ID_MAX	     256
#define FLOW_WA_LIST_BUTTON_MAX	     20
#define FLOW_WA_SECTIONS_MAX	     10
#define FLOW_WA_ROWS_MAX	     10 /* rows of a list message, all sections together */
#define FLOW_WA_ROW_ID_MAX	     200
#define FLOW_WA_ROW_TITLE_MAX	     24
#define FLOW_WA_ROW_DESC_MAX	     72
#define FLOW_WA_SECTION_TITLE_MAX    24
#define FLOW_WA_FLOW_CTA_MAX	     20

/*
 * The contact columns an update_contact_field action may write. Everything
 * else (ids, wa_id, needs_human, business_id, ...) is refused by the
 * validator and by the engine.
 */
#define FLOW_CONTACT_FIELDS                                                                        \
	{                                                                                          \
		"name", "email", "language", "notes"                                               \
	}

/* ---- inbound replies (reply.c) -------------------------------------------- */

/*
 * One inbound WhatsApp message reduced to what flows look at. `type` is the
 * message type ("text", "interactive", "button", "image", "document",
 * "audio", "video", "sticker", "location", "contacts", "reaction") or
 * "unsupported" for anything else, including malformed input.
 */
typedef struct flow_reply {
	char type[16];
	char subtype[16];      /* interactive.type: button_reply, list_reply, nfm_reply; else "" */
	char *text;	       /* text.body, a reply title, button.text or a caption; or NULL */
	char *interactive_id;  /* button_reply.id, list_reply.id or button.payload; or NULL */
	char *media_id;	       /* image/document/audio/video/sticker id; or NULL */
	char *media_mime;      /* its mime_type; or NULL */
	json_t *location;      /* {latitude, longitude, name?, address?, url?}; or NULL */
	json_t *contacts;      /* the contacts array as sent; or NULL */
	json_t *reaction;      /* {message_id?, emoji?}; or NULL */
	json_t *flow_response; /* nfm_reply: the parsed response_json object; or NULL */
} flow_reply_t;

/*
 * Reduce `msg` (one element of entry[].changes[].value.messages[]) into *out,
 * which is overwritten. Lengths are bounded (longer texts are cut at a
 * character boundary, longer ids dropped) and no field's type is trusted.
 * Returns 0, or -1 when msg is not an object with a string "type" (out is then
 * "unsupported"). Release *out with flow_reply_free() in both cases.
 */
int flow_reply_parse(const json_t *msg, flow_reply_t *out);
/* A text reply, as the simulator sends it; text may be NULL. Release with flow_reply_free(). */
void flow_reply_init_text(flow_reply_t *out, const char *text);
/* Release what a reply holds and zero it. NULL-safe. */
void flow_reply_free(flow_reply_t *r);

/* ---- templating (template.c) ---------------------------------------------- */

/*
 * Templates are "{{ dotted.path | filter | filter(...) }}" over a scope
 * object: the session context, plus "contact" (the contact) and
 * "flow_context" (the context again). A path is words of [A-Za-z0-9_-]
 * separated by '.', and a word of digits indexes an array ("items.0.name").
 * Filters: default('x') (used when the value is missing, null or ""), upper,
 * lower, title (ASCII letters only); they chain left to right. A missing
 * value renders "". Numbers render in their shortest form, objects and
 * arrays as compact JSON, null as "".
 *
 * Template syntax never reaches a user: a tag that does not parse (bad path,
 * unknown filter, a nested "{{") renders as "", an unterminated "{{" and a
 * stray "}}" are dropped, and no "{{" or "}}" is ever produced from the
 * template's own text. Values are substituted once, never re-rendered, so a
 * user's text that holds "{{ x }}" stays as it is.
 */

/* The value at `path` in scope (borrowed), or NULL when any segment is missing. */
json_t *flow_path_get(const json_t *scope, const char *path);
/* Render `tpl` into a new malloc'd string of at most FLOW_TEMPLATE_OUT_MAX bytes (cut at a
 * character boundary). scope may be NULL. Never returns NULL. */
char *flow_template_render_string(const char *tpl, const json_t *scope);
/*
 * Render a JSON value: strings are rendered, arrays and objects recursively
 * (keys are not), other values copied. A string that is exactly one tag
 * (surrounding spaces allowed) keeps the JSON type of its value unless a
 * case filter turns it into text. Returns a new reference; NULL in gives null.
 */
json_t *flow_template_render(const json_t *value, const json_t *scope);
/* Whether s holds "{{" (so it is worth rendering). */
bool flow_template_has_tags(const char *s);

/* ---- conditions (conditions.c) -------------------------------------------- */

/*
 * What a condition sees. reply is NULL while the engine falls through steps
 * that do not wait, so reply conditions never match a stale message there.
 */
typedef struct flow_cond_input {
	const flow_reply_t *reply;
	const json_t *scope; /* variables: see the templating scope above */
	bool reply_valid;    /* the reply passed the question's validation */
} flow_cond_input_t;

/*
 * Whether condition_config `cond` holds. Keys (the original files' names):
 * user_reply_matches_keyword / user_reply_contains_keyword take `keyword`
 * (or `keywords`, a list, or `value`) and `case_sensitive` (false); the
 * first compares the whole trimmed reply, the second looks for whole words.
 * user_reply_matches_regex takes `regex` (or `value`) and `case_sensitive`
 * (false) and searches anywhere (anchor with ^ $). interactive_reply_id_equals
 * and message_type_is take `value`. variable_* take `variable_name` (may hold
 * tags) and `value`; the numeric ones compare numbers, and strings that parse
 * strictly as numbers. variable_equals with value "" also matches a missing
 * variable. question_reply_is_valid takes `value` (true).
 * user_requests_human takes `keywords` (default FLOW_HUMAN_PHRASES).
 * whatsapp_flow_response_received takes `variable_name`
 * (whatsapp_flow_response_received). A malformed condition is false.
 */
bool flow_condition_eval(const json_t *cond, const flow_cond_input_t *in);
/*
 * Check a condition_config at `path` (e.g. "steps[1].transitions[0].condition_config"),
 * appending {path, message} problems to the array `problems`. Returns problems added.
 */
size_t flow_condition_validate(const json_t *cond, const char *path, json_t *problems);
/* Whether the condition type is known. */
bool flow_condition_type_known(const char *type);
/* Whether the condition looks at the reply itself (so it may route an invalid reply). */
bool flow_condition_inspects_reply(const json_t *cond);

#define FLOW_HUMAN_PHRASES                                                                         \
	{                                                                                          \
		"human", "agent", "operator", "representative", "real person", "talk to a person", \
		    "talk to someone", "customer service"                                          \
	}

/*
 * Compile a POSIX extended regex from a flow file (at most FLOW_REGEX_MAX
 * bytes). Perl's \d and \D (also in brackets) become [0-9] and [^0-9], since
 * files written for Python use them, and a lazy '?' after a repetition
 * ("(.*?)") is dropped (matching does not depend on it). Refused, because
 * glibc compiles them in exponential time or POSIX leaves them undefined:
 * back-references, stacked repetitions ("a+*"), deeply nested counted
 * repetitions, and more than a few repetitions of what can match nothing
 * ("(a?)+"). flags are added to REG_EXTENDED. Returns 0, or -1 with a reason
 * in why (static text). On success the caller regfree()s re.
 */
int flow_regex_compile(regex_t *re, const char *pattern, int flags, const char **why);
/*
 * Whether `needle` occurs in `hay` as whole words: the characters around it
 * are not letters, digits or '_' (bytes >= 0x80 count as letters), ASCII case
 * folded unless case_sensitive. Both may hold spaces ("talk to a person").
 */
bool flow_word_match(const char *hay, const char *needle, bool case_sensitive);
/* Parse s strictly as a decimal number ([+-]digits[.digits][e[+-]digits], spaces around
 * allowed, no hex, inf or nan). Returns 0 and sets *out, or -1. */
int flow_number_parse(const char *s, double *out);
/* Characters (UTF-8 code points) in s. */
size_t flow_utf8_len(const char *s);
/* Append {"path": path, "message": msg} to problems unless it already holds FLOW_MAX_PROBLEMS
 * entries (then a last "too many problems" entry is added once). Returns 1 if added. */
size_t flow_problem_add(json_t *problems, const char *path, const char *msg);

/* ---- validation (validate.c) ---------------------------------------------- */

/*
 * Validate a whole flow definition, appending EVERY problem as
 * {"path":"steps[2].config.reply_config.expected_type","message":"..."} to
 * the array `problems`. Returns the number of problems added (0 = valid).
 * The caller bounds the definition's size before decoding it.
 */
size_t flow_validate(const json_t *def, json_t *problems);
/* Whether update_contact_field may write `field` (see FLOW_CONTACT_FIELDS). */
bool flow_contact_field_allowed(const char *field);

/* ---- the step machine (engine.c) ------------------------------------------ */

/* One stored flow version, as the caller's storage knows it. */
typedef struct flow_def_ref {
	int64_t flow_id;
	int64_t version_id;
	const json_t *definition; /* borrowed; a validated definition */
} flow_def_ref_t;

/*
 * A contact's conversation. The caller loads it from its state row with
 * flow_session_load() (or starts one with flow_engine_start()), runs the
 * engine, then persists it: when `active` is false the state row goes away.
 */
typedef struct flow_session {
	bool active;
	int64_t flow_id;
	int64_t flow_version_id;
	const json_t *definition; /* borrowed: must outlive the session's use */
	char current_step[FLOW_NAME_MAX + 1];
	json_t *context;    /* owned reference: the flow's variables (object)   */
	json_t *awaiting;   /* owned reference or NULL: what the step waits for */
	int fallback_count; /* invalid replies at the current step so far      */
} flow_session_t;

typedef struct flow_env {
	/* Find the ACTIVE flow `name` for switch_flow: fill *out (definition borrowed, living as
	 * long as the session) and return 0, or -1 when there is none. May be NULL. */
	int (*load_flow)(void *ud, const char *name, flow_def_ref_t *out);
	void *ud;
	const json_t *contact;	  /* {wa_id, name, ...} for templates; borrowed; may be NULL */
	const char *apology_text; /* the one message sent on an internal error; NULL: default */
} flow_env_t;

/*
 * What handling one message produced. Apply all of it in one transaction.
 * messages are Graph API message bodies without messaging_product,
 * recipient_type and to, ready to POST. On an internal error (error != NULL)
 * the result already holds exactly one apology message, handover set and the
 * session ended: the caller applies it like any other and logs `error`.
 */
typedef struct flow_result {
	json_t *messages;	 /* array of {"type":..., <type>:{...}}                   */
	json_t *contact_updates; /* object: whitelisted contact field -> string or null */
	json_t *events;		 /* array of {"event":..., "flow":..., ...} for FLOW_STATE audit */
	bool handover;		 /* flag the contact for a human                         */
	const char *handover_reason; /* static: "step", "retries_exhausted", "dead_end", "error" */
	bool ended;		     /* the session is over (its state row goes away)          */
	bool switched;		     /* the session now runs another flow                      */
	char switched_to[FLOW_NAME_MAX + 1];
	int64_t switched_flow_id;
	int64_t switched_version_id;
	const char *error; /* NULL, or a static reason ("step_limit", "unknown_step", ...) */
	/* when the session ended during this call: its context at the end (owned), else NULL */
	json_t *final_context;
} flow_result_t;

/* An empty result (arrays and object allocated). */
void flow_result_init(flow_result_t *res);
/* Release what a result holds and zero it. NULL-safe. */
void flow_result_free(flow_result_t *res);

/* A zeroed, inactive session. */
void flow_session_init(flow_session_t *s);
/*
 * Restore a session from storage into s (initialised; what it held is
 * released). context and awaiting are borrowed and copied (deep), so the
 * caller's objects are never mutated; context NULL or not an object gives {}.
 * Returns 0, or -1 (s inactive) when step is too long.
 */
int flow_session_load(flow_session_t *s, const flow_def_ref_t *flow, const char *step,
		      const json_t *context, const json_t *awaiting, int fallback_count);
/* Release what the session holds and make it inactive. NULL-safe. */
void flow_session_clear(flow_session_t *s);

/* One trigger candidate: an active flow. name NULL means the definition's name. */
typedef struct flow_candidate {
	const char *name;
	flow_def_ref_t flow;
} flow_candidate_t;

/*
 * Pick the flow that `text` triggers, for a contact with no active session.
 * A keyword matches as whole words, case-insensitively; the longest matching
 * keyword wins, ties go to the smaller flow name. Returns the candidate's
 * index, or -1 (and *initial_context NULL). On a match *initial_context is a
 * new object holding trigger_config.context_variable when
 * trigger_config.extraction_regex matched text (first capture group, or the
 * whole match, trimmed).
 */
int flow_trigger_match(const flow_candidate_t *flows, size_t n, const char *text,
		       json_t **initial_context);

/*
 * Start `flow` for a contact: the session (initialised; what it held is
 * released) becomes active on
 * the entry step with a copy of initial_context (borrowed; NULL gives {}),
 * and the engine runs until the first step that waits or ends. *res is
 * overwritten (release with flow_result_free()). Returns 0, or -1 when the
 * flow failed (res->error; res is still complete, see flow_result_t).
 */
int flow_engine_start(const flow_env_t *env, flow_session_t *s, const flow_def_ref_t *flow,
		      const json_t *initial_context, flow_result_t *res);
/*
 * Handle one inbound reply for an active session: validate it against the
 * waiting question, save it, follow transitions (ascending priority, first
 * match wins) through the steps that do not wait, at most
 * FLOW_MAX_STEPS_PER_MESSAGE of them. The session is updated in place.
 * *res is overwritten. Returns 0, or -1 when the flow failed (see flow_result_t).
 */
int flow_engine_handle(const flow_env_t *env, flow_session_t *s, const flow_reply_t *reply,
		       flow_result_t *res);

#endif
