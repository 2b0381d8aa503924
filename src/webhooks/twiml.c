/*
 * twiml.c - TwiML documents for answered calls, and the parsing of the
 * provider's voice and AMD requests (see twiml.h). Pure: the webhook
 * handlers own every database and network step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"
#include "dialflow/twiml.h"

#define TWIML_HEAD	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
#define MAX_SID_LEN	    63
#define MAX_DIAL_STATUS_LEN 20
#define QUERY_SEP	    "?mode="

const char twiml_hangup_doc[] = TWIML_HEAD "<Hangup/></Response>";
const char twiml_apology_doc[] = TWIML_HEAD "<Say>" TWIML_APOLOGY "</Say><Hangup/></Response>";

/* --- helpers -------------------------------------------------------------- */

static const char *jstr(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An integer option within [min, max], else def (validated on save; old rows may differ). */
static int jint(const json_t *obj, const char *key, int min, int max, int def)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return def;
	return (int)json_integer_value(v);
}

static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* text rendered over the scope, in the document's arena (text itself when it has no tags). */
static const char *render(webhook_xml_t *x, const twiml_ctx_t *c, const char *text)
{
	char *out;
	const char *copy;

	if (empty(text) || c == NULL || c->scope == NULL || !flow_template_has_tags(text))
		return text;
	out = flow_template_render_string(text, c->scope);
	copy = arena_strdup(x->arena, out);
	free(out);
	return copy;
}

/* A <Say> of a script text, templated, in the script's language and voice. */
static void say_text(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c,
		     const char *text, int loop)
{
	twiml_say(x, render(x, c, text), s->language, s->voice, loop);
}

static void attr(webhook_xml_t *x, const char *name, const char *value)
{
	webhook_xml_raw(x, " ");
	webhook_xml_raw(x, name);
	webhook_xml_raw(x, "=\"");
	webhook_xml_text(x, value);
	webhook_xml_raw(x, "\"");
}

static void attr_int(webhook_xml_t *x, const char *name, int value)
{
	char v[16];

	snprintf(v, sizeof(v), "%d", value);
	attr(x, name, v);
}

/* voice_url + "?mode=" + mode in the arena; NULL without a voice URL. */
static const char *mode_url(webhook_xml_t *x, const twiml_ctx_t *c, const char *mode)
{
	if (c == NULL || empty(c->voice_url))
		return NULL;
	return arena_sprintf(x->arena, "%s" QUERY_SEP "%s", c->voice_url, mode);
}

static bool is_kind(const twiml_script_t *s, const char *kind)
{
	return s->kind != NULL && strcmp(s->kind, kind) == 0;
}

/* --- the script ----------------------------------------------------------- */

void twiml_script_from_json(const json_t *script, twiml_script_t *s)
{
	const json_t *o;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(script))
		return;
	s->kind = jstr(script, "kind");
	s->text = jstr(script, "text");
	s->language = jstr(script, "language");
	s->voice = jstr(script, "voice");
	s->bridge_to = jstr(script, "bridge_to");
	s->voicemail = jstr(script, "voicemail");
	o = json_object_get(script, "options");
	s->options = json_is_object(o) ? o : NULL;
}

/* --- verbs ---------------------------------------------------------------- */

void twiml_begin(webhook_xml_t *x)
{
	webhook_xml_raw(x, TWIML_HEAD);
}

void twiml_end(webhook_xml_t *x)
{
	webhook_xml_raw(x, "</Response>");
}

void twiml_say(webhook_xml_t *x, const char *text, const char *language, const char *voice,
	       int loop)
{
	if (empty(text))
		return;
	webhook_xml_raw(x, "<Say");
	if (!empty(voice))
		attr(x, "voice", voice);
	if (!empty(language))
		attr(x, "language", language);
	if (loop > 1)
		attr_int(x, "loop", loop > TWIML_REPEAT_MAX ? TWIML_REPEAT_MAX : loop);
	webhook_xml_raw(x, ">");
	webhook_xml_text(x, text);
	webhook_xml_raw(x, "</Say>");
}

