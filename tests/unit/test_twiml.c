/*
 * test_twiml.c - the TwiML of answered calls (twiml.h): every verb with its
 * attributes, each document the voice webhook answers, the choice a
 * <Gather> answer selects, templating over the lead and business, XML
 * escaping of hostile names, and the parsing of voice and AMD requests.
 * Documents are compared whole: Twilio reads exactly these bytes.
 */
#include "../unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/twiml.h"

#define HEAD	  "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
#define TAIL	  "</Response>"
#define VOICE_URL "https://calls.example.com/webhooks/twilio/voice"
#define HOSTILE	  "<script>&\"'"
#define ESCAPED	  "&lt;script&gt;&amp;&quot;&apos;"

typedef struct fx {
	arena_t *a;
	webhook_xml_t x;
	json_t *scope;
	twiml_ctx_t c;
} fx_t;

static int setup(void **state)
{
	fx_t *f = calloc(1, sizeof(*f));

	f->a = arena_new(4096);
	webhook_xml_init(&f->x, f->a);
	f->scope = json_pack("{s:{s:s,s:s,s:n},s:{s:s}}", "lead", "name", HOSTILE, "phone",
			     "+15550001234", "email", "business", "name", "Acme & Sons");
	f->c.scope = f->scope;
	f->c.voice_url = VOICE_URL;
	f->c.caller_id = "+15550000100";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_t *f = *state;

	json_decref(f->scope);
	arena_free(f->a);
	free(f);
	return 0;
}

/* A script from JSON text (the fixture keeps the reference alive until teardown). */
static json_t *script(fx_t *f, twiml_script_t *s, const char *json)
{
	json_error_t err;
	json_t *j = json_arena(f->a, json_loads(json, JSON_REJECT_DUPLICATES, &err));

	if (j == NULL)
		fail_msg("bad test JSON: %s", err.text);
	twiml_script_from_json(j, s);
	return j;
}

static void reset(fx_t *f)
{
	webhook_xml_init(&f->x, f->a);
}

#define DOC_IS(f, want)                                                                            \
	do {                                                                                       \
		assert_string_equal((f)->x.buf, (want));                                           \
		assert_int_equal((f)->x.len, strlen(want));                                        \
		reset(f);                                                                          \
	} while (0)

/* --- verbs ---------------------------------------------------------------- */

static void test_say(void **state)
{
	fx_t *f = *state;

	twiml_say(&f->x, "Hello", "en-GB", "Polly.Amy", 3);
	DOC_IS(f, "<Say voice=\"Polly.Amy\" language=\"en-GB\" loop=\"3\">Hello</Say>");
	twiml_say(&f->x, "Hello", NULL, "", 1); /* no attributes, loop 1 left out */
	DOC_IS(f, "<Say>Hello</Say>");
	twiml_say(&f->x, "x", "en", "alice", 99); /* capped at TWIML_REPEAT_MAX */
	DOC_IS(f, "<Say voice=\"alice\" language=\"en\" loop=\"5\">x</Say>");
	twiml_say(&f->x, "", "en", "alice", 1); /* nothing to say: no element */
	twiml_say(&f->x, NULL, "en", "alice", 1);
	DOC_IS(f, "");
	twiml_say(&f->x, HOSTILE, "en\"x", "a<b", 1);
	DOC_IS(f, "<Say voice=\"a&lt;b\" language=\"en&quot;x\">" ESCAPED "</Say>");
}

