/* test_strnum.c - strict number parsing: the gate for every number from outside. */
#include "../unit/testutil.h"
#include "dialflow/strnum.h"

static void test_accepts_plain_decimals(void **state)
{
	int64_t v = -1;

	(void)state;
	assert_int_equal(strnum_i64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(strnum_i64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(strnum_i64("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(strnum_i64("9223372036854775807", 0, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
}

static void test_rejects_everything_else(void **state)
{
	static const char *bad[] = {
	    "",
	    " 1",
	    "1 ",
	    "+1",
	    "1a",
	    "0x10",
	    "1e3",
	    "01",
	    "--1",
	    "-",
	    "1.0",
	    "1'OR'1'='1",
	    "99999999999999999999",
	    "9223372036854775808",
	    "１",
	    "1\n",
	};
	int64_t v = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(strnum_i64(bad[i], INT64_MIN, INT64_MAX, &v), -1);
		assert_int_equal(v, 7);
	}
	assert_int_equal(strnum_i64(NULL, 0, 1, &v), -1);
}

static void test_range_is_enforced(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(strnum_i64("-1", 1, 10, &v), -1);
	assert_int_equal(strnum_i64("0", 1, 10, &v), -1);
	assert_int_equal(strnum_i64("11", 1, 10, &v), -1);
	assert_int_equal(strnum_i64("10", 1, 10, &v), 0);
}

static void test_length_bounded_variant(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(strnum_i64n("123/abc", 3, 0, 1000, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(strnum_i64n("12\0"
				     "3",
				     4, 0, 1000, &v),
			 -1);
	assert_int_equal(strnum_i64n("1", 0, 0, 1000, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts_plain_decimals),
	    cmocka_unit_test(test_rejects_everything_else),
	    cmocka_unit_test(test_range_is_enforced),
	    cmocka_unit_test(test_length_bounded_variant),
	};

	return cmocka_run_group_tests_name("strnum", tests, NULL, NULL);
}
