/*
 * test_sandbox_twiml.c - the sandbox's TwiML reader and plan (sandbox.h):
 * the XML subset (elements, attributes, text, entities, CDATA, comments),
 * refusals of malformed documents with a reason, every bound, the plan of
 * each verb with its timing at a given speed, and DIALFLOW_SANDBOX_DIGITS.
 */
#include "../unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/sandbox.h"

static arena_t *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(65536);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

/* Parse NUL-terminated text; fail the test with the reason when it is refused. */
static sandbox_xml_node_t *parse_ok(const char *doc)
{
	sandbox_xml_node_t *root = NULL;
	char err[160];

	if (sandbox_xml_parse(A, doc, strlen(doc), &root, err, sizeof(err)) != 0) {
		print_error("refused: %s\n  %s\n", err, doc);
		fail();
	}
	assert_non_null(root);
	return root;
}

/* The reason a document is refused (it must be, with a reason, and no tree). */
static const char *parse_err(const char *doc, size_t len)
{
	static char err[160];
	sandbox_xml_node_t *root = (sandbox_xml_node_t *)1;

	err[0] = '\0';
	if (sandbox_xml_parse(A, doc, len, &root, err, sizeof(err)) == 0) {
		print_error("accepted: %.*s\n", (int)(len > 200 ? 200 : len), doc);
		fail();
	}
	assert_null(root);
	assert_true(strncmp(err, "byte ", 5) == 0);
	return err;
}

static void expect_refused(const char *doc, const char *why)
{
	const char *err = parse_err(doc, strlen(doc));

	if (strstr(err, why) == NULL) {
		print_error("%s: reason \"%s\", expected \"%s\"\n", doc, err, why);
		fail();
	}
}

/* What the voice webhook answers for a gather script (src/webhooks/twilio_voice.c). */
static const char gather_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
    "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" method=\"POST\" "
    "action=\"https://localhost:8443/webhooks/twilio/voice?step=gather&amp;x=1\">"
    "<Say voice=\"Polly.Joanna\" language=\"en-US\">Hi &lt;script&gt;&amp;&quot;&apos;</Say>"
    "</Gather><Say>No answer. Goodbye.</Say><Hangup/></Response>";

static void test_tree(void **state)
{
	sandbox_xml_node_t *r = parse_ok(gather_doc), *g, *say;

	(void)state;
	assert_string_equal(r->name, "Response");
	assert_null(r->parent);
	g = r->child;
	assert_non_null(g);
	assert_string_equal(g->name, "Gather");
	assert_ptr_equal(g->parent, r);
	assert_int_equal(g->nattrs, 5);
	assert_string_equal(sandbox_xml_attr(g, "numDigits"), "1");
	assert_string_equal(sandbox_xml_attr(g, "action"),
			    "https://localhost:8443/webhooks/twilio/voice?step=gather&x=1");
	assert_null(sandbox_xml_attr(g, "finishOnKey"));
	say = g->child;
	assert_string_equal(say->name, "Say");
	assert_string_equal(say->text, "Hi <script>&\"'");
	assert_int_equal(say->text_len, strlen("Hi <script>&\"'"));
	assert_null(say->next);
	assert_string_equal(g->next->name, "Say");
	assert_string_equal(g->next->text, "No answer. Goodbye.");
	assert_string_equal(g->next->next->name, "Hangup");
	assert_int_equal(g->next->next->nattrs, 0);
	assert_null(g->next->next->child);
	assert_ptr_equal(r->last_child, g->next->next);
	assert_null(g->next->next->next);
}

