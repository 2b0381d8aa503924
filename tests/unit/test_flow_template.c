/*
 * test_flow_template.c - "{{ path | filter }}" rendering (template.c): paths,
 * filters, typed single-tag values, broken syntax that must never reach a
 * user, and the output bound.
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
	scope = json_loads("{\"name\":\"ann\",\"city\":\"new york\",\"age\":42,\"pi\":3.5,"
			   "\"vip\":true,\"none\":null,\"empty\":\"\","
			   "\"items\":[{\"name\":\"Tea\",\"sku\":\"T1\"},{\"name\":\"Cake\"}],"
			   "\"addr\":{\"zip\":\"10001\"},"
			   "\"contact\":{\"wa_id\":\"15550001\",\"name\":\"Ann Lee\"},"
			   "\"evil\":\"{{ name }}\"}",
			   JSON_REJECT_DUPLICATES, &e);
	return scope == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	json_decref(scope);
	return 0;
}

static void expect_at(const char *tpl, const char *want, int line)
{
	char *got = flow_template_render_string(tpl, scope);
	char msg[512] = "";

	if (strcmp(got, want) != 0)
		snprintf(msg, sizeof(msg), "line %d: \"%s\" rendered \"%s\", want \"%s\"", line,
			 tpl, got, want);
	free(got);
	if (msg[0] != '\0')
		fail_msg("%s", msg);
}
#define EXPECT(tpl, want) expect_at((tpl), (want), __LINE__)

static void test_paths(void **state)
{
	(void)state;
	EXPECT("Hi {{name}}!", "Hi ann!");
	EXPECT("Hi {{   name   }}!", "Hi ann!");
	EXPECT("{{ contact.name }} ({{ contact.wa_id }})", "Ann Lee (15550001)");
	EXPECT("{{ addr.zip }}", "10001");
	EXPECT("{{ items.0.name }} and {{ items.1.name }}", "Tea and Cake");
	EXPECT("plain text", "plain text");
	EXPECT("", "");
	/* values: numbers shortest, bools, null and missing as nothing, objects as JSON */
	EXPECT("{{ age }}/{{ pi }}/{{ vip }}", "42/3.5/true");
	EXPECT("[{{ none }}][{{ missing }}][{{ items.5.name }}][{{ name.x }}]", "[][][][]");
	EXPECT("{{ addr }}", "{\"zip\":\"10001\"}");
	/* a substituted value is never rendered again */
	EXPECT("{{ evil }}", "{{ name }}");
}

static void test_filters(void **state)
{
	(void)state;
	EXPECT("{{ name | upper }}", "ANN");
	EXPECT("{{ contact.name|lower }}", "ann lee");
	EXPECT("{{ city | title }}", "New York");
	EXPECT("{{ missing | default('friend') }}", "friend");
	EXPECT("{{ missing | default(\"a, b\") }}", "a, b");
	EXPECT("{{ empty | default('x') }}", "x");
	EXPECT("{{ none | default('x') }}", "x");
	EXPECT("{{ name | default('x') }}", "ann");
	EXPECT("{{ missing | default('friend', true) }}", "friend");
	/* chained, left to right */
	EXPECT("{{ missing | default('new guest') | title }}", "New Guest");
	EXPECT("{{ city | upper | lower }}", "new york");
	EXPECT("{{ missing | upper | default('none') }}", "none");
	EXPECT("{{ age | upper }}", "42");
	/* non-ASCII letters are left alone */
	EXPECT("{{ missing | default('élan vital') | title }}", "élan Vital");
	/* quotes hide the braces and pipes of an argument */
	EXPECT("{{ missing | default('a }} | b') }}", "a } | b");
}

static void test_broken_syntax_never_leaks(void **state)
{
	(void)state;
	/* an invalid tag renders as nothing */
	EXPECT("a{{ }}b", "ab");
	EXPECT("a{{ name | bogus }}b", "ab");
	EXPECT("a{{ na me }}b", "ab");
	EXPECT("a{{ name | default }}b", "ab");
	EXPECT("a{{ name | upper('x') }}b", "ab");
	EXPECT("a{{ name.. }}b", "ab");
	EXPECT("x{{ a {{ name }}", "x");
	/* unterminated opens and stray closes are dropped */
	EXPECT("Hello {{ name", "Hello  name");
	EXPECT("Hello }} there", "Hello  there");
	EXPECT("{{{{{{", "");
	EXPECT("{}}{", "{");
	EXPECT("{ {{ name }} }", "{ ann }");
	EXPECT("a{{ x | default('{') }}{b", "a{b");
	EXPECT("{{ x | default('{{') }}", "{");
	EXPECT("tail {{", "tail ");
}

