/*
 * test_flow_conditions.c - every transition condition type, matching and
 * not matching (conditions.c), with the original files' key names, plus
 * the shared helpers: whole-word matching, strict numbers, regexes.
 */
#include "../unit/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"

static json_t *scope;

static int setup(void **state)
{
	json_error_t e;

	(void)state;
	scope = json_loads("{\"age\":42,\"score\":\"7.5\",\"name\":\"Ann\",\"tags\":[\"vip\",3],"
			   "\"flag\":true,\"blank\":\"\",\"nothing\":null,\"code\":\"12abc\","
			   "\"idx\":1,\"list\":[\"a\",\"b\"],\"obj\":{\"k\":1},"
			   "\"whatsapp_flow_response_received\":true,\"form_done\":false,"
			   "\"contact\":{\"name\":\"Ann Lee\",\"language\":\"en\"}}",
			   JSON_REJECT_DUPLICATES, &e);
	return scope == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	json_decref(scope);
	return 0;
}

/* Evaluate condition `cond` (JSON text) against a reply and the scope. */
static bool eval_at(const char *cond, const flow_reply_t *reply, bool valid, int line)
{
	json_error_t e;
	json_t *c = json_loads(cond, JSON_REJECT_DUPLICATES, &e);
	flow_cond_input_t in = {.reply = reply, .scope = scope, .reply_valid = valid};
	bool res;

	if (c == NULL)
		fail_msg("line %d: bad test JSON %s", line, cond);
	res = flow_condition_eval(c, &in);
	json_decref(c);
	return res;
}

/* A reply parsed from a WhatsApp message object. */
static void reply_of(flow_reply_t *r, const char *msg)
{
	json_t *m = json_loads(msg, 0, NULL);

	assert_non_null(m);
	assert_int_equal(flow_reply_parse(m, r), 0);
	json_decref(m);
}

#define YES(cond, reply)      assert_true(eval_at((cond), (reply), true, __LINE__))
#define NO(cond, reply)	      assert_false(eval_at((cond), (reply), true, __LINE__))
#define YES_V(cond, reply, v) assert_true(eval_at((cond), (reply), (v), __LINE__))
#define NO_V(cond, reply, v)  assert_false(eval_at((cond), (reply), (v), __LINE__))

static void test_always_true(void **state)
{
	(void)state;
	YES("{\"type\":\"always_true\"}", NULL);
	NO("{\"type\":\"\"}", NULL);
	NO("{}", NULL);
	NO("{\"type\":\"no_such_condition\"}", NULL);
}

static void test_matches_keyword(void **state)
{
	flow_reply_t r;

	(void)state;
	flow_reply_init_text(&r, "  YES \n");
	YES("{\"type\":\"user_reply_matches_keyword\",\"keyword\":\"yes\"}", &r);
	YES("{\"type\":\"user_reply_matches_keyword\",\"keyword\":\" Yes \"}", &r);
	YES("{\"type\":\"user_reply_matches_keyword\",\"keywords\":[\"no\",\"yes\"]}", &r);
	YES("{\"type\":\"user_reply_matches_keyword\",\"value\":\"yes\"}", &r);
	NO("{\"type\":\"user_reply_matches_keyword\",\"keyword\":\"yes\",\"case_sensitive\":true}",
	   &r);
	NO("{\"type\":\"user_reply_matches_keyword\",\"keyword\":\"ye\"}", &r);
	NO("{\"type\":\"user_reply_matches_keyword\"}", &r);
	NO("{\"type\":\"user_reply_matches_keyword\",\"keyword\":\"yes\"}", NULL);
	flow_reply_free(&r);
	flow_reply_init_text(&r, "yes please");
	NO("{\"type\":\"user_reply_matches_keyword\",\"keyword\":\"yes\"}", &r);
	flow_reply_free(&r);
}

