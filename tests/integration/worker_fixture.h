/*
 * worker_fixture.h - fixtures of the worker integration tests
 * (tests/integration/test_worker_*.c).
 *
 * Each test binary works in its own scratch database, created and migrated
 * by wfix_setup() (a cmocka group setup) and dropped by wfix_teardown(): the
 * workers it forks claim every pending run of their database, so they must
 * never see the runs of other test binaries. Worker children run the real
 * loop (worker_run_with) against the fake provider with short thresholds,
 * never the production timeouts.
 *
 * Children never call cmocka: they report through their exit status.
 */
#ifndef DIALFLOW_WORKER_FIXTURE_H
#define DIALFLOW_WORKER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dialflow/config.h"
#include "dialflow/db.h"
#include "fake_provider.h"
#include "itest.h"

#define WFIX_CALLER_ID "+15005550006"

/* Group setup/teardown; main() calls itest_init() first. */
/*
 * Group setup and teardown (main() calls itest_init() before them). The
 * setup registers the queue's and the call events' statements once the
 * scratch database has their tables.
 */
int wfix_setup(void **state);
int wfix_teardown(void **state);

/*
 * Per-test setup and teardown of the tests that fork: SIGKILL the children a
 * failed test left behind, and end every run, job, call and background job
 * still open, so that the next test's workers find only their own work.
 */
int wfix_quiesce(void **state);

/* conninfo of the scratch database (owner role). */
const char *wfix_url(void);
/* The binary's raw owner connection to the scratch database (do not PQfinish). */
PGconn *wfix_owner(void);
/* A connected db handle on the scratch database as `role` (NULL: the owner). Caller db_free()s. */
db_t *wfix_db(const char *application_name, const char *role);

/* Test settings: role dialflow_worker, heartbeats 200 ms, stale 2 s, poll 100 ms, 1000 cps. */
void wfix_config(config_t *cfg);

/* A business whose calling window is open all day, with a caller id and max_calls. */
int64_t wfix_business(int max_calls);
/*
 * A pending run of business with n new leads (phones written to phones[i],
 * 24 bytes each, may be NULL) and one queued job per lead.
 */
int64_t wfix_run(int64_t business_id, int n, int concurrency, int max_attempts, int retry_delay_s,
		 char (*phones)[24]);
/* The run's status as a malloc'd string. */
char *wfix_run_status(int64_t run_id);
/* count(*) of the run's jobs in `status` (NULL: all). */
int64_t wfix_jobs(int64_t run_id, const char *status);

/* Fork a worker running worker_run_with(cfg, fake). */
pid_t wfix_spawn_worker(const config_t *cfg, fake_provider_t *fp);
/*
 * Signal pid and reap it within timeout_ms (then SIGKILL). Returns its exit
 * code, 128 + signal when a signal ended it, or -1 when it had to be killed.
 */
int wfix_stop(pid_t pid, int sig, int timeout_ms);

/*
 * Fork a "carrier" that ends live calls of the given businesses (status
 * calling) one at a time, at random, each after a random pause in
 * [min_ms, max_ms], with call status `status` ("completed", "busy", ...),
 * through outbound_call_event as the status webhook would. Stop it with
 * wfix_stop(pid, SIGTERM, ...).
 */
pid_t wfix_spawn_carrier(const int64_t *business_ids, int n, const char *status, int min_ms,
			 int max_ms);

/* Poll (10 ms) until `sql` yields want on the owner connection, up to timeout_ms. */
bool wfix_wait(int64_t want, int timeout_ms, const char *sql, int nparams,
	       const char *const *params);
#define WFIX_WAIT(want, ms, sql, ...)                                                              \
	wfix_wait((want), (ms), (sql), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})

/* Sleep ms milliseconds. */
void wfix_sleep_ms(int ms);

#endif