static void test_entities_and_text(void **state)
{
	sandbox_xml_node_t *r;

	(void)state;
	r = parse_ok("<a b='&#39;x&#x41;&#233;&#x1F600;'>&#60;&lt;&gt;&amp;&quot;&apos;</a>");
	assert_string_equal(sandbox_xml_attr(r, "b"), "'xA\xc3\xa9\xf0\x9f\x98\x80");
	assert_string_equal(r->text, "<<>&\"'");
	/* attribute values: TAB CR LF become spaces; '>' is fine */
	r = parse_ok("<a b=\"x\ty\nz\r>\" c='\"'/>");
	assert_string_equal(sandbox_xml_attr(r, "b"), "x y z >");
	assert_string_equal(sandbox_xml_attr(r, "c"), "\"");
	/* text around children is concatenated; CDATA is taken as is */
	r = parse_ok("<a>one <b/>two<![CDATA[ <&> ]]><!-- no --><?pi x?>three</a>");
	assert_string_equal(r->text, "one two <&> three");
	assert_string_equal(r->child->name, "b");
	/* prolog, BOM, comments and white space around the root */
	r = parse_ok("\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- c -->\n<Response>\n</Response>\n"
		     "<!-- after -->\n");
	assert_string_equal(r->name, "Response");
	assert_string_equal(r->text, "\n");
	/* UTF-8 passes through; names may hold - . _ : and digits */
	r = parse_ok("<x:a-b.c_1 d-e=\"1\">Grüße</x:a-b.c_1 >");
	assert_string_equal(r->name, "x:a-b.c_1");
	assert_string_equal(r->text, "Grüße");
	assert_string_equal(sandbox_xml_attr(r, "d-e"), "1");
	assert_string_equal(parse_ok("<a/>")->text, "");
	assert_string_equal(parse_ok("<a ></a >")->name, "a");
}

static void test_malformed(void **state)
{
	(void)state;
	expect_refused("", "no root element");
	expect_refused("   \n", "no root element");
	expect_refused("<!-- only a comment -->", "no root element");
	expect_refused("hello", "text outside the root element");
	expect_refused("<a></a>x", "text outside the root element");
	expect_refused("<a/><b/>", "a second root element");
	expect_refused("<a><b></a></b>", "end tag does not match");
	expect_refused("<a>", "unclosed element");
	expect_refused("<a><b>", "unclosed element");
	expect_refused("</a>", "end tag does not match");
	expect_refused("<a", "unterminated start tag");
	expect_refused("<a b", "'=' expected");
	expect_refused("<a b=1/>", "quoted attribute value");
	expect_refused("<a b=\"1/>", "unterminated attribute value");
	expect_refused("<a b=\"1\"c=\"2\"/>", "space expected");
	expect_refused("<a b=\"1\" b=\"2\"/>", "duplicate attribute");
	expect_refused("<a b=\"<\"/>", "'<' in an attribute value");
	expect_refused("<1a/>", "a name was expected");
	expect_refused("< a/>", "a name was expected");
	expect_refused("<a></ a>", "a name was expected");
	expect_refused("<a></a b>", "'>' expected");
	expect_refused("<a>&foo;</a>", "unknown entity");
	expect_refused("<a>&amp</a>", "unknown entity");
	expect_refused("<a>& x</a>", "unknown entity");
	expect_refused("<a>&#;</a>", "bad character reference");
	expect_refused("<a>&#x;</a>", "bad character reference");
	expect_refused("<a>&#12a;</a>", "bad character reference");
	expect_refused("<a>&#65</a>", "bad character reference");
	expect_refused("<a>&#0;</a>", "does not allow");
	expect_refused("<a>&#xD800;</a>", "does not allow");
	expect_refused("<a>&#x110000;</a>", "does not allow");
	expect_refused("<a>&#123456789;</a>", "too long");
	expect_refused("<a b='&#1;'/>", "does not allow");
	expect_refused("<a>\x01</a>", "control character");
	expect_refused("<a b='\x1b'/>", "control character");
	expect_refused("<a><!-- \x02 --></a>", "control character");
	expect_refused("<a><!-- x </a>", "unterminated comment");
	expect_refused("<?xml version='1.0'", "unterminated <?...?>");
	expect_refused("<a><![CDATA[ x </a>", "unterminated CDATA");
	expect_refused("<![CDATA[x]]><a/>", "CDATA outside");
	expect_refused("<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", "DOCTYPE");
	expect_refused("<a><!ELEMENT x></a>", "DOCTYPE");
	/* a NUL byte inside the given length is a control character */
	assert_non_null(strstr(parse_err("<a>\0</a>", 8), "control character"));
}