static void test_gather_dial_hangup_pause(void **state)
{
	fx_t *f = *state;

	twiml_gather_begin(&f->x, 1, 5, VOICE_URL);
	twiml_say(&f->x, "Press 1", NULL, NULL, 1);
	twiml_gather_end(&f->x);
	DOC_IS(f, "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" method=\"POST\" "
		  "action=\"" VOICE_URL "\"><Say>Press 1</Say></Gather>");
	twiml_dial(&f->x, "+15550000999", "+15550000100", 20, VOICE_URL "?mode=dial_done",
		   VOICE_URL "?mode=whisper&x=<1>");
	DOC_IS(f, "<Dial callerId=\"+15550000100\" timeout=\"20\" action=\"" VOICE_URL
		  "?mode=dial_done\" method=\"POST\"><Number url=\"" VOICE_URL
		  "?mode=whisper&amp;x=&lt;1&gt;\" method=\"POST\">+15550000999</Number></Dial>");
	twiml_dial(&f->x, "+15550000999", NULL, 0, NULL, NULL);
	DOC_IS(f, "<Dial><Number>+15550000999</Number></Dial>");
	twiml_hangup(&f->x);
	twiml_pause(&f->x, 2);
	twiml_pause(&f->x, 0);
	twiml_pause(&f->x, 600);
	DOC_IS(f, "<Hangup/><Pause length=\"2\"/><Pause length=\"1\"/><Pause length=\"60\"/>");
	assert_string_equal(twiml_hangup_doc, HEAD "<Hangup/>" TAIL);
	assert_string_equal(twiml_apology_doc, HEAD "<Say>" TWIML_APOLOGY "</Say><Hangup/>" TAIL);
}

/* --- documents ------------------------------------------------------------ */

static void test_answer_say_templated_and_escaped(void **state)
{
	fx_t *f = *state;
	twiml_script_t s;

	script(f, &s,
	       "{\"kind\":\"say\",\"text\":\"Hi {{ lead.name }}, {{ business.name }} calling.\","
	       "\"language\":\"en-US\",\"voice\":\"alice\",\"options\":{\"repeat\":2}}");
	twiml_answer(&f->x, &s, &f->c, false);
	DOC_IS(f, HEAD "<Say voice=\"alice\" language=\"en-US\" loop=\"2\">Hi " ESCAPED
		       ", Acme &amp; Sons calling.</Say><Hangup/>" TAIL);
	/* no script at all: the default greeting */
	twiml_script_from_json(NULL, &s);
	twiml_answer(&f->x, &s, &f->c, false);
	DOC_IS(f, HEAD "<Say>" TWIML_DEFAULT_TEXT "</Say><Hangup/>" TAIL);
	/* the template's own text is never re-rendered: a name holding tags stays as is */
	json_object_set_new(json_object_get(f->scope, "lead"), "name", json_string("{{ x }}"));
	script(f, &s, "{\"kind\":\"say\",\"text\":\"{{lead.name}}\"}");
	twiml_answer(&f->x, &s, &f->c, false);
	DOC_IS(f, HEAD "<Say>{{ x }}</Say><Hangup/>" TAIL);
}

static void test_answer_bridge(void **state)
{
	fx_t *f = *state;
	twiml_script_t s;

	script(f, &s,
	       "{\"kind\":\"bridge\",\"text\":\"Connecting you\",\"bridge_to\":\"+15550000999\","
	       "\"options\":{\"timeout\":20,\"whisper\":\"Lead {{lead.name}}\"}}");
	twiml_answer(&f->x, &s, &f->c, false);
	DOC_IS(f, HEAD "<Say>Connecting you</Say><Dial callerId=\"+15550000100\" timeout=\"20\" "
		       "action=\"" VOICE_URL
		       "?mode=dial_done\" method=\"POST\"><Number url=\"" VOICE_URL
		       "?mode=whisper\" method=\"POST\">+15550000999</Number></Dial>" TAIL);
	/* the agent's leg hears the whisper, then is connected (no <Hangup/>) */
	twiml_whisper(&f->x, &s, &f->c);
	DOC_IS(f, HEAD "<Say>Lead " ESCAPED "</Say>" TAIL);
	/* the bridge ended: the agent talked, or nobody answered */
	twiml_dial_done(&f->x, &s, &f->c, "completed");
	DOC_IS(f, HEAD "<Hangup/>" TAIL);
	twiml_dial_done(&f->x, &s, &f->c, "no-answer");
	DOC_IS(f, HEAD "<Say>" TWIML_DEFAULT_UNAVAILABLE "</Say><Hangup/>" TAIL);
	/* no whisper: no url on the <Number>; no caller id: none on the <Dial> */
	script(f, &s, "{\"kind\":\"bridge\",\"bridge_to\":\"+15550000999\"}");
	f->c.caller_id = NULL;
	twiml_answer(&f->x, &s, &f->c, false);
	DOC_IS(f, HEAD "<Dial action=\"" VOICE_URL "?mode=dial_done\" method=\"POST\"><Number>"
		       "+15550000999</Number></Dial>" TAIL);
	twiml_whisper(&f->x, &s, &f->c);
	DOC_IS(f, HEAD TAIL);
}

