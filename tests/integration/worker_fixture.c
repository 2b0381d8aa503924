/* worker_fixture.c - see worker_fixture.h. */
#include "worker_fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/log.h"
#include "dialflow/migrate.h"
#include "dialflow/outbound.h"
#include "dialflow/worker.h"

static char dbname[128];
static char *url;
static PGconn *owner;
static PGconn *super;
static unsigned phone_seq;
/* children still running: a failed test must not leave workers behind */
static pid_t children[32];
static int nchildren;

static char s_role[] = "dialflow_worker";
static char s_public[] = "https://dialflow.test/";
static char s_base[] = "http://127.0.0.1:9";
static char s_from[] = WFIX_CALLER_ID;
static char s_empty[] = "";
static char s_account[96];

void wfix_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int wfix_setup(void **state)
{
	char u[64], sql[384];
	PGresult *r;
	PGconn *o;
	db_t *m;

	(void)state;
	snprintf(dbname, sizeof(dbname), "itest_wk_%s", itest_unique(u, sizeof(u)));
	snprintf(s_account, sizeof(s_account), "ACitest%s", u);
	super = itest_super_pg();
	o = itest_owner_pg();
	r = itest_query(o, "SELECT current_user", 0, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER \"%s\"", dbname, PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(o);
	itest_exec(super, sql, 0, NULL);
	url = itest_conninfo_with(itest_db_url(), "dbname", dbname, (const char *)NULL);
	m = db_new(url, "itest-wk-migrate", NULL, 2, 60000);
	assert_int_equal(db_ensure(m), 0);
	assert_true(migrate_run(m, itest_migrations_dir()) > 0);
	db_free(m);
	/* statements that name the new tables: prepared by every later connect */
	outbound_events_register(); /* and the queue's */
	owner = itest_pg_connect(url);
	return 0;
}

int wfix_teardown(void **state)
{
	char sql[256];

	(void)state;
	PQfinish(owner);
	owner = NULL;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
	itest_exec(super, sql, 0, NULL);
	PQfinish(super);
	super = NULL;
	free(url);
	url = NULL;
	return 0;
}

const char *wfix_url(void)
{
	return url;
}

PGconn *wfix_owner(void)
{
	return owner;
}

db_t *wfix_db(const char *application_name, const char *role)
{
	db_t *db = db_new(url, application_name, role, 2, 5000);

	if (db_ensure(db) != 0) {
		db_free(db);
		fail_msg("db_ensure failed for %s", application_name);
		return NULL;
	}
	return db;
}

void wfix_config(config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->database_url = url;
	cfg->db_role = s_role;
	cfg->db_connect_timeout = 2;
	cfg->db_statement_timeout_ms = 5000;
	cfg->db_retry_after = 1;
	cfg->public_url = s_public;
	cfg->migrations_dir = s_empty;
	cfg->worker_heartbeat_ms = 200;
	cfg->worker_stale_s = 5;
	cfg->twilio_base_url = s_base;
	cfg->twilio_account_sid = s_account;
	cfg->twilio_from = s_from;
	cfg->twilio_ca_file = s_empty;
	cfg->calls_per_second = 1000;
	cfg->ring_timeout_s = 30;
	cfg->run_heartbeat_ms = 200;
	cfg->run_stale_s = 2;
	cfg->call_reconcile_s = 600;
	cfg->call_log_sweep_s = 60;
	cfg->dispatch_poll_ms = 100;
	cfg->shutdown_grace_s = 2;
	cfg->queue_batch = 50;
	cfg->queue_lease_s = 60;
}

int64_t wfix_business(int max_calls)
{
	char u[64], name[128], maxs[16];

	snprintf(name, sizeof(name), "wk %s", itest_unique(u, sizeof(u)));
	snprintf(maxs, sizeof(maxs), "%d", max_calls);
	return ITEST_I64(owner,
			 "INSERT INTO businesses (name, max_concurrent_calls, caller_id, "
			 "calling_window_start, calling_window_end) "
			 "VALUES ($1, $2::integer, $3, '00:00', '00:00') RETURNING id",
			 name, maxs, WFIX_CALLER_ID);
}

int64_t wfix_run(int64_t business_id, int n, int concurrency, int max_attempts, int retry_delay_s,
		 char (*phones)[24])
{
	char bid[24], conc[16], att[16], delay[16], rid[24], phone[24];
	int64_t run_id;

	itest_i64s(bid, sizeof(bid), business_id);
	snprintf(conc, sizeof(conc), "%d", concurrency);
	snprintf(att, sizeof(att), "%d", max_attempts);
	snprintf(delay, sizeof(delay), "%d", retry_delay_s);
	run_id =
	    ITEST_I64(owner,
		      "INSERT INTO outbound_call_runs (business_id, concurrency, max_attempts, "
		      "retry_delay_s) VALUES ($1::bigint, $2::integer, $3::integer, "
		      "$4::integer) RETURNING id",
		      bid, conc, att, delay);
	itest_i64s(rid, sizeof(rid), run_id);
	for (int i = 0; i < n; i++) {
		/* +1 5xx xxx xxxx: unique in this database */
		snprintf(phone, sizeof(phone), "+1555%07u", ++phone_seq);
		if (phones != NULL)
			snprintf(phones[i], 24, "%s", phone);
		ITEST_X(owner,
			"WITH l AS (INSERT INTO leads (business_id, phone_e164, name) "
			"VALUES ($1::bigint, $2, 'Lead') RETURNING id) "
			"INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone) "
			"SELECT $3::bigint, $1::bigint, id, $2 FROM l",
			bid, phone, rid);
	}
	return run_id;
}

char *wfix_run_status(int64_t run_id)
{
	char rid[24];
	PGresult *r;
	char *s;

	r = ITEST_Q(owner, "SELECT status FROM outbound_call_runs WHERE id = $1::bigint",
		    itest_i64s(rid, sizeof(rid), run_id));
	assert_int_equal(PQntuples(r), 1);
	s = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	assert_non_null(s);
	return s;
}

int64_t wfix_jobs(int64_t run_id, const char *status)
{
	char rid[24];

	return ITEST_I64(owner,
			 "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			 "AND ($2::text IS NULL OR status = $2)",
			 itest_i64s(rid, sizeof(rid), run_id), status);
}

static void child_add(pid_t pid)
{
	if (nchildren < (int)(sizeof(children) / sizeof(children[0])))
		children[nchildren++] = pid;
}

static void child_forget(pid_t pid)
{
	for (int i = 0; i < nchildren; i++)
		if (children[i] == pid)
			children[i] = children[--nchildren];
}

pid_t wfix_spawn_worker(const config_t *cfg, fake_provider_t *fp)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = worker_run_with(cfg, fp ? fake_provider_get(fp) : NULL);

		/* exit(), not _exit(): LeakSanitizer checks the worker on the way out */
		exit(rc == 0 ? 0 : 1);
	}
	child_add(pid);
	return pid;
}

