/*
 * test_form.c - the strict form-encoded parser of provider callbacks
 * (form.h), and the XML escaping of the TwiML the voice webhook writes
 * (webhooks.h).
 */
#include "../unit/testutil.h"

#include <stdio.h>
#include <string.h>

#include "dialflow/form.h"
#include "dialflow/webhooks.h"

static int setup(void **state)
{
	*state = arena_new(4096);
	return 0;
}

static int teardown(void **state)
{
	arena_free(*state);
	return 0;
}

/* Parse a NUL-terminated body; returns form_parse()'s result. */
static int parse(arena_t *a, const char *body, form_t *f, const char **why)
{
	*why = NULL;
	return form_parse(a, body, strlen(body), f, why);
}

static void test_twilio_status_callback(void **state)
{
	const char *why;
	form_t f;

	assert_int_equal(parse(*state,
			       "AccountSid=AC123&ApiVersion=2010-04-01&CallSid=CA0f&CallStatus="
			       "no-answer&Called=%2B15551234567&From=%2B15557654321&Timestamp="
			       "Tue%2C+31+Aug+2010+20%3A36%3A28+%2B0000&CallDuration=0",
			       &f, &why),
			 0);
	assert_int_equal(f.n, 8);
	assert_string_equal(form_get(&f, "CallStatus"), "no-answer");
	assert_string_equal(form_get(&f, "Called"), "+15551234567");
	assert_string_equal(form_get(&f, "Timestamp"), "Tue, 31 Aug 2010 20:36:28 +0000");
	assert_string_equal(f.params[0].name, "AccountSid");
	assert_string_equal(f.params[7].value, "0");
	assert_null(form_get(&f, "callstatus")); /* names are case-sensitive */
	assert_null(form_get(&f, "Missing"));
}

static void test_decoding(void **state)
{
	const char *why;
	form_t f;

	assert_int_equal(parse(*state, "a+b=c+d&%41%62=%e2%82%ac&e=&f&g=%3d%26", &f, &why), 0);
	assert_int_equal(f.n, 5);
	assert_string_equal(form_get(&f, "a b"), "c d");
	assert_string_equal(form_get(&f, "Ab"), "\xe2\x82\xac"); /* upper and lower hex digits */
	assert_string_equal(form_get(&f, "e"), "");
	assert_string_equal(form_get(&f, "f"), ""); /* no '=': an empty value */
	assert_string_equal(form_get(&f, "g"), "=&");
	/* '=' inside a value is kept */
	assert_int_equal(parse(*state, "k=a=b", &f, &why), 0);
	assert_string_equal(form_get(&f, "k"), "a=b");
}

static void test_repeated_names_kept_in_order(void **state)
{
	const char *why;
	const char **names, **values;
	form_t f;

	assert_int_equal(parse(*state,
			       "StatusCallbackEvent=initiated&To=%2B1555&StatusCallbackEvent="
			       "ringing&StatusCallbackEvent=answered",
			       &f, &why),
			 0);
	assert_int_equal(f.n, 4);
	assert_int_equal(form_count(&f, "StatusCallbackEvent"), 3);
	assert_int_equal(form_count(&f, "To"), 1);
	assert_int_equal(form_count(&f, "From"), 0);
	assert_string_equal(form_get(&f, "StatusCallbackEvent"), "initiated");
	assert_string_equal(f.params[2].value, "ringing");
	assert_string_equal(f.params[3].value, "answered");
	assert_int_equal(form_arrays(*state, &f, &names, &values), 0);
	assert_string_equal(names[3], "StatusCallbackEvent");
	assert_string_equal(values[1], "+1555");
}

static void test_empty_body(void **state)
{
	const char **names, **values;
	const char *why;
	form_t f;

	assert_int_equal(form_parse(*state, "", 0, &f, &why), 0);
	assert_int_equal(f.n, 0);
	assert_null(form_get(&f, "a"));
	assert_int_equal(form_arrays(*state, &f, &names, &values), 0);
	assert_null(names);
	assert_null(values);
}