static void test_contains_keyword(void **state)
{
	flow_reply_t r;

	(void)state;
	flow_reply_init_text(&r, "I want to Claim my prize!");
	YES("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"claim\"}", &r);
	YES("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"my prize\"}", &r);
	YES("{\"type\":\"user_reply_contains_keyword\",\"keywords\":[\"zzz\",\"PRIZE\"]}", &r);
	NO("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"claim\","
	   "\"case_sensitive\":true}",
	   &r);
	NO("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"priz\"}", &r);
	flow_reply_free(&r);
	/* whole words only: "hi" is not in "this", "claim" not in "reclaim" */
	flow_reply_init_text(&r, "this is a reclaim");
	NO("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"hi\"}", &r);
	NO("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"claim\"}", &r);
	flow_reply_free(&r);
	/* emoji and punctuation end words; non-ASCII letters do not */
	flow_reply_init_text(&r, "hi\xf0\x9f\x91\x8b, caf\xc3\xa9s");
	YES("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"hi\"}", &r);
	NO("{\"type\":\"user_reply_contains_keyword\",\"keyword\":\"caf\"}", &r);
	flow_reply_free(&r);
}

static void test_interactive_reply_id_equals(void **state)
{
	flow_reply_t r;

	(void)state;
	reply_of(&r, "{\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
		     "\"button_reply\":{\"id\":\"opt_1\",\"title\":\"One\"}}}");
	YES("{\"type\":\"interactive_reply_id_equals\",\"value\":\"opt_1\"}", &r);
	NO("{\"type\":\"interactive_reply_id_equals\",\"value\":\"opt_2\"}", &r);
	NO("{\"type\":\"interactive_reply_id_equals\",\"value\":\"OPT_1\"}", &r);
	NO("{\"type\":\"interactive_reply_id_equals\"}", &r); /* no value: never "None" */
	flow_reply_free(&r);
	/* template quick replies count too */
	reply_of(&r, "{\"type\":\"button\",\"button\":{\"payload\":\"7\",\"text\":\"Seven\"}}");
	YES("{\"type\":\"interactive_reply_id_equals\",\"value\":7}", &r);
	flow_reply_free(&r);
	flow_reply_init_text(&r, "opt_1");
	NO("{\"type\":\"interactive_reply_id_equals\",\"value\":\"opt_1\"}", &r);
	flow_reply_free(&r);
}

static void test_message_type_is(void **state)
{
	flow_reply_t r;

	(void)state;
	reply_of(&r, "{\"type\":\"image\",\"image\":{\"id\":\"M\"}}");
	YES("{\"type\":\"message_type_is\",\"value\":\"image\"}", &r);
	NO("{\"type\":\"message_type_is\",\"value\":\"text\"}", &r);
	NO("{\"type\":\"message_type_is\"}", &r);
	NO("{\"type\":\"message_type_is\",\"value\":\"image\"}", NULL);
	flow_reply_free(&r);
	reply_of(&r, "{\"type\":\"interactive\",\"interactive\":{\"type\":\"list_reply\","
		     "\"list_reply\":{\"id\":\"a\",\"title\":\"A\"}}}");
	YES("{\"type\":\"message_type_is\",\"value\":\"interactive\"}", &r);
	YES("{\"type\":\"message_type_is\",\"value\":\"list_reply\"}", &r);
	flow_reply_free(&r);
}

static void test_matches_regex(void **state)
{
	flow_reply_t r;

	(void)state;
	flow_reply_init_text(&r, "Order 12345");
	YES("{\"type\":\"user_reply_matches_regex\",\"regex\":\"^order \\\\d{5}$\"}", &r);
	YES("{\"type\":\"user_reply_matches_regex\",\"value\":\"[0-9]+\"}", &r);
	NO("{\"type\":\"user_reply_matches_regex\",\"regex\":\"^order\",\"case_sensitive\":true}",
	   &r);
	YES("{\"type\":\"user_reply_matches_regex\",\"regex\":\"^Order\",\"case_sensitive\":true}",
	    &r);
	NO("{\"type\":\"user_reply_matches_regex\",\"regex\":\"^\\\\d+$\"}", &r);
	NO("{\"type\":\"user_reply_matches_regex\",\"regex\":\"(unclosed\"}", &r);
	NO("{\"type\":\"user_reply_matches_regex\"}", &r);
	flow_reply_free(&r);
}