int wfix_stop(pid_t pid, int sig, int timeout_ms)
{
	int64_t deadline = itest_now_ms() + timeout_ms;
	int status;

	child_forget(pid);
	if (sig != 0)
		kill(pid, sig);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (itest_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		wfix_sleep_ms(5);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static volatile sig_atomic_t carrier_stop;

static void carrier_term(int sig)
{
	(void)sig;
	carrier_stop = 1;
}

/* The carrier child: never returns. */
static void carrier(const int64_t *business_ids, int n, const char *status, int min_ms, int max_ms)
{
	char ids[512], app[64];
	size_t len = 0;
	db_t *db;
	arena_t *a = arena_new(4096);
	unsigned seed = (unsigned)getpid();
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = carrier_term;
	sigaction(SIGTERM, &sa, NULL);
	len += (size_t)snprintf(ids, sizeof(ids), "{");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%lld", i ? "," : "",
					(long long)business_ids[i]);
	snprintf(ids + len, sizeof(ids) - len, "}");
	snprintf(app, sizeof(app), "itest-carrier-%d", (int)getpid());
	db = db_new(url, app, "dialflow_worker", 2, 5000);
	while (!carrier_stop) {
		PGresult *r;
		int err;
		char sid[64];

		arena_reset(a);
		if (db_ensure(db) != 0) {
			wfix_sleep_ms(20);
			continue;
		}
		r = db_exec_sql(db, a,
				"SELECT call_sid FROM outbound_call_jobs WHERE business_id = ANY "
				"($1::bigint[]) AND status = 'calling' ORDER BY random() LIMIT 1",
				1, (const char *[]){ids}, &err);
		if (r == NULL || PQntuples(r) == 0) {
			wfix_sleep_ms(2);
			continue;
		}
		snprintf(sid, sizeof(sid), "%s", PQgetvalue(r, 0, 0));
		wfix_sleep_ms(min_ms + (int)(rand_r(&seed) % (unsigned)(max_ms - min_ms + 1)));
		(void)fake_provider_emit(db, sid, "in-progress", -1, NULL);
		(void)fake_provider_emit(db, sid, status, 7, NULL);
	}
	db_free(db);
	arena_free(a);
	exit(0);
}

pid_t wfix_spawn_carrier(const int64_t *business_ids, int n, const char *status, int min_ms,
			 int max_ms)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		carrier(business_ids, n, status, min_ms, max_ms);
	child_add(pid);
	return pid;
}

int wfix_quiesce(void **state)
{
	(void)state;
	for (int i = nchildren - 1; i >= 0; i--)
		(void)wfix_stop(children[i], SIGKILL, 5000);
	nchildren = 0;
	itest_exec(owner,
		   "UPDATE outbound_call_jobs SET status = 'cancelled', completed_at = now() "
		   "WHERE status IN ('queued', 'dialing', 'calling')",
		   0, NULL);
	itest_exec(owner,
		   "UPDATE outbound_call_runs SET status = 'failed', locked_by_worker = NULL, "
		   "lease_token = NULL, ended_at = now() WHERE status IN ('pending', 'running')",
		   0, NULL);
	itest_exec(owner,
		   "UPDATE call_log SET status = 'failed' WHERE status IN ('initiated', 'queued', "
		   "'ringing', 'in-progress')",
		   0, NULL);
	itest_exec(owner, "DELETE FROM background_jobs WHERE true", 0, NULL);
	return 0;
}

bool wfix_wait(int64_t want, int timeout_ms, const char *sql, int nparams,
	       const char *const *params)
{
	return itest_wait_i64(owner, want, timeout_ms, sql, nparams, params);
}
