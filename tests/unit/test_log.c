/* test_log.c - phone masking and log-line sanitising. */
#include <string.h>

#include "../unit/testutil.h"
#include "dialflow/log.h"

static void test_phone_is_masked(void **state)
{
	char out[32];

	(void)state;
	assert_string_equal(log_mask_phone("+972501234567", out, sizeof(out)), "+97250***4567");
	assert_string_equal(log_mask_phone("+15551234", out, sizeof(out)), "***");
	assert_string_equal(log_mask_phone(NULL, out, sizeof(out)), "-");
	/* the middle digits never appear */
	log_mask_phone("+14155550123", out, sizeof(out));
	assert_null(strstr(out, "555"));
}

static void test_sanitize_blocks_line_forgery(void **state)
{
	char out[64];

	(void)state;
	log_sanitize("/api/x\n2026 ERROR fake \"line\"\\", out, sizeof(out));
	assert_null(strchr(out, '\n'));
	assert_null(strchr(out, '"'));
	assert_non_null(strchr(out, ' ')); /* spaces are fine inside key="value" */
	assert_null(strchr(out, '\\'));
	log_sanitize("abcdefghijklmnopqrstuvwxyz", out, 8);
	assert_string_equal(out, "abcdefg");
}

static void test_level_names(void **state)
{
	(void)state;
	assert_int_equal(log_set_level("debug"), 0);
	assert_int_equal(log_min_level, LOG_DEBUG);
	assert_int_equal(log_set_level("loud"), -1);
	assert_int_equal(log_set_level("info"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phone_is_masked),
	    cmocka_unit_test(test_sanitize_blocks_line_forgery),
	    cmocka_unit_test(test_level_names),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