void twiml_gather_begin(webhook_xml_t *x, int num_digits, int timeout_s, const char *action)
{
	webhook_xml_raw(x, "<Gather input=\"dtmf\"");
	attr_int(x, "numDigits", num_digits);
	attr_int(x, "timeout", timeout_s);
	webhook_xml_raw(x, " method=\"POST\"");
	if (!empty(action))
		attr(x, "action", action);
	webhook_xml_raw(x, ">");
}

void twiml_gather_end(webhook_xml_t *x)
{
	webhook_xml_raw(x, "</Gather>");
}

void twiml_dial(webhook_xml_t *x, const char *number, const char *caller_id, int timeout_s,
		const char *action, const char *number_url)
{
	webhook_xml_raw(x, "<Dial");
	if (!empty(caller_id))
		attr(x, "callerId", caller_id);
	if (timeout_s > 0)
		attr_int(x, "timeout", timeout_s);
	if (!empty(action)) {
		attr(x, "action", action);
		webhook_xml_raw(x, " method=\"POST\"");
	}
	webhook_xml_raw(x, "><Number");
	if (!empty(number_url)) {
		attr(x, "url", number_url);
		webhook_xml_raw(x, " method=\"POST\"");
	}
	webhook_xml_raw(x, ">");
	webhook_xml_text(x, number);
	webhook_xml_raw(x, "</Number></Dial>");
}

void twiml_pause(webhook_xml_t *x, int seconds)
{
	webhook_xml_raw(x, "<Pause");
	attr_int(x, "length", seconds < 1 ? 1 : seconds > 60 ? 60 : seconds);
	webhook_xml_raw(x, "/>");
}

void twiml_hangup(webhook_xml_t *x)
{
	webhook_xml_raw(x, "<Hangup/>");
}

/* --- documents ------------------------------------------------------------ */

/* The bridge: <Dial> to number with the whisper, or an apology when there is no number. */
static void bridge(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c,
		   const char *number, int timeout_s)
{
	const char *whisper = jstr(s->options, "whisper");

	if (empty(number)) {
		const char *t = jstr(s->options, "unavailable");

		say_text(x, s, c, t ? t : TWIML_DEFAULT_UNAVAILABLE, 1);
		twiml_hangup(x);
		return;
	}
	twiml_dial(x, number, c ? c->caller_id : NULL, timeout_s, mode_url(x, c, "dial_done"),
		   empty(whisper) ? NULL : mode_url(x, c, "whisper"));
}

void twiml_answer(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c, bool machine)
{
	int repeat = jint(s->options, "repeat", 1, TWIML_REPEAT_MAX, 1);

	twiml_begin(x);
	if (machine) {
		say_text(x, s, c, s->voicemail, 1);
		twiml_hangup(x);
	} else if (is_kind(s, "bridge")) {
		say_text(x, s, c, s->text, repeat);
		bridge(x, s, c, s->bridge_to, jint(s->options, "timeout", 5, 600, 0));
	} else if (is_kind(s, "gather")) {
		const char *t = jstr(s->options, "no_input");

		twiml_gather_begin(x, jint(s->options, "num_digits", 1, TWIML_DIGITS_MAX, 1),
				   jint(s->options, "timeout", 1, 60, 5), c ? c->voice_url : NULL);
		say_text(x, s, c, s->text, repeat);
		twiml_gather_end(x);
		/* reached only when the callee pressed nothing */
		say_text(x, s, c, t ? t : TWIML_DEFAULT_NOINPUT, 1);
		twiml_hangup(x);
	} else {
		say_text(x, s, c, empty(s->text) ? TWIML_DEFAULT_TEXT : s->text, repeat);
		twiml_hangup(x);
	}
	twiml_end(x);
}

/* The explicit choice for `digits` (an object keyed by digits, or a list of {digit, ...}). */
static const json_t *find_choice(const json_t *choices, const char *digits)
{
	const json_t *ch;
	size_t i;

	if (json_is_object(choices))
		return json_object_get(choices, digits);
	json_array_foreach(choices, i, ch)
	{
		const char *d = jstr(ch, "digit");

		if (d != NULL && strcmp(d, digits) == 0)
			return ch;
	}
	return NULL;
}

