/* test_jsonutil.c - strict decoding and typed field access. */
#include <string.h>

#include "../unit/testutil.h"
#include "dialflow/jsonutil.h"

static arena_t *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

static json_t *decode(const char *s, size_t len, const char **why)
{
	*why = NULL;
	return json_decode_strict(A, s, len, why);
}

static void test_rejects_bad_documents(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
	    {"", 0},
	    {"{", 1},
	    {"{\"a\":1} x", 9},
	    {"{\"a\":1,\"a\":2}", 13},
	    {"{\"a\":\"\xff\xfe\"}", 10},
	    {"{\"a\":\"\xc0\xaf\"}", 10},
	    {"{\"a\":\"\\ud800\"}", 14},
	    {"{\"a\":\"\\u0000\"}", 14},
	    {"{\"a\":99999999999999999999999}", 29},
	    {"{\"a\":1e400}", 11},
	    {"[1,2", 4},
	    {"{\"a\":1}\0", 8},
	};
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(decode(bad[i].s, bad[i].len, &why));
		assert_non_null(why);
	}
	assert_null(decode("{\"a\":1,\"a\":2}", 13, &why));
	assert_string_equal(why, "duplicate object key");
}

static void test_accepts_good_documents(void **state)
{
	const char *why;
	static const char doc[] = "{\"name\":\"caf\xc3\xa9\",\"n\":5}";
	json_t *v = decode(doc, sizeof(doc) - 1, &why);

	(void)state;
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "name")), "caf\xc3\xa9");
	arena_reset(A); /* the reference is released here, ASan checks it */
}

static void test_field_getters_collect_every_problem(void **state)
{
	const char *why, *s = NULL;
	int64_t n = 0;
	bool b = false;
	json_fielderr_t fe;
	static const char doc[] =
	    "{\"s\":5,\"n\":\"5\",\"b\":1,\"big\":1001,\"neg\":-1,\"ok\":\"x\"}";
	json_t *v = decode(doc, sizeof(doc) - 1, &why);

	(void)state;
	assert_non_null(v);
	json_fielderr_init(&fe, A);
	assert_false(json_fielderr_any(&fe));
	assert_int_equal(json_get_str(v, "s", true, 1, 10, &s, &fe), -1);
	assert_int_equal(json_get_int(v, "n", true, 0, 10, &n, &fe), -1);
	assert_int_equal(json_get_bool(v, "b", true, &b, &fe), -1);
	assert_int_equal(json_get_int(v, "big", true, 0, 1000, &n, &fe), -1);
	assert_int_equal(json_get_int(v, "neg", true, 0, 1000, &n, &fe), -1);
	assert_int_equal(json_get_str(v, "missing", true, 1, 10, &s, &fe), -1);
	assert_int_equal(json_get_str(v, "absent", false, 1, 10, &s, &fe), 0);
	assert_int_equal(json_get_str(v, "ok", true, 2, 10, &s, &fe), -1);
	assert_true(json_fielderr_any(&fe));
	assert_int_equal(json_array_size(fe.list), 7);
	assert_string_equal(json_string_value(json_object_get(json_array_get(fe.list, 0), "field")),
			    "s");
	arena_reset(A);
}

static void test_dump_into_arena(void **state)
{
	size_t len;
	json_t *v = json_pack("{s:s}", "k", "v");
	char *s = json_dump_arena(A, v, &len);

	(void)state;
	assert_string_equal(s, "{\"k\":\"v\"}");
	assert_int_equal(len, strlen(s));
	json_decref(v);
	arena_reset(A);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rejects_bad_documents),
	    cmocka_unit_test(test_accepts_good_documents),
	    cmocka_unit_test(test_field_getters_collect_every_problem),
	    cmocka_unit_test(test_dump_into_arena),
	};

	return cmocka_run_group_tests_name("jsonutil", tests, setup, teardown);
}