static void test_variable_equals(void **state)
{
	(void)state;
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"name\",\"value\":\"Ann\"}", NULL);
	NO("{\"type\":\"variable_equals\",\"variable_name\":\"name\",\"value\":\"ann\"}", NULL);
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"age\",\"value\":\"42\"}", NULL);
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"age\",\"value\":42.0}", NULL);
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"flag\",\"value\":\"True\"}", NULL);
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"contact.language\",\"value\":"
	    "\"en\"}",
	    NULL);
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"missing\",\"value\":\"\"}", NULL);
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"nothing\",\"value\":\"\"}", NULL);
	NO("{\"type\":\"variable_equals\",\"variable_name\":\"name\",\"value\":\"\"}", NULL);
	NO("{\"type\":\"variable_equals\",\"variable_name\":\"missing\",\"value\":\"None\"}", NULL);
	NO("{\"type\":\"variable_equals\",\"variable_name\":\"name\"}", NULL);
	/* the value may name another variable */
	YES("{\"type\":\"variable_equals\",\"variable_name\":\"contact.name\","
	    "\"value\":\"{{ name }} Lee\"}",
	    NULL);
}

static void test_variable_exists(void **state)
{
	(void)state;
	YES("{\"type\":\"variable_exists\",\"variable_name\":\"name\"}", NULL);
	YES("{\"type\":\"variable_exists\",\"variable_name\":\"blank\"}", NULL);
	YES("{\"type\":\"variable_exists\",\"variable_name\":\"list.{{ idx }}\"}", NULL);
	NO("{\"type\":\"variable_exists\",\"variable_name\":\"list.5\"}", NULL);
	NO("{\"type\":\"variable_exists\",\"variable_name\":\"nothing\"}", NULL);
	NO("{\"type\":\"variable_exists\",\"variable_name\":\"missing\"}", NULL);
	NO("{\"type\":\"variable_exists\"}", NULL);
}

static void test_variable_contains(void **state)
{
	(void)state;
	YES("{\"type\":\"variable_contains\",\"variable_name\":\"code\",\"value\":\"2ab\"}", NULL);
	NO("{\"type\":\"variable_contains\",\"variable_name\":\"code\",\"value\":\"xyz\"}", NULL);
	YES("{\"type\":\"variable_contains\",\"variable_name\":\"tags\",\"value\":\"vip\"}", NULL);
	YES("{\"type\":\"variable_contains\",\"variable_name\":\"tags\",\"value\":\"3\"}", NULL);
	NO("{\"type\":\"variable_contains\",\"variable_name\":\"tags\",\"value\":\"gold\"}", NULL);
	YES("{\"type\":\"variable_contains\",\"variable_name\":\"obj\",\"value\":\"k\"}", NULL);
	NO("{\"type\":\"variable_contains\",\"variable_name\":\"missing\",\"value\":\"a\"}", NULL);
	NO("{\"type\":\"variable_contains\",\"variable_name\":\"code\"}", NULL);
}

static void test_variable_numeric(void **state)
{
	(void)state;
	YES("{\"type\":\"variable_less_than\",\"variable_name\":\"age\",\"value\":43}", NULL);
	NO("{\"type\":\"variable_less_than\",\"variable_name\":\"age\",\"value\":42}", NULL);
	YES("{\"type\":\"variable_less_than_or_equal\",\"variable_name\":\"age\",\"value\":\"42\"}",
	    NULL);
	NO("{\"type\":\"variable_less_than_or_equal\",\"variable_name\":\"age\",\"value\":41.9}",
	   NULL);
	YES("{\"type\":\"variable_greater_than\",\"variable_name\":\"score\",\"value\":7}", NULL);
	NO("{\"type\":\"variable_greater_than\",\"variable_name\":\"score\",\"value\":7.5}", NULL);
	YES("{\"type\":\"variable_greater_than_or_equal\",\"variable_name\":\"score\","
	    "\"value\":\"7.5\"}",
	    NULL);
	NO("{\"type\":\"variable_greater_than_or_equal\",\"variable_name\":\"score\",\"value\":8}",
	   NULL);
	/* not numbers: never true */
	NO("{\"type\":\"variable_greater_than\",\"variable_name\":\"code\",\"value\":1}", NULL);
	NO("{\"type\":\"variable_less_than\",\"variable_name\":\"name\",\"value\":\"zzz\"}", NULL);
	NO("{\"type\":\"variable_less_than\",\"variable_name\":\"missing\",\"value\":1}", NULL);
	NO("{\"type\":\"variable_less_than\",\"variable_name\":\"flag\",\"value\":2}", NULL);
}

