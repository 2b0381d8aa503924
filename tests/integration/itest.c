/* itest.c - see itest.h. */
#include "itest.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/auth.h"
#include "dialflow/err.h"
#include "dialflow/log.h"

static const char *env_db, *env_super, *env_migrations;
/* auth_password_hash() of ITEST_PASSWORD, made once: yescrypt is slow under ASan. */
static char *default_hash;

static void free_default_hash(void)
{
	free(default_hash);
	default_hash = NULL;
}

void itest_init(void)
{
	const char *lvl = getenv("DIALFLOW_TEST_LOG_LEVEL");
	const char *missing = NULL;

	env_db = getenv("DIALFLOW_TEST_DATABASE_URL");
	env_super = getenv("DIALFLOW_TEST_SUPERUSER_URL");
	env_migrations = getenv("DIALFLOW_MIGRATIONS_DIR");
	if (env_db == NULL || env_db[0] == '\0') {
		/* No harness at all: a plain `make check` or distcheck. ./dev test
		 * always sets the variables and counts a skipped tier as failed. */
		printf("1..0 # SKIP DIALFLOW_TEST_DATABASE_URL is not set (./dev test runs this "
		       "tier)\n");
		exit(0);
	}
	if (env_db == NULL || env_db[0] == '\0')
		missing = "DIALFLOW_TEST_DATABASE_URL";
	else if (env_super == NULL || env_super[0] == '\0')
		missing = "DIALFLOW_TEST_SUPERUSER_URL";
	else if (env_migrations == NULL || env_migrations[0] == '\0')
		missing = "DIALFLOW_MIGRATIONS_DIR";
	if (missing != NULL) {
		/* A half-configured harness is a broken harness: fail loudly. */
		printf("Bail out! %s is not set; the integration tests need a migrated "
		       "PostgreSQL (run them with ./dev test)\n",
		       missing);
		fprintf(stderr, "itest: %s is not set: FAILING (integration tests never skip)\n",
			missing);
		fflush(NULL);
		exit(1);
	}
	if (log_set_level(lvl != NULL ? lvl : "warn") < 0)
		(void)log_set_level("warn");
	atexit(free_default_hash);
}

const char *itest_db_url(void)
{
	return env_db;
}

const char *itest_super_url(void)
{
	return env_super;
}

const char *itest_migrations_dir(void)
{
	return env_migrations;
}

const char *itest_unique(char *buf, size_t bufsz)
{
	static unsigned counter;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, bufsz, "%ld_%lld%03ld_%u", (long)getpid(), (long long)ts.tv_sec,
		 ts.tv_nsec / 1000000, ++counter);
	return buf;
}

int64_t itest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *itest_i64s(char *buf, size_t bufsz, int64_t v)
{
	snprintf(buf, bufsz, "%" PRId64, v);
	return buf;
}

/* Append keyword='value' (quoted for conninfo) to the growing string *s. */
static void append_kv(char **s, size_t *len, const char *k, const char *v)
{
	size_t need = strlen(k) + 2 * strlen(v) + 5;
	char *p;

	*s = realloc(*s, *len + need + 1);
	assert_non_null(*s);
	p = *s + *len;
	if (*len > 0)
		*p++ = ' ';
	p += sprintf(p, "%s='", k);
	for (const char *c = v; *c; c++) {
		if (*c == '\'' || *c == '\\')
			*p++ = '\\';
		*p++ = *c;
	}
	*p++ = '\'';
	*p = '\0';
	*len = (size_t)(p - *s);
}

char *itest_conninfo_with(const char *url, ...)
{
	char *errmsg = NULL, *out = NULL;
	size_t len = 0;
	PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
	const char *keys[32], *vals[32];
	int n = 0;
	va_list ap;

	if (opts == NULL) {
		fail_msg("cannot parse conninfo: %s", errmsg ? errmsg : "out of memory");
		PQfreemem(errmsg);
		return NULL;
	}
	va_start(ap, url);
	for (const char *k = va_arg(ap, const char *); k != NULL && n < 32;
	     k = va_arg(ap, const char *)) {
		keys[n] = k;
		vals[n] = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val;
		bool replaced = false;

		for (int i = 0; i < n; i++) {
			if (strcmp(keys[i], o->keyword) == 0) {
				v = vals[i];
				replaced = true;
			}
		}
		if (!replaced && v == NULL)
			continue;
		if (v != NULL)
			append_kv(&out, &len, o->keyword, v);
	}
	PQconninfoFree(opts);
	if (out == NULL)
		out = strdup("");
	assert_non_null(out);
	return out;
}

