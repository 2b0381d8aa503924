/* test_outbound_state.c - the run and job state machines (DESIGN §7). */
#include "../unit/testutil.h"
#include "dialflow/outbound.h"

static void test_names_round_trip(void **state)
{
	(void)state;
	for (int s = RUN_PENDING; s <= RUN_FAILED; s++)
		assert_int_equal(outbound_run_status_parse(outbound_run_status_name(s)), s);
	for (int s = JOB_QUEUED; s <= JOB_CANCELLED; s++)
		assert_int_equal(outbound_job_status_parse(outbound_job_status_name(s)), s);
	assert_int_equal(outbound_run_status_parse("Running"), RUN_INVALID);
	assert_int_equal(outbound_job_status_parse(NULL), JOB_INVALID);
	assert_string_equal(outbound_run_status_name(RUN_INVALID), "invalid");
}

static void test_run_transitions(void **state)
{
	(void)state;
	assert_true(outbound_run_transition_ok(RUN_PENDING, RUN_RUNNING));
	assert_true(outbound_run_transition_ok(RUN_PENDING, RUN_CANCELLED));
	assert_true(outbound_run_transition_ok(RUN_RUNNING, RUN_COMPLETED));
	assert_true(outbound_run_transition_ok(RUN_RUNNING, RUN_STOPPED));
	assert_false(outbound_run_transition_ok(RUN_RUNNING, RUN_PENDING));
	/* nothing leaves a terminal state: a late event never revives a run */
	for (int from = RUN_COMPLETED; from <= RUN_FAILED; from++)
		for (int to = RUN_PENDING; to <= RUN_FAILED; to++)
			assert_false(outbound_run_transition_ok(from, to));
	assert_false(outbound_run_transition_ok(RUN_INVALID, RUN_RUNNING));
}

static void test_job_transitions(void **state)
{
	(void)state;
	assert_true(outbound_job_transition_ok(JOB_QUEUED, JOB_DIALING));
	assert_true(outbound_job_transition_ok(JOB_DIALING, JOB_CALLING));
	assert_true(outbound_job_transition_ok(JOB_CALLING, JOB_COMPLETED));
	assert_true(outbound_job_transition_ok(JOB_QUEUED, JOB_CANCELLED));
	assert_true(outbound_job_transition_ok(JOB_CALLING, JOB_CANCELLED));
	assert_false(outbound_job_transition_ok(JOB_QUEUED, JOB_CALLING));
	assert_false(outbound_job_transition_ok(JOB_QUEUED, JOB_COMPLETED));
	for (int from = JOB_COMPLETED; from <= JOB_CANCELLED; from++)
		for (int to = JOB_QUEUED; to <= JOB_CANCELLED; to++)
			assert_false(outbound_job_transition_ok(from, to));
	assert_true(outbound_job_in_flight(JOB_DIALING));
	assert_true(outbound_job_in_flight(JOB_CALLING));
	assert_false(outbound_job_in_flight(JOB_QUEUED));
	assert_false(outbound_job_in_flight(JOB_COMPLETED));
}

static void test_call_status_mapping(void **state)
{
	outbound_job_status_t to;
	bool final, retry;

	(void)state;
	assert_int_equal(outbound_job_for_call_status("ringing", &to, &final, &retry), 0);
	assert_int_equal(to, JOB_CALLING);
	assert_false(final);
	assert_int_equal(outbound_job_for_call_status("completed", &to, &final, &retry), 0);
	assert_int_equal(to, JOB_COMPLETED);
	assert_true(final);
	assert_false(retry);
	assert_int_equal(outbound_job_for_call_status("busy", &to, &final, &retry), 0);
	assert_int_equal(to, JOB_FAILED);
	assert_true(final && retry);
	assert_int_equal(outbound_job_for_call_status("no-answer", &to, &final, &retry), 0);
	assert_true(retry);
	assert_int_equal(outbound_job_for_call_status("failed", &to, &final, &retry), 0);
	assert_false(retry);
	assert_int_equal(outbound_job_for_call_status("canceled", &to, &final, &retry), 0);
	assert_int_equal(to, JOB_CANCELLED);
	assert_int_equal(outbound_job_for_call_status("exploded", &to, &final, &retry), -1);
	assert_int_equal(outbound_job_for_call_status(NULL, &to, &final, &retry), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_round_trip),
	    cmocka_unit_test(test_run_transitions),
	    cmocka_unit_test(test_job_transitions),
	    cmocka_unit_test(test_call_status_mapping),
	};

	return cmocka_run_group_tests_name("outbound_state", tests, NULL, NULL);
}