static void test_question_reply_is_valid(void **state)
{
	flow_reply_t r;

	(void)state;
	flow_reply_init_text(&r, "x");
	YES_V("{\"type\":\"question_reply_is_valid\"}", &r, true);
	YES_V("{\"type\":\"question_reply_is_valid\",\"value\":true}", &r, true);
	NO_V("{\"type\":\"question_reply_is_valid\",\"value\":true}", &r, false);
	YES_V("{\"type\":\"question_reply_is_valid\",\"value\":false}", &r, false);
	NO_V("{\"type\":\"question_reply_is_valid\",\"value\":false}", &r, true);
	NO_V("{\"type\":\"question_reply_is_valid\"}", NULL, true); /* no reply: no answer */
	flow_reply_free(&r);
}

static void test_user_requests_human(void **state)
{
	flow_reply_t r;

	(void)state;
	flow_reply_init_text(&r, "Can I talk to a person please?");
	YES("{\"type\":\"user_requests_human\"}", &r);
	NO("{\"type\":\"user_requests_human\",\"keywords\":[\"manager\"]}", &r);
	flow_reply_free(&r);
	flow_reply_init_text(&r, "AGENT");
	YES("{\"type\":\"user_requests_human\"}", &r);
	flow_reply_free(&r);
	flow_reply_init_text(&r, "get me the Manager");
	YES("{\"type\":\"user_requests_human\",\"keywords\":[\"manager\"]}", &r);
	flow_reply_free(&r);
	flow_reply_init_text(&r, "humanity and agents of change");
	NO("{\"type\":\"user_requests_human\"}", &r);
	flow_reply_free(&r);
	NO("{\"type\":\"user_requests_human\"}", NULL);
}

static void test_flow_response_received(void **state)
{
	(void)state;
	YES("{\"type\":\"whatsapp_flow_response_received\"}", NULL);
	NO("{\"type\":\"whatsapp_flow_response_received\",\"variable_name\":\"form_done\"}", NULL);
	NO("{\"type\":\"whatsapp_flow_response_received\",\"variable_name\":\"missing\"}", NULL);
}

static void test_inspects_reply(void **state)
{
	json_t *c;

	(void)state;
	c = json_pack("{s:s}", "type", "always_true");
	assert_false(flow_condition_inspects_reply(c));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "type", "variable_exists", "variable_name", "x");
	assert_false(flow_condition_inspects_reply(c));
	json_decref(c);
	c = json_pack("{s:s}", "type", "question_reply_is_valid");
	assert_false(flow_condition_inspects_reply(c));
	json_decref(c);
	c = json_pack("{s:s,s:b}", "type", "question_reply_is_valid", "value", 0);
	assert_true(flow_condition_inspects_reply(c));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "type", "user_reply_matches_keyword", "keyword", "menu");
	assert_true(flow_condition_inspects_reply(c));
	json_decref(c);
}