static void test_rejected(void **state)
{
	static const char *const bad[] = {
	    "a=%",   "a=%4",	 "a=%zz",	"a=%4g",	  "%=1",
	    "a=%00", "%00=1",	 "a=1&&b=2",	"&a=1",		  "a=1&",
	    "=1",    "a=1&=2",	 "a=\x01",	"a=x\ty",	  "a=\x7f",
	    "a=%ff", "a=%c0%af", "a=%ed%a0%80", "a=%f4%90%80%80", "a=%e2%82",
	    "%c3=1",
	};
	const char *why;
	form_t f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(*state, bad[i], &f, &why) != -1) {
			print_error("accepted: \"%s\"\n", bad[i]);
			fail();
		}
		assert_non_null(why);
	}
	/* a raw NUL inside the body */
	assert_int_equal(form_parse(*state, "a=1\0b=2", 7, &f, &why), -1);
	/* only the given length is read */
	assert_int_equal(form_parse(*state, "a=1&b=2", 3, &f, &why), 0);
	assert_int_equal(f.n, 1);
	assert_string_equal(form_get(&f, "a"), "1");
}

static void test_limits(void **state)
{
	char body[FORM_MAX_VALUE_LEN * 3 + 64];
	const char *why;
	form_t f;
	size_t n;

	/* FORM_MAX_PARAMS pairs pass, one more does not */
	n = 0;
	for (int i = 0; i < FORM_MAX_PARAMS; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%sp%d=%d", i ? "&" : "", i, i);
	assert_int_equal(form_parse(*state, body, n, &f, &why), 0);
	assert_int_equal(f.n, FORM_MAX_PARAMS);
	n += (size_t)snprintf(body + n, sizeof(body) - n, "&x=1");
	assert_int_equal(form_parse(*state, body, n, &f, &why), -1);
	/* the longest value, decoded, passes; one byte more does not (encoded or not) */
	memcpy(body, "v=", 2);
	memset(body + 2, 'x', FORM_MAX_VALUE_LEN);
	assert_int_equal(form_parse(*state, body, 2 + FORM_MAX_VALUE_LEN, &f, &why), 0);
	assert_int_equal(strlen(form_get(&f, "v")), FORM_MAX_VALUE_LEN);
	body[2 + FORM_MAX_VALUE_LEN] = 'x';
	assert_int_equal(form_parse(*state, body, 3 + FORM_MAX_VALUE_LEN, &f, &why), -1);
	n = 2;
	for (int i = 0; i < FORM_MAX_VALUE_LEN; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%%41");
	assert_int_equal(form_parse(*state, body, n, &f, &why), 0); /* 3x the bytes, decoded fits */
	memcpy(body + n, "%41", 3);
	assert_int_equal(form_parse(*state, body, n + 3, &f, &why), -1);
	/* names */
	memset(body, 'n', FORM_MAX_NAME_LEN);
	memcpy(body + FORM_MAX_NAME_LEN, "=1", 2);
	assert_int_equal(form_parse(*state, body, FORM_MAX_NAME_LEN + 2, &f, &why), 0);
	memset(body, 'n', FORM_MAX_NAME_LEN + 1);
	memcpy(body + FORM_MAX_NAME_LEN + 1, "=1", 2);
	assert_int_equal(form_parse(*state, body, FORM_MAX_NAME_LEN + 3, &f, &why), -1);
}

static void test_xml_escaping(void **state)
{
	webhook_xml_t x;

	webhook_xml_init(&x, *state);
	webhook_xml_raw(&x, "<Say>");
	webhook_xml_text(&x, "Tom & \"Jerry\" <b>'s\x01\x7f\ttab\nnl ש");
	webhook_xml_raw(&x, "</Say>");
	assert_string_equal(x.buf, "<Say>Tom &amp; &quot;Jerry&quot; &lt;b&gt;&apos;s  \ttab\nnl "
				   "ש</Say>");
	assert_int_equal(x.len, strlen(x.buf));
	webhook_xml_text(&x, NULL);
	assert_int_equal(x.len, strlen(x.buf));
}

/* The buffer grows across many arena chunks and stays one string. */
static void test_xml_growth(void **state)
{
	webhook_xml_t x;

	webhook_xml_init(&x, *state);
	for (int i = 0; i < 5000; i++)
		webhook_xml_text(&x, "<&>");
	assert_int_equal(x.len, 5000 * strlen("&lt;&amp;&gt;"));
	assert_int_equal(strlen(x.buf), x.len);
	assert_memory_equal(x.buf + x.len - 13, "&lt;&amp;&gt;", 13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_twilio_status_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decoding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repeated_names_kept_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xml_escaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xml_growth, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