static void test_answer_gather_and_machine(void **state)
{
	fx_t *f = *state;
	twiml_script_t s;

	script(f, &s,
	       "{\"kind\":\"gather\",\"text\":\"Press 1 to talk, 2 to stop\",\"voice\":\"alice\","
	       "\"bridge_to\":\"+15550000999\",\"voicemail\":\"Sorry we missed you, "
	       "{{lead.name}}\",\"options\":{\"num_digits\":1,\"timeout\":7}}");
	twiml_answer(&f->x, &s, &f->c, false);
	DOC_IS(f, HEAD "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"7\" method=\"POST\" "
		       "action=\"" VOICE_URL "\"><Say voice=\"alice\">Press 1 to talk, 2 to "
		       "stop</Say></Gather><Say voice=\"alice\">" TWIML_DEFAULT_NOINPUT
		       "</Say><Hangup/>" TAIL);
	/* a machine (synchronous AnsweredBy): the voicemail */
	twiml_answer(&f->x, &s, &f->c, true);
	DOC_IS(f, HEAD "<Say voice=\"alice\">Sorry we missed you, " ESCAPED "</Say><Hangup/>" TAIL);
	/* redirected by the worker after async AMD */
	twiml_voicemail(&f->x, &s, &f->c);
	DOC_IS(f, HEAD "<Say voice=\"alice\">Sorry we missed you, " ESCAPED "</Say><Hangup/>" TAIL);
	script(f, &s, "{\"kind\":\"say\",\"text\":\"x\"}");
	twiml_voicemail(&f->x, &s, &f->c);
	DOC_IS(f, HEAD "<Hangup/>" TAIL);
	/* out-of-range options from an old row fall back to the defaults */
	script(
	    f, &s,
	    "{\"kind\":\"gather\",\"text\":\"t\",\"options\":{\"num_digits\":99,\"timeout\":0}}");
	f->c.voice_url = NULL;
	twiml_answer(&f->x, &s, &f->c, false);
	DOC_IS(f, HEAD "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" method=\"POST\">"
		       "<Say>t</Say></Gather><Say>" TWIML_DEFAULT_NOINPUT "</Say><Hangup/>" TAIL);
}

/* --- choices -------------------------------------------------------------- */

static void test_default_menu(void **state)
{
	fx_t *f = *state;
	twiml_script_t s;
	twiml_choice_t ch;

	script(f, &s,
	       "{\"kind\":\"gather\",\"text\":\"t\",\"bridge_to\":\"+15550000999\","
	       "\"options\":{\"whisper\":\"New lead\"}}");
	twiml_choose(&s, "1", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_BRIDGE);
	assert_string_equal(ch.bridge_to, "+15550000999");
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Dial callerId=\"+15550000100\" action=\"" VOICE_URL
		       "?mode=dial_done\" method=\"POST\"><Number url=\"" VOICE_URL
		       "?mode=whisper\" method=\"POST\">+15550000999</Number></Dial>" TAIL);
	twiml_choose(&s, "2", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_OPT_OUT);
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Say>" TWIML_DEFAULT_OPT_OUT "</Say><Hangup/>" TAIL);
	twiml_choose(&s, "3", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_INVALID);
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Say>" TWIML_DEFAULT_INVALID "</Say><Hangup/>" TAIL);
	twiml_choose(&s, NULL, &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_NO_INPUT);
	twiml_choose(&s, "", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_NO_INPUT);
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Say>" TWIML_DEFAULT_NOINPUT "</Say><Hangup/>" TAIL);
	/* no number to bridge to (an old row): an apology, never an empty <Dial> */
	script(f, &s, "{\"kind\":\"gather\",\"text\":\"t\"}");
	twiml_choose(&s, "1", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_BRIDGE);
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Say>" TWIML_DEFAULT_UNAVAILABLE "</Say><Hangup/>" TAIL);
}