static void test_bounds(void **state)
{
	char *doc;
	size_t cap = SANDBOX_XML_MAX_BYTES * 2, n;
	int i;

	(void)state;
	doc = malloc(cap);
	assert_non_null(doc);
	/* depth: SANDBOX_XML_MAX_DEPTH nested elements pass, one more does not */
	n = 0;
	for (i = 0; i < SANDBOX_XML_MAX_DEPTH; i++)
		n += (size_t)sprintf(doc + n, "<e>");
	for (i = 0; i < SANDBOX_XML_MAX_DEPTH; i++)
		n += (size_t)sprintf(doc + n, "</e>");
	parse_ok(doc);
	n = 0;
	for (i = 0; i <= SANDBOX_XML_MAX_DEPTH; i++)
		n += (size_t)sprintf(doc + n, "<e>");
	for (i = 0; i <= SANDBOX_XML_MAX_DEPTH; i++)
		n += (size_t)sprintf(doc + n, "</e>");
	expect_refused(doc, "nested too deep");
	/* self-closed elements do not nest */
	n = (size_t)sprintf(doc, "<r>");
	for (i = 0; i < 100; i++)
		n += (size_t)sprintf(doc + n, "<e/>");
	sprintf(doc + n, "</r>");
	parse_ok(doc);
	/* elements */
	n = (size_t)sprintf(doc, "<r>");
	for (i = 0; i < SANDBOX_XML_MAX_NODES - 1; i++)
		n += (size_t)sprintf(doc + n, "<e/>");
	sprintf(doc + n, "</r>");
	parse_ok(doc);
	n = (size_t)sprintf(doc, "<r>");
	for (i = 0; i < SANDBOX_XML_MAX_NODES; i++)
		n += (size_t)sprintf(doc + n, "<e/>");
	sprintf(doc + n, "</r>");
	expect_refused(doc, "too many elements");
	/* attributes */
	n = (size_t)sprintf(doc, "<r");
	for (i = 0; i < SANDBOX_XML_MAX_ATTRS; i++)
		n += (size_t)sprintf(doc + n, " a%d='%d'", i, i);
	sprintf(doc + n, "/>");
	assert_int_equal(parse_ok(doc)->nattrs, SANDBOX_XML_MAX_ATTRS);
	n = (size_t)sprintf(doc, "<r");
	for (i = 0; i <= SANDBOX_XML_MAX_ATTRS; i++)
		n += (size_t)sprintf(doc + n, " a%d='%d'", i, i);
	sprintf(doc + n, "/>");
	expect_refused(doc, "too many attributes");
	/* names */
	memset(doc, 0, cap);
	doc[0] = '<';
	memset(doc + 1, 'n', SANDBOX_XML_MAX_NAME);
	strcat(doc, "/>");
	parse_ok(doc);
	doc[0] = '<';
	memset(doc + 1, 'n', SANDBOX_XML_MAX_NAME + 1);
	doc[SANDBOX_XML_MAX_NAME + 2] = '\0';
	strcat(doc, "/>");
	expect_refused(doc, "name too long");
	/* size: exactly the bound passes, one byte more does not */
	n = (size_t)sprintf(doc, "<r>");
	memset(doc + n, ' ', SANDBOX_XML_MAX_BYTES - n - 4);
	strcpy(doc + SANDBOX_XML_MAX_BYTES - 4, "</r>");
	assert_int_equal(strlen(doc), SANDBOX_XML_MAX_BYTES);
	parse_ok(doc);
	assert_non_null(strstr(parse_err(doc, SANDBOX_XML_MAX_BYTES + 1), "too large"));
	/* the error text is cut to its buffer, never overflows */
	{
		sandbox_xml_node_t *root;
		char small[8];

		assert_int_equal(sandbox_xml_parse(A, "<a>", 3, &root, small, sizeof(small)), -1);
		assert_int_equal(strlen(small), sizeof(small) - 1);
		assert_int_equal(sandbox_xml_parse(A, "<a>", 3, &root, NULL, 0), -1);
	}
	free(doc);
}

static sandbox_plan_t plan_ok(const char *doc, int say_ms)
{
	sandbox_plan_t p;
	char err[160];

	if (sandbox_twiml_plan(A, parse_ok(doc), say_ms, &p, err, sizeof(err)) != 0) {
		print_error("plan refused: %s\n  %s\n", err, doc);
		fail();
	}
	return p;
}

static void expect_plan_refused(const char *doc, const char *why)
{
	sandbox_plan_t p;
	char err[160];

	err[0] = '\0';
	assert_int_equal(sandbox_twiml_plan(A, parse_ok(doc), 40, &p, err, sizeof(err)), -1);
	assert_int_equal(p.n, 0);
	if (strstr(err, why) == NULL) {
		print_error("%s: reason \"%s\", expected \"%s\"\n", doc, err, why);
		fail();
	}
}