PGconn *itest_pg_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		fail_msg("cannot connect: %s", c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	return c;
}

PGconn *itest_owner_pg(void)
{
	return itest_pg_connect(env_db);
}

PGconn *itest_super_pg(void)
{
	return itest_pg_connect(env_super);
}

static db_t *connected_db(const char *app, const char *role)
{
	db_t *db = db_new(env_db, app, role, 2, ITEST_STMT_TIMEOUT);

	if (db_ensure(db) != 0) {
		db_free(db);
		fail_msg("db_ensure failed for %s (role %s)", app, role ? role : "owner");
		return NULL;
	}
	return db;
}

db_t *itest_owner_db(const char *application_name)
{
	return connected_db(application_name, NULL);
}

db_t *itest_app_db(const char *application_name)
{
	return connected_db(application_name, ITEST_APP_ROLE);
}

PGresult *itest_query(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(r);
		fail_msg("query failed: %s -- %s", sql, msg);
		return NULL;
	}
	return r;
}

void itest_exec(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PQclear(itest_query(c, sql, nparams, params));
}

int64_t itest_i64(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = itest_query(c, sql, nparams, params);
	int64_t v;

	if (PQntuples(r) != 1 || PQnfields(r) < 1 || PQgetisnull(r, 0, 0)) {
		int rows = PQntuples(r);

		PQclear(r);
		fail_msg("expected one non-NULL value from: %s (got %d rows)", sql, rows);
		return 0;
	}
	v = (int64_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static PGresult *db_query(db_t *db, arena_t *a, const char *sql, int nparams,
			  const char *const *params)
{
	int err = 0;
	PGresult *r = db_exec_sql(db, a, sql, nparams, params, &err);

	if (r == NULL) {
		arena_free(a);
		fail_msg("db_exec_sql failed (err %d): %s", err, sql);
		return NULL;
	}
	if (PQntuples(r) != 1 || PQnfields(r) < 1) {
		int rows = PQntuples(r);

		arena_free(a);
		fail_msg("expected one row from: %s (got %d)", sql, rows);
		return NULL;
	}
	return r;
}

int64_t itest_db_i64(db_t *db, const char *sql, int nparams, const char *const *params)
{
	arena_t *a = arena_new(1024);
	PGresult *r = db_query(db, a, sql, nparams, params);
	int64_t v;

	if (db_isnull(r, 0, 0)) {
		arena_free(a);
		fail_msg("unexpected NULL from: %s", sql);
		return 0;
	}
	v = db_i64(r, 0, 0);
	arena_free(a);
	return v;
}

char *itest_db_str(db_t *db, const char *sql, int nparams, const char *const *params)
{
	arena_t *a = arena_new(1024);
	PGresult *r = db_query(db, a, sql, nparams, params);
	char *v = NULL;

	if (!db_isnull(r, 0, 0)) {
		v = strdup(db_str(r, 0, 0));
		assert_non_null(v);
	}
	arena_free(a);
	return v;
}

const char *itest_sqlstate(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	static char state[6];
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	const char *s;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		PQclear(r);
		fail_msg("expected an error, but it succeeded: %s", sql);
		return NULL;
	}
	s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(state, sizeof(state), "%s", s ? s : "?????");
	PQclear(r);
	return state;
}

int64_t itest_create_business(PGconn *owner, const char *label, bool active)
{
	char u[64], name[160];

	snprintf(name, sizeof(name), "itest %s %s", label, itest_unique(u, sizeof(u)));
	return ITEST_I64(owner,
			 "INSERT INTO businesses (name, is_active) VALUES ($1, $2) RETURNING id",
			 name, active ? "true" : "false");
}

int64_t itest_create_user(PGconn *owner, int64_t business_id, const char *role,
			  const char *password, char *email_out, size_t email_outsz)
{
	char u[64], email[160], bid[24];
	char *hash;
	int64_t id;

	if (password == NULL) {
		if (default_hash == NULL)
			default_hash = auth_password_hash(ITEST_PASSWORD);
		assert_non_null(default_hash);
		hash = strdup(default_hash);
	} else {
		hash = auth_password_hash(password);
	}
	assert_non_null(hash);
	snprintf(email, sizeof(email), "%s.%s@itest.example", role, itest_unique(u, sizeof(u)));
	if (email_out != NULL)
		snprintf(email_out, email_outsz, "%s", email);
	id = ITEST_I64(owner,
		       "INSERT INTO users (business_id, email, name, password_hash, role) "
		       "VALUES ($1::bigint, $2, $3, $4, $5) RETURNING id",
		       business_id > 0 ? itest_i64s(bid, sizeof(bid), business_id) : NULL, email,
		       "Itest User", hash, role);
	free(hash);
	return id;
}

void itest_enable_pages(PGconn *owner, int64_t business_id, const char *const *keys)
{
	char bid[24];

	itest_i64s(bid, sizeof(bid), business_id);
	for (size_t i = 0; keys[i] != NULL; i++)
		ITEST_X(
		    owner,
		    "INSERT INTO business_pages (business_id, page_key) VALUES ($1::bigint, $2) "
		    "ON CONFLICT DO NOTHING",
		    bid, keys[i]);
}

int64_t itest_create_audit(PGconn *owner, int64_t business_id, const char *action)
{
	char bid[24];

	return ITEST_I64(owner,
			 "INSERT INTO audit_events (business_id, tag, action) "
			 "VALUES ($1::bigint, 'AUDIT', $2) RETURNING id",
			 business_id > 0 ? itest_i64s(bid, sizeof(bid), business_id) : NULL,
			 action);
}

int itest_backend_pid(PGconn *super, const char *application_name)
{
	PGresult *r = ITEST_Q(super,
			      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
			      "AND backend_type = 'client backend'",
			      application_name);
	int pid = 0;

	if (PQntuples(r) > 1) {
		int n = PQntuples(r);

		PQclear(r);
		fail_msg("%d sessions are named %s; names must be unique", n, application_name);
		return 0;
	}
	if (PQntuples(r) == 1)
		pid = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return pid;
}

bool itest_wait_i64(PGconn *c, int64_t want, int timeout_ms, const char *sql, int nparams,
		    const char *const *params)
{
	int64_t deadline = itest_now_ms() + timeout_ms;
	struct timespec pause = {0, 10 * 1000 * 1000};

	for (;;) {
		if (itest_i64(c, sql, nparams, params) == want)
			return true;
		if (itest_now_ms() >= deadline)
			return false;
		nanosleep(&pause, NULL);
	}
}

void itest_kill_session(PGconn *super, const char *application_name, PGconn *victim)
{
	char pid[24];
	int p = itest_backend_pid(super, application_name);

	if (p == 0)
		fail_msg("no session named %s to terminate", application_name);
	itest_i64s(pid, sizeof(pid), p);
	assert_int_equal(ITEST_I64(super, "SELECT pg_terminate_backend($1::int)::int", pid), 1);
	if (!itest_wait_i64(super, 0, 5000,
			    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1,
			    (const char *[]){pid}))
		fail_msg("backend %s of %s did not exit", pid, application_name);
	if (victim != NULL) {
		/* POLLRDHUP/POLLHUP: the peer closed; poll() consumes nothing */
		struct pollfd pf = {.fd = PQsocket(victim), .events = POLLRDHUP};
		int64_t deadline = itest_now_ms() + 5000;

		assert_true(pf.fd >= 0);
		for (;;) {
			int rem = (int)(deadline - itest_now_ms());

			if (rem <= 0)
				fail_msg("the socket of %s was not closed by the server",
					 application_name);
			if (poll(&pf, 1, rem) > 0 && (pf.revents & (POLLRDHUP | POLLHUP)))
				break;
			pf.revents = 0;
		}
	}
}
