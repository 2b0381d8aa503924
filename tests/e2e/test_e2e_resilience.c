/*
 * test_e2e_resilience.c - the stack under stress it must survive:
 *   - the worker is alive and heartbeating;
 *   - nginx rate-limits a login flood with 429 rate_limited + Retry-After;
 *   - PostgreSQL restarted under the running stack: 503 db_unavailable with
 *     Retry-After within 1 s while it is down, and every API process back to
 *     200 on its own once it is up (reconnected, statements re-prepared);
 *   - the worker reconnects too.
 * The order matters: the restart runs last but one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "e2e.h"

#define FLOOD_REQUESTS	  120
#define FLOOD_SOURCE	  "127.0.0.3"
#define DOWN_BOUND_MS	  1000.0
#define RECOVERY_MS	  10000.0
#define POLL_MS		  100
#define HEARTBEAT_WAIT_MS 6000.0
#define RECONNECT_WAIT_MS 15000.0

static int64_t biz;
static e2e_user_t agent;
/* spawn-fcgi children behind the socket; each must recover on its own. */
static int api_processes;
static bool pg_stopped;

static int group_setup(void **state)
{
	if (e2e_global_setup(state) != 0) {
		return -1;
	}
	biz = e2e_business_create("e2e-resilience", "calls_outbound", NULL);
	e2e_user_create(&agent, biz, "agent");
	api_processes = atoi(e2e_env("DIALFLOW_TEST_API_PROCESSES", "4"));
	if (api_processes < 1) {
		api_processes = 4;
	}
	return 0;
}

static int group_teardown(void **state)
{
	e2e_user_free(&agent);
	return e2e_global_teardown(state);
}

/* Run a harness command through the shell; fail unless it exits 0. */
static void run_command(const char *env_name)
{
	const char *cmd = e2e_env_required(env_name);
	int rc;

	fflush(stdout);
	fflush(stderr);
	rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
		print_error("%s (%s) failed with status %d\n", env_name, cmd, rc);
		fail();
	}
}

/* --- the worker ----------------------------------------------------------- */

static pid_t worker_pid(void)
{
	const char *path = e2e_env_required("DIALFLOW_TEST_WORKER_PIDFILE");
	FILE *f = fopen(path, "r");
	long pid = 0;

	if (f == NULL) {
		print_error("worker pidfile %s: %s\n", path, strerror(errno));
		fail();
	}
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fclose(f);
		print_error("worker pidfile %s holds no pid\n", path);
		fail();
	}
	fclose(f);
	return (pid_t)pid;
}

static void expect_worker_alive(void)
{
	pid_t pid = worker_pid();
	if (kill(pid, 0) != 0 && errno != EPERM) {
		print_error("worker pid %ld is not running: %s\n", (long)pid, strerror(errno));
		fail();
	}
}

/* Live workers with a heartbeat younger than 5 s, or -1 when the query failed (why in err). */
static long fresh_workers(char *err, size_t errsz)
{
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *vals[] = {e2e_env_required("DIALFLOW_TEST_DATABASE_URL"), "3", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *res = NULL;
	long n = -1;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errsz, "connect: %s", PQerrorMessage(c));
		goto out;
	}
	res = PQexec(c, "SELECT count(*) FROM workers WHERE last_heartbeat_at > now() - "
			"interval '5 seconds' AND stopped_at IS NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		snprintf(err, errsz, "query: %s", PQerrorMessage(c));
		goto out;
	}
	n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
out:
	PQclear(res);
	PQfinish(c);
	return n;
}

/* Poll (the heartbeat is periodic) until a fresh heartbeat shows, for up to wait_ms. */
static void expect_fresh_heartbeat(double wait_ms)
{
	double deadline = e2e_now_ms() + wait_ms;
	char err[512] = "";
	long n;

	for (;;) {
		n = fresh_workers(err, sizeof(err));
		if (n >= 1) {
			return;
		}
		if (e2e_now_ms() >= deadline) {
			break;
		}
		e2e_sleep_ms(200);
	}
	print_error("no worker heartbeat within the last 5 s (after waiting %.0f ms): %s\n",
		    wait_ms, n < 0 ? err : "count was 0");
	fail();
}

static void test_worker_alive_and_heartbeating(void **state)
{
	(void)state;
	expect_worker_alive();
	expect_fresh_heartbeat(HEARTBEAT_WAIT_MS);
}

/* --- rate limiting -------------------------------------------------------- */

typedef struct {
	long status;
	int curl_code;
	bool retry_after;
	char *body;
	size_t len;
} xfer_t;

static size_t xfer_body(char *p, size_t size, size_t n, void *ud)
{
	xfer_t *x = ud;
	char *nb = realloc(x->body, x->len + size * n + 1);

	if (nb == NULL) {
		return 0;
	}
	x->body = nb;
	memcpy(x->body + x->len, p, size * n);
	x->len += size * n;
	x->body[x->len] = '\0';
	return size * n;
}