static void test_plan_gather_script(void **state)
{
	sandbox_plan_t p = plan_ok(gather_doc, 40);

	(void)state;
	assert_int_equal(p.n, 4);
	assert_int_equal(p.steps[0].kind, SANDBOX_STEP_SAY);
	assert_true(p.steps[0].in_gather);
	assert_int_equal(p.steps[0].wait_ms, 14 * 40); /* "Hi <script>&\"'" */
	assert_int_equal(p.steps[1].kind, SANDBOX_STEP_GATHER);
	assert_string_equal(p.steps[1].verb, "Gather");
	assert_string_equal(p.steps[1].url,
			    "https://localhost:8443/webhooks/twilio/voice?step=gather&x=1");
	assert_int_equal(p.steps[1].num_digits, 1);
	assert_int_equal(p.steps[1].timeout_s, 5);
	assert_false(p.steps[1].action_on_empty);
	assert_int_equal(p.steps[2].kind, SANDBOX_STEP_SAY);
	assert_false(p.steps[2].in_gather);
	assert_int_equal(p.steps[2].wait_ms, 19 * 40);
	assert_int_equal(p.steps[3].kind, SANDBOX_STEP_HANGUP);
	assert_string_equal(p.steps[3].verb, "Hangup");
	/* a Gather without attributes or prompts */
	p = plan_ok("<Response><Gather actionOnEmptyResult=\"true\"/></Response>", 40);
	assert_int_equal(p.n, 1);
	assert_null(p.steps[0].url);
	assert_int_equal(p.steps[0].num_digits, 0);
	assert_int_equal(p.steps[0].timeout_s, 5);
	assert_true(p.steps[0].action_on_empty);
	p = plan_ok("<Response><Gather input=\"dtmf speech\" timeout=\"0\"><Pause length=\"2\"/>"
		    "<Play>https://x/a.mp3</Play></Gather></Response>",
		    40);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.steps[0].kind, SANDBOX_STEP_PAUSE);
	assert_true(p.steps[0].in_gather && p.steps[1].in_gather);
	assert_int_equal(p.steps[1].kind, SANDBOX_STEP_PLAY);
	assert_int_equal(p.steps[2].timeout_s, 0);
}

static void test_plan_timing(void **state)
{
	sandbox_plan_t p;

	(void)state;
	/* characters, not bytes; trimmed; loop; loop 0 plays SANDBOX_MAX_LOOPS times */
	p = plan_ok("<Response><Say>  Grüße  </Say><Say loop=\"3\">abcd</Say>"
		    "<Say loop=\"0\">ab</Say><Say loop=\"1000\">a</Say><Say/></Response>",
		    10);
	assert_int_equal(p.n, 5);
	assert_int_equal(p.steps[0].wait_ms, 50);
	assert_int_equal(p.steps[1].wait_ms, 120);
	assert_int_equal(p.steps[2].wait_ms, 20 * SANDBOX_MAX_LOOPS);
	assert_int_equal(p.steps[3].wait_ms, 10 * SANDBOX_MAX_LOOPS);
	assert_int_equal(p.steps[4].wait_ms, 0);
	/* one Say is capped; Pause (default 1 s) and Play scale with say_ms / real speech */
	p = plan_ok("<Response><Say>aaaaaaaaaa</Say><Pause/><Pause length=\"3\"/>"
		    "<Pause length=\"0\"/><Play loop=\"2\">u</Play></Response>",
		    SANDBOX_SAY_MAX_MS / 5);
	assert_int_equal(p.steps[0].wait_ms, SANDBOX_SAY_MAX_MS);
	assert_int_equal(p.steps[1].wait_ms, sandbox_scale_ms(SANDBOX_SAY_MAX_MS / 5, 1000));
	p = plan_ok("<Response><Pause/><Pause length=\"3\"/><Pause length=\"0\"/>"
		    "<Play loop=\"2\">u</Play></Response>",
		    SANDBOX_SPEECH_MS);
	assert_int_equal(p.steps[0].wait_ms, 1000); /* real time */
	assert_int_equal(p.steps[1].wait_ms, 3000);
	assert_int_equal(p.steps[2].wait_ms, 0);
	assert_int_equal(p.steps[3].wait_ms, 4000);
	p = plan_ok("<Response><Pause length=\"3\"/></Response>", 4);
	assert_int_equal(p.steps[0].wait_ms, 150); /* 3 s at 4/80 */
	p = plan_ok("<Response><Say>hello</Say><Pause length=\"9\"/></Response>", 0);
	assert_int_equal(p.steps[0].wait_ms, 0);
	assert_int_equal(p.steps[1].wait_ms, 0);
	assert_int_equal(sandbox_scale_ms(40, 1000), 500);
	assert_int_equal(sandbox_scale_ms(1000, INT64_C(1) << 40), 3600 * 1000);
	assert_int_equal(sandbox_scale_ms(40, -5), 0);
}