static void test_explicit_choices(void **state)
{
	fx_t *f = *state;
	twiml_script_t s;
	twiml_choice_t ch;

	script(f, &s,
	       "{\"kind\":\"gather\",\"text\":\"t\",\"bridge_to\":\"+15550000999\","
	       "\"options\":{\"invalid\":\"Nope\",\"choices\":{"
	       "\"1\":{\"say\":\"Connecting\",\"action\":\"bridge\"},"
	       "\"5\":{\"say\":\"Sales now\",\"bridge_to\":\"+15550000555\"},"
	       "\"9\":{\"action\":\"opt_out\",\"say\":\"Bye {{lead.name}}\"},"
	       "\"0\":\"Our hours are 9 to 5\"}}}");
	twiml_choose(&s, "1", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_BRIDGE);
	assert_string_equal(ch.bridge_to, "+15550000999"); /* the script's number */
	twiml_choose(&s, "5", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_BRIDGE);
	assert_string_equal(ch.bridge_to, "+15550000555");
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f,
	       HEAD "<Say>Sales now</Say><Dial callerId=\"+15550000100\" action=\"" VOICE_URL
		    "?mode=dial_done\" method=\"POST\"><Number>+15550000555</Number></Dial>" TAIL);
	twiml_choose(&s, "9", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_OPT_OUT);
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Say>Bye " ESCAPED "</Say><Hangup/>" TAIL);
	twiml_choose(&s, "0", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_SAY);
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Say>Our hours are 9 to 5</Say><Hangup/>" TAIL);
	/* with explicit choices, 2 is just not one of them */
	twiml_choose(&s, "2", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_INVALID);
	twiml_choice(&f->x, &s, &f->c, &ch);
	DOC_IS(f, HEAD "<Say>Nope</Say><Hangup/>" TAIL);
	/* the list form */
	script(f, &s,
	       "{\"kind\":\"gather\",\"text\":\"t\",\"options\":{\"choices\":["
	       "{\"digit\":\"2\",\"action\":\"opt_out\"},{\"digit\":\"3\",\"say\":\"Three\"}]}}");
	twiml_choose(&s, "2", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_OPT_OUT);
	assert_null(ch.say);
	twiml_choose(&s, "3", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_SAY);
	assert_string_equal(ch.say, "Three");
	twiml_choose(&s, "1", &ch);
	assert_int_equal(ch.kind, TWIML_CHOICE_INVALID);
}

/* --- requests ------------------------------------------------------------- */

static form_t form_of(arena_t *a, const char *body)
{
	const char *why = NULL;
	form_t f;

	assert_int_equal(form_parse(a, body, strlen(body), &f, &why), 0);
	return f;
}