static size_t xfer_header(char *p, size_t size, size_t n, void *ud)
{
	xfer_t *x = ud;
	size_t len = size * n;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		x->retry_after = false;
	} else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		x->retry_after = true;
	}
	return len;
}

static void test_login_flood_is_rate_limited(void **state)
{
	(void)state;
	static xfer_t x[FLOOD_REQUESTS];
	CURL *h[FLOOD_REQUESTS];
	char *email = e2e_unique_email("e2e-flood");
	char body[256], url[512];
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	CURLM *m = curl_multi_init();
	CURLMsg *msg;
	int running = 0, left, n429 = 0, failed = 0;
	double deadline = e2e_now_ms() + 3 * E2E_TIMEOUT_MS;

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"wrong-password-1\"}", email);
	snprintf(url, sizeof(url), "%s/api/auth/login", e2e_base_url());
	assert_non_null(m);
	memset(x, 0, sizeof(x));
	/* All at once: a delaying limit_req (no nodelay) must overflow its burst too. */
	for (int i = 0; i < FLOOD_REQUESTS; i++) {
		h[i] = curl_easy_init();
		assert_non_null(h[i]);
		e2e_curl_common(h[i]);
		curl_easy_setopt(h[i], CURLOPT_URL, url);
		curl_easy_setopt(h[i], CURLOPT_INTERFACE, "host!" FLOOD_SOURCE);
		curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, xfer_body);
		curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &x[i]);
		curl_easy_setopt(h[i], CURLOPT_HEADERFUNCTION, xfer_header);
		curl_easy_setopt(h[i], CURLOPT_HEADERDATA, &x[i]);
		curl_easy_setopt(h[i], CURLOPT_PRIVATE, &x[i]);
		curl_multi_add_handle(m, h[i]);
	}
	do {
		assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
		if (running > 0) {
			assert_int_equal(curl_multi_poll(m, NULL, 0, 200, NULL), CURLM_OK);
		}
		assert_true(e2e_now_ms() < deadline);
	} while (running > 0);
	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		char *priv = NULL;
		xfer_t *xi;

		if (msg->msg != CURLMSG_DONE) {
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		xi = (xfer_t *)(void *)priv;
		xi->curl_code = (int)msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &xi->status);
	}

	for (int i = 0; i < FLOOD_REQUESTS; i++) {
		json_t *j = x[i].body ? json_loads(x[i].body, 0, NULL) : NULL;
		const char *code = e2e_jstr(j, "error.code");

		if (x[i].curl_code != CURLE_OK || x[i].status >= 500 || x[i].status == 0) {
			print_error("flood request %d: curl %d, HTTP %ld: %.300s\n", i,
				    x[i].curl_code, x[i].status, x[i].body ? x[i].body : "");
			failed++;
		} else if (x[i].status == 429) {
			n429++;
			if (code == NULL || strcmp(code, "rate_limited") != 0 ||
			    !x[i].retry_after) {
				print_error("flood request %d: a 429 without {error:{code:"
					    "\"rate_limited\"}} or Retry-After: %.300s\n",
					    i, x[i].body ? x[i].body : "");
				failed++;
			}
		} else if (x[i].status != 401 || code == NULL ||
			   strcmp(code, "invalid_credentials") != 0) {
			print_error("flood request %d: expected 401 invalid_credentials or 429, "
				    "got %ld: %.300s\n",
				    i, x[i].status, x[i].body ? x[i].body : "");
			failed++;
		}
		json_decref(j);
	}
	for (int i = 0; i < FLOOD_REQUESTS; i++) {
		curl_multi_remove_handle(m, h[i]);
		curl_easy_cleanup(h[i]);
		free(x[i].body);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(hdrs);
	free(email);
	if (failed > 0) {
		fail_msg("%d of %d flood answers broke the contract", failed, FLOOD_REQUESTS);
	}
	if (n429 == 0) {
		fail_msg("%d logins from %s in a burst and not one 429", FLOOD_REQUESTS,
			 FLOOD_SOURCE);
	}

	/* The limit is per client: another address logs in normally. */
	json_t *ok = json_pack("{s:s, s:s}", "email", agent.email, "password", agent.password);
	e2e_resp_t r = e2e_json_req("POST", "/api/auth/login", NULL, ok, NULL);
	json_decref(ok);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
}

/* --- PostgreSQL restart --------------------------------------------------- */

static int restart_teardown(void **state)
{
	(void)state;
	/* Whatever failed, leave the database running for what follows. */
	if (pg_stopped) {
		fflush(stdout);
		if (system(e2e_env("DIALFLOW_TEST_PG_START", "true")) == 0) {
			pg_stopped = false;
		}
	}
	return 0;
}

static void expect_fast_503(const e2e_resp_t *r)
{
	E2E_STATUS(*r, 503);
	E2E_TRUE(*r, e2e_header(r, "Retry-After") != NULL, "a 503 without Retry-After");
	E2E_TRUE(*r, r->elapsed_ms < DOWN_BOUND_MS, "answered in %.0f ms, not within %.0f ms",
		 r->elapsed_ms, DOWN_BOUND_MS);
}