static void test_plan_dial_redirect_hangup(void **state)
{
	sandbox_plan_t p;

	(void)state;
	p = plan_ok("<Response><Say>Connecting</Say>"
		    "<Dial callerId=\"+15005550006\" timeout=\"20\" action=\"/dial-done\">"
		    "<Number url=\"https://localhost:8443/webhooks/twilio/voice?mode=whisper\">"
		    " +15551230001 </Number><Number>+15551230002</Number></Dial>"
		    "<Dial>+15551230003</Dial><Redirect method=\"POST\"> http://127.0.0.1/next "
		    "</Redirect><Reject/><Hangup></Hangup></Response>",
		    40);
	assert_int_equal(p.n, 6);
	assert_int_equal(p.steps[1].kind, SANDBOX_STEP_DIAL);
	assert_string_equal(p.steps[1].number, "+15551230001");
	assert_string_equal(p.steps[1].number_url,
			    "https://localhost:8443/webhooks/twilio/voice?mode=whisper");
	assert_string_equal(p.steps[1].caller_id, "+15005550006");
	assert_string_equal(p.steps[1].url, "/dial-done");
	assert_int_equal(p.steps[1].timeout_s, 20);
	assert_string_equal(p.steps[2].number, "+15551230003");
	assert_null(p.steps[2].number_url);
	assert_null(p.steps[2].url);
	assert_int_equal(p.steps[2].timeout_s, 30);
	assert_int_equal(p.steps[3].kind, SANDBOX_STEP_REDIRECT);
	assert_string_equal(p.steps[3].url, "http://127.0.0.1/next");
	assert_int_equal(p.steps[4].kind, SANDBOX_STEP_HANGUP);
	assert_string_equal(p.steps[4].verb, "Reject");
	assert_int_equal(p.steps[5].kind, SANDBOX_STEP_HANGUP);
	/* an empty document plans nothing: the call ends */
	p = plan_ok("<Response/>", 40);
	assert_int_equal(p.n, 0);
	p = plan_ok("<Response>\n  <!-- c -->\n</Response>", 40);
	assert_int_equal(p.n, 0);
}

