/* test_queue_backoff.c - the background queue's retry delays (queue_backoff_s). */
#include "../unit/testutil.h"
#include "dialflow/queue.h"

#define EPS		  1e-9
#define assert_near(a, b) assert_true((a) - (b) < EPS && (b) - (a) < EPS)

/* rnd = 0.5 is the midpoint of the jitter: exactly base * 2^(attempt-1). */
static void test_growth(void **state)
{
	(void)state;
	assert_near(queue_backoff_s(1, 2.0, 3600.0, 0.5), 2.0);
	for (int n = 1; n < 10; n++) {
		double d = queue_backoff_s(n, 2.0, 3600.0, 0.5);
		double next = queue_backoff_s(n + 1, 2.0, 3600.0, 0.5);

		assert_true(next > 2.0 * d - EPS && next < 2.0 * d + EPS);
	}
	assert_near(queue_backoff_s(5, 1.5, 3600.0, 0.5), 24.0);
}

static void test_cap(void **state)
{
	(void)state;
	/* 2 * 2^11 = 4096 > 3600: capped, then jittered around the cap */
	assert_near(queue_backoff_s(12, 2.0, 3600.0, 0.5), 3600.0);
	assert_true(queue_backoff_s(12, 2.0, 3600.0, 0.999999) <= 3600.0 * 1.25 + EPS);
	/* huge attempt numbers neither overflow nor exceed the cap */
	assert_near(queue_backoff_s(1000, 2.0, 60.0, 0.5), 60.0);
	assert_true(queue_backoff_s(2147483647, 2.0, 60.0, 0.0) >= 45.0 - EPS);
}

static void test_jitter_bounds(void **state)
{
	(void)state;
	for (int n = 1; n <= 14; n++) {
		double mid = queue_backoff_s(n, 2.0, 3600.0, 0.5);

		for (int i = 0; i < 100; i++) {
			double d = queue_backoff_s(n, 2.0, 3600.0, i / 100.0);

			assert_true(d >= 0.75 * mid - EPS);
			assert_true(d < 1.25 * mid + EPS);
		}
		/* the extremes are +-25 % */
		assert_near(queue_backoff_s(n, 2.0, 3600.0, 0.0), 0.75 * mid);
	}
}

static void test_bad_arguments(void **state)
{
	(void)state;
	/* attempt < 1 counts as the first; rnd outside [0, 1) is clamped */
	assert_near(queue_backoff_s(0, 2.0, 3600.0, 0.5), 2.0);
	assert_near(queue_backoff_s(-5, 2.0, 3600.0, 0.5), 2.0);
	assert_true(queue_backoff_s(1, 2.0, 3600.0, -1.0) >= 1.5 - EPS);
	assert_true(queue_backoff_s(1, 2.0, 3600.0, 7.0) < 2.5 + EPS);
	assert_near(queue_backoff_s(3, 0.0, 3600.0, 0.5), 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_jitter_bounds),
	    cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
