/* test_arena.c - the request arena: alignment, growth, reset, cleanups. */
#include <stdint.h>
#include <string.h>

#include "../unit/testutil.h"
#include "dialflow/arena.h"

static void test_alloc_is_aligned_and_usable(void **state)
{
	arena_t *a = arena_new(1024);

	(void)state;
	for (int i = 1; i < 200; i++) {
		unsigned char *p = arena_alloc(a, (size_t)i);

		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xAB, (size_t)i);
	}
	arena_free(a);
}

static void test_grows_past_first_chunk(void **state)
{
	arena_t *a = arena_new(1024);
	char *big;

	(void)state;
	big = arena_alloc(a, 1 << 20);
	memset(big, 1, 1 << 20);
	assert_true(arena_used(a) >= (1 << 20));
	arena_reset(a);
	assert_int_equal(arena_used(a), 0);
	arena_free(a);
}

static void test_strings(void **state)
{
	arena_t *a = arena_new(1024);
	char longfmt[600];

	(void)state;
	assert_string_equal(arena_strdup(a, "hello"), "hello");
	assert_null(arena_strdup(a, NULL));
	assert_string_equal(arena_strndup(a, "hello", 3), "hel");
	assert_string_equal(arena_sprintf(a, "%d-%s", 42, "x"), "42-x");
	memset(longfmt, 'z', sizeof(longfmt) - 1);
	longfmt[sizeof(longfmt) - 1] = '\0';
	assert_string_equal(arena_sprintf(a, "%s", longfmt), longfmt);
	arena_free(a);
}

static int order[4];
static int norder;

static void record(void *p)
{
	order[norder++] = *(int *)p;
}

static void test_cleanups_run_lifo_on_reset(void **state)
{
	arena_t *a = arena_new(1024);
	static int one = 1, two = 2, three = 3;

	(void)state;
	norder = 0;
	arena_on_reset(a, record, &one);
	arena_on_reset(a, record, &two);
	arena_on_reset(a, record, &three);
	arena_reset(a);
	assert_int_equal(norder, 3);
	assert_int_equal(order[0], 3);
	assert_int_equal(order[2], 1);
	/* nothing left for the next reset */
	arena_reset(a);
	assert_int_equal(norder, 3);
	arena_free(a);
}

static void test_calloc_zeroes(void **state)
{
	arena_t *a = arena_new(1024);
	unsigned char *p;

	(void)state;
	p = arena_alloc(a, 64);
	memset(p, 0xff, 64);
	arena_reset(a);
	p = arena_calloc(a, 8, 8);
	for (int i = 0; i < 64; i++)
		assert_int_equal(p[i], 0);
	arena_free(a);
	arena_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc_is_aligned_and_usable),
	    cmocka_unit_test(test_grows_past_first_chunk),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_cleanups_run_lifo_on_reset),
	    cmocka_unit_test(test_calloc_zeroes),
	};

	return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