static void test_postgres_restart(void **state)
{
	(void)state;
	e2e_resp_t r;
	double deadline;
	int in_a_row = 0, answers = 0;

	r = e2e_get("/api/me", agent.token, NULL);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);

	run_command("DIALFLOW_TEST_PG_STOP");
	pg_stopped = true;

	/* Twice per process at least (the processes share the socket and take turns). */
	for (int i = 0; i < 2 * api_processes; i++) {
		r = e2e_get("/api/health", NULL, NULL);
		expect_fast_503(&r);
		E2E_JSTR_EQ(r, "status", "degraded");
		E2E_JSTR_EQ(r, "db", "unavailable");
		e2e_resp_free(&r);

		r = e2e_get("/api/me", agent.token, NULL);
		expect_fast_503(&r);
		E2E_ERROR(r, 503, "db_unavailable");
		e2e_resp_free(&r);
	}

	run_command("DIALFLOW_TEST_PG_START");
	pg_stopped = false;

	/*
	 * Recovery: each process reconnects on its own. Poll until 12 answers in a
	 * row are 200 (three rounds over the four processes); until then, every
	 * answer is a clean 503, never a 500/502 or a hang.
	 */
	deadline = e2e_now_ms() + RECOVERY_MS;
	while (in_a_row < 3 * api_processes) {
		if (e2e_now_ms() >= deadline) {
			fail_msg("the API did not answer 200 %d times in a row within %.0f ms of "
				 "the restart (%d answers)",
				 3 * api_processes, RECOVERY_MS, answers);
		}
		r = e2e_get("/api/me", agent.token, NULL);
		answers++;
		if (r.status == 200) {
			E2E_JINT_EQ(r, "user.id", agent.id);
			in_a_row++;
		} else {
			E2E_ERROR(r, 503, "db_unavailable");
			in_a_row = 0;
			e2e_sleep_ms(POLL_MS);
		}
		e2e_resp_free(&r);
	}

	r = e2e_get("/api/health", NULL, NULL);
	E2E_STATUS(r, 200);
	E2E_JSTR_EQ(r, "db", "ok");
	e2e_resp_free(&r);
}

static void test_worker_survives_restart(void **state)
{
	(void)state;
	expect_worker_alive();
	expect_fresh_heartbeat(RECONNECT_WAIT_MS);
	expect_worker_alive();
}

/* --- clean shutdown of a worker ------------------------------------------- */

/* One integer from the test database, or -1. */
static long db_long(const char *sql, const char *param)
{
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *vals[] = {e2e_env_required("DIALFLOW_TEST_DATABASE_URL"), "3", NULL};
	const char *params[1] = {param};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *res = NULL;
	long n = -1;

	if (PQstatus(c) == CONNECTION_OK) {
		res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	}
	PQclear(res);
	PQfinish(c);
	return n;
}

/*
 * A second worker, started from the same build with the stack's settings,
 * registers, and on SIGTERM marks its row stopped and exits 0 promptly.
 */
static void test_worker_sigterm_is_clean(void **state)
{
	const char *admin = e2e_env_required("DIALFLOW_ADMIN_BIN");
	char bin[4096], pidstr[32], logpath[4200];
	const char *slash = strrchr(admin, '/');
	double deadline;
	pid_t pid;
	int status = -1;

	(void)state;
	assert_non_null(slash);
	snprintf(bin, sizeof(bin), "%.*s/dialflow-worker", (int)(slash - admin), admin);
	snprintf(logpath, sizeof(logpath), "%s/log/worker-sigterm.log",
		 e2e_env_required("DIALFLOW_TEST_STACK_DIR"));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("DIALFLOW_LOG_FILE", logpath, 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	snprintf(pidstr, sizeof(pidstr), "%ld", (long)pid);
	deadline = e2e_now_ms() + 10000;
	while (
	    db_long("SELECT count(*) FROM workers WHERE pid = $1::integer AND stopped_at IS NULL",
		    pidstr) < 1) {
		if (e2e_now_ms() > deadline || waitpid(pid, &status, WNOHANG) == pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			print_error("the second worker never registered (log: %s)\n", logpath);
			fail();
		}
		e2e_sleep_ms(100);
	}
	assert_int_equal(kill(pid, SIGTERM), 0);
	deadline = e2e_now_ms() + 5000;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (e2e_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			print_error("the worker did not exit within 5 s of SIGTERM\n");
			fail();
		}
		e2e_sleep_ms(50);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(db_long("SELECT count(*) FROM workers WHERE pid = $1::integer AND "
				 "stopped_at IS NOT NULL",
				 pidstr),
			 1);
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worker_alive_and_heartbeating),
	    cmocka_unit_test(test_login_flood_is_rate_limited),
	    cmocka_unit_test_teardown(test_postgres_restart, restart_teardown),
	    cmocka_unit_test(test_worker_survives_restart),
	    cmocka_unit_test(test_worker_sigterm_is_clean),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