static void test_typed_single_tag(void **state)
{
	json_t *v, *out;

	(void)state;
	v = json_string("{{ age }}");
	out = flow_template_render(v, scope);
	assert_true(json_is_integer(out));
	assert_int_equal(json_integer_value(out), 42);
	json_decref(out);
	json_decref(v);

	v = json_string("  {{ addr }} ");
	out = flow_template_render(v, scope);
	assert_true(json_is_object(out));
	assert_string_equal(json_string_value(json_object_get(out, "zip")), "10001");
	json_decref(out);
	json_decref(v);

	v = json_string("{{ vip }}");
	out = flow_template_render(v, scope);
	assert_true(json_is_true(out));
	json_decref(out);
	json_decref(v);

	v = json_string("{{ items }}");
	out = flow_template_render(v, scope);
	assert_true(json_is_array(out));
	assert_int_equal(json_array_size(out), 2);
	json_decref(out);
	json_decref(v);

	/* missing -> "", default -> its text, a case filter -> text */
	v = json_string("{{ missing }}");
	out = flow_template_render(v, scope);
	assert_string_equal(json_string_value(out), "");
	json_decref(out);
	json_decref(v);
	v = json_string("{{ missing | default('7') }}");
	out = flow_template_render(v, scope);
	assert_string_equal(json_string_value(out), "7");
	json_decref(out);
	json_decref(v);
	v = json_string("{{ age | default('7') }}");
	out = flow_template_render(v, scope);
	assert_int_equal(json_integer_value(out), 42);
	json_decref(out);
	json_decref(v);
	v = json_string("{{ name | upper }}");
	out = flow_template_render(v, scope);
	assert_string_equal(json_string_value(out), "ANN");
	json_decref(out);
	json_decref(v);
	/* two tags are text */
	v = json_string("{{ age }}{{ age }}");
	out = flow_template_render(v, scope);
	assert_string_equal(json_string_value(out), "4242");
	json_decref(out);
	json_decref(v);
}

static void test_recursive_render(void **state)
{
	json_error_t e;
	json_t *in = json_loads("{\"body\":{\"text\":\"Hi {{ name | title }}\"},\"n\":5,"
				"\"rows\":\"{{ items }}\",\"list\":[\"{{ age }}\",true,null],"
				"\"{{ name }}\":\"key kept\"}",
				0, &e);
	json_t *out;

	(void)state;
	assert_non_null(in);
	out = flow_template_render(in, scope);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(out, "body"), "text")), "Hi Ann");
	assert_int_equal(json_integer_value(json_object_get(out, "n")), 5);
	assert_true(json_is_array(json_object_get(out, "rows")));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(out, "list"), 0)), 42);
	assert_true(json_is_true(json_array_get(json_object_get(out, "list"), 1)));
	assert_true(json_is_null(json_array_get(json_object_get(out, "list"), 2)));
	assert_string_equal(json_string_value(json_object_get(out, "{{ name }}")), "key kept");
	json_decref(out);
	json_decref(in);
	out = flow_template_render(NULL, scope);
	assert_true(json_is_null(out));
	json_decref(out);
}

static void test_bounded_output(void **state)
{
	size_t n = FLOW_TEMPLATE_OUT_MAX * 2;
	char *tpl = malloc(n + 1), *out;
	json_t *big = json_object(), *s;

	(void)state;
	assert_non_null(tpl);
	memset(tpl, 'x', n);
	tpl[n] = '\0';
	out = flow_template_render_string(tpl, NULL);
	assert_int_equal(strlen(out), FLOW_TEMPLATE_OUT_MAX);
	free(out);

	/* a value that passes the limit is cut at a character boundary */
	for (size_t i = 0; i + 2 <= n; i += 2)
		memcpy(tpl + i, "\xc3\xa9", 2);
	tpl[n] = '\0';
	s = json_string(tpl);
	assert_non_null(s);
	json_object_set_new(big, "v", s);
	out = flow_template_render_string("a{{ v }}", big);
	assert_int_equal(strlen(out), FLOW_TEMPLATE_OUT_MAX - 1);
	assert_int_equal(flow_utf8_len(out), 1 + (FLOW_TEMPLATE_OUT_MAX - 2) / 2);
	free(out);
	json_decref(big);
	free(tpl);
}

static void test_path_get(void **state)
{
	(void)state;
	assert_string_equal(json_string_value(flow_path_get(scope, "items.0.sku")), "T1");
	assert_null(flow_path_get(scope, "items.-1"));
	assert_null(flow_path_get(scope, ""));
	assert_null(flow_path_get(scope, "a..b"));
	assert_null(flow_path_get(scope, NULL));
	assert_null(flow_path_get(NULL, "name"));
	assert_true(flow_template_has_tags("x {{ y }}"));
	assert_false(flow_template_has_tags("x { y }"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_broken_syntax_never_leaks),
	    cmocka_unit_test(test_typed_single_tag),
	    cmocka_unit_test(test_recursive_render),
	    cmocka_unit_test(test_bounded_output),
	    cmocka_unit_test(test_path_get),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