static bool has_choices(const json_t *choices)
{
	return (json_is_object(choices) && json_object_size(choices) > 0) ||
	       (json_is_array(choices) && json_array_size(choices) > 0);
}

void twiml_choose(const twiml_script_t *s, const char *digits, twiml_choice_t *out)
{
	const json_t *choices = json_object_get(s->options, "choices"), *ch;
	const char *action;

	memset(out, 0, sizeof(*out));
	if (empty(digits)) {
		out->kind = TWIML_CHOICE_NO_INPUT;
		out->say = jstr(s->options, "no_input");
		return;
	}
	if (!has_choices(choices)) {
		/* the default menu: 1 talks to us, 2 stops the calls */
		if (strcmp(digits, "1") == 0) {
			out->kind = TWIML_CHOICE_BRIDGE;
			out->bridge_to = s->bridge_to;
		} else if (strcmp(digits, "2") == 0) {
			out->kind = TWIML_CHOICE_OPT_OUT;
		} else {
			out->kind = TWIML_CHOICE_INVALID;
			out->say = jstr(s->options, "invalid");
		}
		return;
	}
	ch = find_choice(choices, digits);
	if (json_is_string(ch)) {
		out->kind = TWIML_CHOICE_SAY;
		out->say = json_string_value(ch);
		return;
	}
	if (!json_is_object(ch)) {
		out->kind = TWIML_CHOICE_INVALID;
		out->say = jstr(s->options, "invalid");
		return;
	}
	out->say = jstr(ch, "say");
	action = jstr(ch, "action");
	if (action != NULL && strcmp(action, "opt_out") == 0) {
		out->kind = TWIML_CHOICE_OPT_OUT;
	} else if ((action != NULL && strcmp(action, "bridge") == 0) ||
		   !empty(jstr(ch, "bridge_to"))) {
		out->kind = TWIML_CHOICE_BRIDGE;
		out->bridge_to =
		    !empty(jstr(ch, "bridge_to")) ? jstr(ch, "bridge_to") : s->bridge_to;
	} else {
		out->kind = TWIML_CHOICE_SAY;
	}
}

void twiml_choice(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c,
		  const twiml_choice_t *ch)
{
	const char *text = ch->say;

	twiml_begin(x);
	switch (ch->kind) {
	case TWIML_CHOICE_BRIDGE:
		say_text(x, s, c, text, 1);
		bridge(x, s, c, ch->bridge_to, jint(s->options, "bridge_timeout", 5, 600, 0));
		twiml_end(x);
		return;
	case TWIML_CHOICE_OPT_OUT:
		text = text ? text : TWIML_DEFAULT_OPT_OUT;
		break;
	case TWIML_CHOICE_NO_INPUT:
		text = text ? text : TWIML_DEFAULT_NOINPUT;
		break;
	case TWIML_CHOICE_INVALID:
		text = text ? text : TWIML_DEFAULT_INVALID;
		break;
	case TWIML_CHOICE_SAY:
		break;
	}
	say_text(x, s, c, text, 1);
	twiml_hangup(x);
	twiml_end(x);
}

void twiml_whisper(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c)
{
	twiml_begin(x);
	/* no <Hangup/>: when this document ends, the agent is connected */
	say_text(x, s, c, jstr(s->options, "whisper"), 1);
	twiml_end(x);
}

void twiml_voicemail(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c)
{
	twiml_begin(x);
	say_text(x, s, c, s->voicemail, 1);
	twiml_hangup(x);
	twiml_end(x);
}

void twiml_dial_done(webhook_xml_t *x, const twiml_script_t *s, const twiml_ctx_t *c,
		     const char *dial_status)
{
	bool talked = dial_status != NULL && (strcmp(dial_status, "completed") == 0 ||
					      strcmp(dial_status, "answered") == 0);

	twiml_begin(x);
	if (!talked) {
		const char *t = jstr(s->options, "unavailable");

		say_text(x, s, c, t ? t : TWIML_DEFAULT_UNAVAILABLE, 1);
	}
	twiml_hangup(x);
	twiml_end(x);
}