static void test_helpers(void **state)
{
	double d;
	regex_t re;
	const char *why;

	(void)state;
	assert_int_equal(flow_number_parse(" 42 ", &d), 0);
	assert_true(d == 42.0);
	assert_int_equal(flow_number_parse("-1.5e2", &d), 0);
	assert_true(d == -150.0);
	assert_int_equal(flow_number_parse(".5", &d), 0);
	assert_int_equal(flow_number_parse("0x10", &d), -1);
	assert_int_equal(flow_number_parse("inf", &d), -1);
	assert_int_equal(flow_number_parse("nan", &d), -1);
	assert_int_equal(flow_number_parse("1e999", &d), -1);
	assert_int_equal(flow_number_parse("12abc", &d), -1);
	assert_int_equal(flow_number_parse("", &d), -1);
	assert_int_equal(flow_number_parse(".", &d), -1);
	assert_int_equal(flow_number_parse("1e", &d), -1);

	assert_int_equal(flow_utf8_len("a\xc3\xa9\xf0\x9f\x91\x8b"), 3);

	assert_int_equal(flow_regex_compile(&re, "^[\\d]{3}-\\D$", REG_NOSUB, &why), 0);
	assert_int_equal(regexec(&re, "123-x", 0, NULL, 0), 0);
	assert_int_not_equal(regexec(&re, "123-4", 0, NULL, 0), 0);
	regfree(&re);
	assert_int_equal(flow_regex_compile(&re, "[[:alpha:]]+", REG_NOSUB, &why), 0);
	regfree(&re);
	assert_int_equal(flow_regex_compile(&re, "(a)\\1", REG_NOSUB, &why), -1);
	assert_int_equal(flow_regex_compile(&re, "((a{1000}){1000})", REG_NOSUB, &why), -1);
	assert_int_equal(flow_regex_compile(&re, "a{30000}", REG_NOSUB, &why), -1);
	assert_int_equal(flow_regex_compile(&re, "a++", REG_NOSUB, &why), -1);
	assert_int_equal(flow_regex_compile(&re, "a?*", REG_NOSUB, &why), -1);
	assert_int_equal(flow_regex_compile(&re, "a{2}{3}", REG_NOSUB, &why), -1);
	assert_int_equal(flow_regex_compile(&re, "=???+", REG_NOSUB, &why), -1);
	/* repetitions of what can match nothing: exponential in glibc, refused past a few */
	assert_int_equal(flow_regex_compile(&re,
					    "(((l?)+)?)+(((l?)+)?)+(((l?)+)?)+(((l?)+)?)+"
					    "(((l?)+)?)+",
					    REG_NOSUB, &why),
			 -1);
	assert_int_equal(flow_regex_compile(&re, "^(l+ ?)+$(l?)+", REG_NOSUB, &why), 0);
	regfree(&re);
	/* Perl's lazy "*?" and "+?" mean the same for matching: accepted */
	assert_int_equal(flow_regex_compile(&re, "^order (.*?) now +?$", REG_NOSUB, &why), 0);
	assert_int_equal(regexec(&re, "order tea now  ", 0, NULL, 0), 0);
	regfree(&re);
	assert_int_equal(flow_regex_compile(&re, "a\\+++", REG_NOSUB, &why), -1); /* a\+++ */
	assert_int_equal(flow_regex_compile(&re, "a\\+b+", REG_NOSUB, &why), 0);
	regfree(&re);
	assert_int_equal(flow_regex_compile(&re, "[+*]+", REG_NOSUB, &why), 0);
	regfree(&re);
	assert_int_equal(flow_regex_compile(&re, "((((((((a+)+)+)+)+)+)+)+)+(b{9}){9}{9}{9}{9}",
					    REG_NOSUB, &why),
			 -1);
	assert_int_equal(flow_regex_compile(&re, "^([A-Za-z]+ ?)+$|^[0-9]{7,15}$", REG_NOSUB, &why),
			 0);
	regfree(&re);
	assert_int_equal(flow_regex_compile(&re, "", REG_NOSUB, &why), -1);
	assert_int_equal(flow_regex_compile(&re, "([a-z]", REG_NOSUB, &why), -1);
	assert_string_equal(why, "does not compile");
	assert_int_equal(flow_regex_compile(&re, "[[:alpha:]", REG_NOSUB, &why), -1);

	assert_true(flow_word_match("Talk to a person", "talk to a person", false));
	assert_false(flow_word_match("talk to a personal trainer", "talk to a person", false));
	assert_false(flow_word_match("", "x", false));
}

static void test_validate_missing_values(void **state)
{
	json_t *p = json_array(), *c;

	(void)state;
	c = json_pack("{s:s,s:s}", "type", "variable_equals", "variable_name", "x");
	assert_int_equal(flow_condition_validate(c, "t", p), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(p, 0), "path")),
			    "t.value");
	json_decref(c);
	json_decref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_always_true),
	    cmocka_unit_test(test_matches_keyword),
	    cmocka_unit_test(test_contains_keyword),
	    cmocka_unit_test(test_interactive_reply_id_equals),
	    cmocka_unit_test(test_message_type_is),
	    cmocka_unit_test(test_matches_regex),
	    cmocka_unit_test(test_variable_equals),
	    cmocka_unit_test(test_variable_exists),
	    cmocka_unit_test(test_variable_contains),
	    cmocka_unit_test(test_variable_numeric),
	    cmocka_unit_test(test_question_reply_is_valid),
	    cmocka_unit_test(test_user_requests_human),
	    cmocka_unit_test(test_flow_response_received),
	    cmocka_unit_test(test_inspects_reply),
	    cmocka_unit_test(test_helpers),
	    cmocka_unit_test(test_validate_missing_values),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