static void test_plan_refusals(void **state)
{
	char doc[4096];
	size_t n;

	(void)state;
	expect_plan_refused("<Say>x</Say>", "not <Response>");
	expect_plan_refused("<Response>hello<Hangup/></Response>", "text directly inside");
	expect_plan_refused("<Response><Record/></Response>", "unsupported verb <Record>");
	expect_plan_refused("<Response><say>x</say></Response>", "unsupported verb <say>");
	expect_plan_refused("<Response><Gather><Dial>+15551230001</Dial></Gather></Response>",
			    "<Dial> is not allowed inside <Gather>");
	expect_plan_refused("<Response><Gather method=\"GET\"/></Response>", "POST only");
	expect_plan_refused("<Response><Gather input=\"speech\"/></Response>", "keys only");
	expect_plan_refused("<Response><Gather numDigits=\"0\"/></Response>", "numDigits");
	expect_plan_refused("<Response><Gather numDigits=\"x\"/></Response>", "numDigits");
	expect_plan_refused("<Response><Gather timeout=\"-1\"/></Response>", "timeout");
	expect_plan_refused("<Response><Say loop=\"1001\">x</Say></Response>", "loop");
	expect_plan_refused("<Response><Pause length=\"601\"/></Response>", "length");
	expect_plan_refused("<Response><Pause length=\"1.5\"/></Response>", "length");
	expect_plan_refused("<Response><Dial/></Response>", "without a number");
	expect_plan_refused("<Response><Dial><Number> </Number></Dial></Response>",
			    "without a number");
	expect_plan_refused("<Response><Dial><Client>bob</Client></Dial></Response>",
			    "<Number> only");
	expect_plan_refused("<Response><Dial timeout=\"0\">+15551230001</Dial></Response>",
			    "timeout");
	expect_plan_refused("<Response><Dial><Number method=\"GET\" url=\"/w\">+15551230001"
			    "</Number></Dial></Response>",
			    "POST only");
	expect_plan_refused("<Response><Redirect> </Redirect></Response>", "without a URL");
	expect_plan_refused("<Response><Redirect method=\"GET\">/x</Redirect></Response>",
			    "POST only");
	/* more steps than a plan holds */
	n = (size_t)sprintf(doc, "<Response>");
	for (int i = 0; i <= SANDBOX_MAX_STEPS; i++)
		n += (size_t)sprintf(doc + n, "<Pause/>");
	sprintf(doc + n, "</Response>");
	expect_plan_refused(doc, "more than 64 verbs");
	{
		sandbox_plan_t p;

		assert_int_equal(sandbox_twiml_plan(A, NULL, 40, &p, NULL, 0), -1);
	}
}

static void test_digits(void **state)
{
	sandbox_digit_choice_t c[SANDBOX_MAX_DIGIT_CHOICES];
	size_t n = 99;
	int ones = 0, twos = 0, nones = 0;

	(void)state;
	assert_int_equal(
	    sandbox_digits_parse("1:40,2:40,none:20", c, SANDBOX_MAX_DIGIT_CHOICES, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(c[0].keys, "1");
	assert_int_equal(c[0].weight, 40);
	assert_string_equal(c[2].keys, "");
	assert_int_equal(c[2].weight, 20);
	/* the rolls split by weight, in order */
	assert_string_equal(sandbox_pick_digits(c, n, 0), "1");
	assert_string_equal(sandbox_pick_digits(c, n, 39), "1");
	assert_string_equal(sandbox_pick_digits(c, n, 40), "2");
	assert_string_equal(sandbox_pick_digits(c, n, 79), "2");
	assert_string_equal(sandbox_pick_digits(c, n, 80), "");
	assert_string_equal(sandbox_pick_digits(c, n, 199), "");
	for (uint64_t r = 0; r < 1000; r++) {
		const char *k = sandbox_pick_digits(c, n, r * 7919);

		ones += strcmp(k, "1") == 0;
		twos += strcmp(k, "2") == 0;
		nones += k[0] == '\0';
	}
	assert_int_equal(ones + twos + nones, 1000);
	assert_true(ones == 400 && twos == 400 && nones == 200);
	assert_int_equal(sandbox_digits_parse("123#:5,*:0,none:0", c, 3, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(c[0].keys, "123#");
	assert_string_equal(sandbox_pick_digits(c, n, 12345), "123#");
	assert_int_equal(sandbox_digits_parse("none:0,1:0", c, 3, &n), 0);
	assert_string_equal(sandbox_pick_digits(c, n, 3), ""); /* all weights zero */
	assert_string_equal(sandbox_pick_digits(c, 0, 3), "");
	assert_int_equal(sandbox_digits_parse("12345678901234567890:1", c, 3, &n), 0);
	/* refusals leave nothing */
	assert_int_equal(sandbox_digits_parse("", c, 3, &n), -1);
	assert_int_equal(n, 0);
	assert_int_equal(sandbox_digits_parse(NULL, c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1:", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse(":5", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1:101", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1:-1", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("a:1", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1:1,", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1:1,,2:1", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1:1,1:2", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("none:1,none:2", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1:1,2:1,3:1,4:1", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("123456789012345678901:1", c, 3, &n), -1);
	assert_int_equal(sandbox_digits_parse("1 :1", c, 3, &n), -1);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tree),
	    cmocka_unit_test(test_entities_and_text),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_plan_gather_script),
	    cmocka_unit_test(test_plan_timing),
	    cmocka_unit_test(test_plan_dial_redirect_hangup),
	    cmocka_unit_test(test_plan_refusals),
	    cmocka_unit_test(test_digits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