static void test_request_parsing(void **state)
{
	fx_t *f = *state;
	twiml_voice_req_t vr;
	const char *why;
	form_t fm;

	fm = form_of(f->a, "CallSid=CA1&CallStatus=in-progress");
	assert_int_equal(twiml_voice_req_parse(&fm, NULL, &vr, &why), 0);
	assert_int_equal(vr.mode, TWIML_MODE_ANSWER);
	assert_string_equal(vr.call_sid, "CA1");
	assert_null(vr.digits);
	assert_int_equal(vr.answered_by, TWIML_AMD_NONE);

	fm = form_of(f->a, "CallSid=CA1&Digits=2");
	assert_int_equal(twiml_voice_req_parse(&fm, NULL, &vr, &why), 0);
	assert_int_equal(vr.mode, TWIML_MODE_GATHER);
	assert_string_equal(vr.digits, "2");
	fm = form_of(f->a, "CallSid=CA1&Digits=12%2A%23");
	assert_int_equal(twiml_voice_req_parse(&fm, "gather", &vr, &why), 0);
	assert_string_equal(vr.digits, "12*#");
	/* not DTMF, or longer than the column: not stored, answered as invalid */
	fm = form_of(f->a, "CallSid=CA1&Digits=1%3Cx");
	assert_int_equal(twiml_voice_req_parse(&fm, NULL, &vr, &why), 0);
	assert_null(vr.digits);
	assert_true(vr.digits_invalid);
	fm = form_of(f->a, "CallSid=CA1&Digits=123456789012345678901");
	assert_int_equal(twiml_voice_req_parse(&fm, NULL, &vr, &why), 0);
	assert_null(vr.digits);
	assert_true(vr.digits_invalid);

	/* the agent's leg is a child call: the parent is the call we know */
	fm = form_of(f->a, "CallSid=CAchild&ParentCallSid=CAparent");
	assert_int_equal(twiml_voice_req_parse(&fm, "whisper", &vr, &why), 0);
	assert_int_equal(vr.mode, TWIML_MODE_WHISPER);
	assert_string_equal(vr.call_sid, "CAparent");
	fm = form_of(f->a, "CallSid=CA1&DialCallStatus=no-answer");
	assert_int_equal(twiml_voice_req_parse(&fm, "dial_done", &vr, &why), 0);
	assert_int_equal(vr.mode, TWIML_MODE_DIAL_DONE);
	assert_string_equal(vr.dial_status, "no-answer");
	fm = form_of(f->a, "CallSid=CA1&DialCallStatus=%3Cbad%3E");
	assert_int_equal(twiml_voice_req_parse(&fm, "dial_done", &vr, &why), 0);
	assert_null(vr.dial_status);
	assert_int_equal(twiml_voice_req_parse(&fm, "voicemail", &vr, &why), 0);
	assert_int_equal(vr.mode, TWIML_MODE_VOICEMAIL);

	/* refusals */
	assert_int_equal(twiml_voice_req_parse(&fm, "dance", &vr, &why), -1);
	assert_string_equal(why, "unknown_mode");
	fm = form_of(f->a, "CallSid=CA%2F1");
	assert_int_equal(twiml_voice_req_parse(&fm, NULL, &vr, &why), -1);
	assert_string_equal(why, "no_call_sid");
	fm = form_of(f->a, "CallStatus=ringing");
	assert_int_equal(twiml_voice_req_parse(&fm, NULL, &vr, &why), -1);

	/* AMD */
	fm = form_of(f->a, "CallSid=CA1&AnsweredBy=machine_end_beep&MachineDetectionDuration=4200");
	assert_int_equal(twiml_voice_req_parse(&fm, "amd", &vr, &why), 0);
	assert_int_equal(vr.mode, TWIML_MODE_AMD);
	assert_int_equal(vr.answered_by, TWIML_AMD_MACHINE_END);
	fm = form_of(f->a, "CallSid=CA1");
	assert_int_equal(twiml_voice_req_parse(&fm, "amd", &vr, &why), -1);
	assert_string_equal(why, "no_answered_by");
}

static void test_amd_values(void **state)
{
	static const struct {
		const char *in;
		twiml_amd_t v;
		const char *cls;
	} cases[] = {
	    {"human", TWIML_AMD_HUMAN, "human"},
	    {"machine_start", TWIML_AMD_MACHINE_START, "machine"},
	    {"machine_end_beep", TWIML_AMD_MACHINE_END, "machine"},
	    {"machine_end_silence", TWIML_AMD_MACHINE_END, "machine"},
	    {"machine_end_other", TWIML_AMD_MACHINE_END, "machine"},
	    {"fax", TWIML_AMD_FAX, "machine"},
	    {"unknown", TWIML_AMD_UNKNOWN, "unknown"},
	    {"robot", TWIML_AMD_UNKNOWN, "unknown"},
	    {"", TWIML_AMD_NONE, NULL},
	    {NULL, TWIML_AMD_NONE, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		twiml_amd_t v = twiml_amd_parse(cases[i].in);

		assert_int_equal(v, cases[i].v);
		if (cases[i].cls == NULL)
			assert_null(twiml_amd_class(v));
		else
			assert_string_equal(twiml_amd_class(v), cases[i].cls);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_say, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gather_dial_hangup_pause, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answer_say_templated_and_escaped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answer_bridge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answer_gather_and_machine, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_menu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_explicit_choices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_parsing, setup, teardown),
	    cmocka_unit_test(test_amd_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