/* --- the requests --------------------------------------------------------- */

static bool sid_ok(const char *s)
{
	size_t n =
	    s ? strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") : 0;

	return s != NULL && n > 0 && n <= MAX_SID_LEN && s[n] == '\0';
}

twiml_amd_t twiml_amd_parse(const char *v)
{
	if (v == NULL || v[0] == '\0')
		return TWIML_AMD_NONE;
	if (strcmp(v, "human") == 0)
		return TWIML_AMD_HUMAN;
	if (strcmp(v, "machine_start") == 0)
		return TWIML_AMD_MACHINE_START;
	if (strcmp(v, "machine_end_beep") == 0 || strcmp(v, "machine_end_silence") == 0 ||
	    strcmp(v, "machine_end_other") == 0)
		return TWIML_AMD_MACHINE_END;
	if (strcmp(v, "fax") == 0)
		return TWIML_AMD_FAX;
	return TWIML_AMD_UNKNOWN;
}

const char *twiml_amd_class(twiml_amd_t v)
{
	switch (v) {
	case TWIML_AMD_HUMAN:
		return "human";
	case TWIML_AMD_MACHINE_START:
	case TWIML_AMD_MACHINE_END:
	case TWIML_AMD_FAX:
		return "machine";
	case TWIML_AMD_UNKNOWN:
		return "unknown";
	default:
		return NULL;
	}
}

int twiml_voice_req_parse(const form_t *f, const char *mode_param, twiml_voice_req_t *out,
			  const char **why)
{
	static const struct {
		const char *name;
		twiml_mode_t mode;
	} modes[] = {{"answer", TWIML_MODE_ANSWER},	  {"gather", TWIML_MODE_GATHER},
		     {"whisper", TWIML_MODE_WHISPER},	  {"voicemail", TWIML_MODE_VOICEMAIL},
		     {"dial_done", TWIML_MODE_DIAL_DONE}, {"amd", TWIML_MODE_AMD}};
	const char *digits = form_get(f, "Digits"), *ds = form_get(f, "DialCallStatus");
	const char *parent = form_get(f, "ParentCallSid");
	size_t i, n;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (mode_param == NULL || mode_param[0] == '\0') {
		/* <Gather>'s action is the plain voice URL: Twilio's first request never has Digits
		 */
		out->mode = digits != NULL ? TWIML_MODE_GATHER : TWIML_MODE_ANSWER;
	} else {
		for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
			if (strcmp(mode_param, modes[i].name) == 0)
				break;
		if (i == sizeof(modes) / sizeof(modes[0])) {
			*why = "unknown_mode";
			return -1;
		}
		out->mode = modes[i].mode;
	}
	/* the agent's leg is a child call: its parent is the call the job knows */
	out->call_sid =
	    out->mode == TWIML_MODE_WHISPER && parent != NULL ? parent : form_get(f, "CallSid");
	if (!sid_ok(out->call_sid)) {
		*why = "no_call_sid";
		out->call_sid = NULL;
		return -1;
	}
	if (digits != NULL && digits[0] != '\0') {
		n = strspn(digits, "0123456789*#");
		if (n == strlen(digits) && n <= TWIML_DIGITS_MAX)
			out->digits = digits;
		else
			out->digits_invalid = true;
	}
	out->answered_by = twiml_amd_parse(form_get(f, "AnsweredBy"));
	if (out->mode == TWIML_MODE_AMD && out->answered_by == TWIML_AMD_NONE) {
		*why = "no_answered_by";
		return -1;
	}
	if (ds != NULL && ds[0] != '\0' && strlen(ds) <= MAX_DIAL_STATUS_LEN &&
	    strspn(ds, "abcdefghijklmnopqrstuvwxyz-") == strlen(ds))
		out->dial_status = ds;
	return 0;
}
